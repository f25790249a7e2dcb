// Sharing a result on the Hub: what Finch pushes for an adapter folder, a merged model folder or a
// GGUF file, with a model card written from the run that made it, through upload.ts (one commit,
// private until complete, resumable).
//   adapter: adapter_config.json, adapter_model.safetensors (and finch_adapter.json): a run folder
//            is one, and its run.json, checkpoints and logs stay home. adapter_config.json goes with
//            base_model_name_or_path set to the base's Hub id (a run records the local folder, which
//            would neither load elsewhere nor stay private), or the folder's name when there is none;
//   merged:  a Hugging Face model folder as `finch merge` writes it: config, tokenizer files and the
//            safetensors weights (the shards the index names); never pickle;
//   gguf:    the one file.
// The card's facts come from the run folder (run.json: the settings, the last losses; demo.json:
// `finch demo`'s base-versus-tuned answers), else from adapter_config.json; the caller may know
// better (the app's library knows the Hub ids of its models and datasets, and its batch compare).

import { existsSync, openSync, readFileSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { readStoredConfig } from '../../src-shared/run-config.js';
import { type CardFacts, type ComparisonFacts, type PushKind, type TrainingFacts, modelCard } from './card.js';
import { HubError } from './errors.js';
import { type RepoFile, SAFETENSORS_INDEX, isPickle, modelSupportFiles, weightFiles } from './files.js';
import { type UploadFile, type UploadOptions, type UploadResult, uploadToRepo } from './upload.js';

export type { PushKind } from './card.js';

const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;
/** Finch's record of the chat template the adapter was trained with (model/adapter.ts); PEFT ignores it. */
const FINCH_ADAPTER_INFO = 'finch_adapter.json';
const CARD = 'README.md';

export interface PushOptions extends Omit<UploadOptions, 'files' | 'title' | 'description'> {
  kind: PushKind;
  /** The adapter folder, the merged model folder, or the GGUF file. */
  path: string;
  /** The run folder whose run.json and demo.json describe the training; default: an adapter folder holding run.json. */
  runDir?: string;
  /** Facts the caller knows better than the files (Hub ids from a library, a batch comparison). */
  facts?: Partial<Omit<CardFacts, 'kind' | 'repo' | 'endpoint'>>;
}

export interface PushPlan {
  files: UploadFile[];
  /** Files of the folder left home, with why. */
  skipped: { path: string; reason: string }[];
  facts: CardFacts;
  card: string;
}

export interface PushResult extends UploadResult {
  card: string;
  skipped: PushPlan['skipped'];
}

/** Pushes an adapter, merged model or GGUF file with its model card (`plan`: planPush's, when made already). */
export async function pushToHub(o: PushOptions, plan: PushPlan = planPush(o)): Promise<PushResult> {
  const what = o.kind === 'adapter' ? 'LoRA adapter' : o.kind === 'merged' ? 'merged model' : 'GGUF file';
  const r = await uploadToRepo({
    ...o, files: plan.files, title: `Upload ${what} with Finch`,
    description: `${plan.files.length} files: ${plan.files.map((f) => f.path).join(', ')}`,
  });
  return { ...r, card: plan.card, skipped: plan.skipped };
}

/** The files, the card and its facts: everything a push decides before the network. */
export function planPush(o: Pick<PushOptions, 'kind' | 'path' | 'runDir' | 'facts' | 'repo' | 'endpoint'>): PushPlan {
  const path = resolve(o.path);
  if (!existsSync(path)) throw new HubError('bad_request', `${path} does not exist`, `pass the ${o.kind === 'gguf' ? 'GGUF file' : 'folder'} to push`);
  const picked = o.kind === 'adapter' ? adapterFiles(path) : o.kind === 'merged' ? mergedFiles(path) : ggufFile(path);
  const runDir = o.runDir ? resolve(o.runDir) : o.kind === 'adapter' && existsSync(join(path, 'run.json')) ? path : null;
  const facts: CardFacts = {
    kind: o.kind, repo: o.repo, endpoint: (o.endpoint || process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, ''),
    baseModel: null, baseModelName: null, datasets: [], datasetName: null, training: null, steps: null, finalLoss: null, evalLoss: null, comparison: null,
    ...(o.kind === 'adapter' ? adapterConfigFacts(path) : {}),
    ...(runDir ? runFacts(runDir) : {}),
    ...(o.kind === 'gguf' ? { gguf: { file: basename(path), dtype: ggufDtypeOf(basename(path)) } } : {}),
    ...definedOnly(o.facts ?? {}),
  };
  const card = modelCard(facts);
  const files = picked.files.map((f) => (o.kind === 'adapter' && f.path === ADAPTER_FILES[0] ? { path: f.path, source: adapterConfigToShare(f.source as string, facts) } : f));
  return { files: [...files, { path: CARD, source: Buffer.from(card) }], skipped: picked.skipped, facts, card };
}

// ---- what each kind pushes ---------------------------------------------------------------------------

interface Picked {
  files: UploadFile[];
  skipped: { path: string; reason: string }[];
}

function folderOf(path: string, what: string, needs: string): string {
  if (!statSync(path).isDirectory()) throw new HubError('bad_request', `${path} is a file, not ${what}`, `pass the folder that holds ${needs}`);
  return path;
}

function adapterFiles(path: string): Picked {
  const dir = folderOf(path, 'an adapter folder', 'adapter_config.json and adapter_model.safetensors (a run folder does)');
  const names = readdirSync(dir);
  for (const f of ADAPTER_FILES) {
    if (names.includes(f)) continue;
    const pickle = f === 'adapter_model.safetensors' && names.includes('adapter_model.bin');
    throw new HubError('bad_request', pickle
      ? `${dir} holds adapter_model.bin (pickle) but no adapter_model.safetensors; Finch never pushes pickle`
      : `${dir} has no ${f}: it is not a PEFT adapter folder`, pickle ? 'save the adapter as safetensors (PEFT: save_pretrained(..., safe_serialization=True))' : 'pass a run folder or a folder written by `finch train` or PEFT');
  }
  const take = new Set<string>([...ADAPTER_FILES, ...(names.includes(FINCH_ADAPTER_INFO) ? [FINCH_ADAPTER_INFO] : [])]);
  return {
    files: [...take].map((f) => ({ path: f, source: join(dir, f) })),
    skipped: names.filter((n) => !take.has(n)).map((n) => ({ path: n, reason: n === 'run.json' ? 'the run record (its settings and losses are in the model card)' : 'not part of the adapter' })),
  };
}

function mergedFiles(path: string): Picked {
  const dir = folderOf(path, 'a model folder', 'config.json and the safetensors weights (`finch merge` writes one)');
  const list: RepoFile[] = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile()).map((n) => ({ path: n, size: statSync(join(dir, n)).size }));
  if (!list.some((f) => f.path === 'config.json')) throw new HubError('bad_request', `${dir} has no config.json: it is not a Hugging Face model folder`, 'pass the folder `finch merge` wrote');
  let index: { weight_map?: Record<string, string> } | null = null;
  if (list.some((f) => f.path === SAFETENSORS_INDEX)) {
    try {
      index = JSON.parse(readFileSync(join(dir, SAFETENSORS_INDEX), 'utf8')) as { weight_map?: Record<string, string> };
    } catch (e) {
      throw new HubError('bad_request', `${join(dir, SAFETENSORS_INDEX)} is not valid JSON (${(e as Error).message})`, 'merge the model again');
    }
  }
  const weights = weightFiles(list, index);
  if (!weights) throw new HubError('no_weights', `${dir} has no *.safetensors weights${list.some((f) => isPickle(f.path)) ? ' (only pickle, which Finch never pushes)' : ''}`, 'pass the folder `finch merge` wrote');
  const missing = weights.find((w) => w.size < 0);
  if (missing) throw new HubError('integrity', `${SAFETENSORS_INDEX} in ${dir} names ${missing.path}, which is not there`, 'merge the model again');
  const support = modelSupportFiles(list);
  const wanted = support.wanted.filter((f) => f.path !== CARD);
  const taken = new Set([...wanted, ...weights].map((f) => f.path));
  return {
    files: [...wanted, ...weights].map((f) => ({ path: f.path, source: join(dir, f.path) })),
    skipped: list.filter((f) => !taken.has(f.path)).map((f) => ({
      path: f.path, reason: f.path === CARD ? 'replaced by the model card Finch writes' : support.skipped.find((s) => s.path === f.path)?.reason ?? `not one of the shards ${SAFETENSORS_INDEX} names`,
    })),
  };
}

function ggufFile(path: string): Picked {
  if (statSync(path).isDirectory()) throw new HubError('bad_request', `${path} is a folder, not a GGUF file`, 'pass the .gguf file `finch export gguf` wrote');
  const magic = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.toString('latin1') !== 'GGUF') throw new HubError('bad_request', `${path} is not a GGUF file (it does not start with "GGUF")`, 'pass the .gguf file `finch export gguf` wrote');
  return { files: [{ path: basename(path), source: path }], skipped: [] };
}

/** adapter_config.json as pushed: every key as written, base_model_name_or_path the base's Hub id (else its folder's name). */
function adapterConfigToShare(file: string, facts: CardFacts): Buffer {
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  cfg.base_model_name_or_path = facts.baseModel ?? facts.baseModelName ?? null;
  return Buffer.from(`${JSON.stringify(cfg, null, 2)}\n`);
}

/** "model-q8_0.gguf" -> "q8_0": the weights' type when the name says it. */
function ggufDtypeOf(name: string): string | null {
  return /(?:^|[-_.])(f32|f16|bf16|q8_0|q4_0|q4_k_m|q5_k_m|q6_k)(?=\.gguf$|[-_.])/i.exec(name)?.[1]?.toLowerCase() ?? null;
}

// ---- the card's facts --------------------------------------------------------------------------------

/** The Hub id a model or dataset path stands for: a folder of Finch's Hub cache (<cache>/models/OWNER/NAME/<commit>), or an id as given. */
export function hubIdOf(pathOrId: string, kind: 'models' | 'datasets'): string | null {
  const norm = pathOrId.replace(/\\/g, '/');
  const cached = new RegExp(`/${kind}/([\\w.-]+)/([\\w.-]+)/[0-9a-f]{40}(?:/|$)`).exec(norm);
  if (cached) return `${cached[1]}/${cached[2]}`;
  if (/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(pathOrId) && !existsSync(pathOrId)) return pathOrId;
  return null;
}

/** A path's last name, for a model or dataset that has no Hub id. */
const localName = (path: string): string => basename(path.replace(/[\\/]+$/, ''));

function adapterConfigFacts(dir: string): Partial<CardFacts> {
  let cfg: { base_model_name_or_path?: unknown; r?: unknown; lora_alpha?: unknown; lora_dropout?: unknown; use_rslora?: unknown; target_modules?: unknown };
  try {
    cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as typeof cfg;
  } catch (e) {
    throw new HubError('bad_request', `${join(dir, 'adapter_config.json')} is not valid JSON (${(e as Error).message})`, 'pass a PEFT adapter folder');
  }
  const base = typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : null;
  const targets = Array.isArray(cfg.target_modules) ? cfg.target_modules.map(String) : typeof cfg.target_modules === 'string' ? [cfg.target_modules] : [];
  const training: TrainingFacts | null = typeof cfg.r === 'number' && typeof cfg.lora_alpha === 'number'
    ? { quantized: null, lora: { rank: cfg.r, alpha: cfg.lora_alpha, dropout: Number(cfg.lora_dropout ?? 0), rslora: cfg.use_rslora === true, targets }, optimisation: null }
    : null;
  return { baseModel: base ? hubIdOf(base, 'models') : null, baseModelName: base ? localName(base) : null, training };
}

interface RunRecord {
  config?: unknown;
  step?: number;
  losses?: { step: number; loss: number }[];
  evals?: { step: number; loss: number }[];
}

function runFacts(runDir: string): Partial<CardFacts> {
  const file = join(runDir, 'run.json');
  let rec: RunRecord;
  try {
    rec = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  } catch (e) {
    throw new HubError('bad_request', `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(e as Error).message})`}`, 'pass the run folder (`finch train --out DIR`) or leave --run out');
  }
  let cfg;
  try {
    cfg = readStoredConfig(rec.config, file);
  } catch (e) {
    throw new HubError('bad_request', (e as Error).message, 'pass the run folder (`finch train --out DIR`) or leave --run out');
  }
  const dataset = hubIdOf(cfg.data, 'datasets');
  // The modules the saved adapter adapts, in the model's names: Phi-3's qkv_proj where the run listed q_proj, k_proj, v_proj.
  const adapted = existsSync(join(runDir, ADAPTER_FILES[0])) ? adapterConfigFacts(runDir).training?.lora.targets : undefined;
  const training: TrainingFacts = {
    quantized: cfg.quantize ? { blockSize: cfg.blockSize } : false,
    lora: { rank: cfg.lora.rank, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout, rslora: cfg.lora.rslora, targets: adapted?.length ? adapted : [...cfg.lora.targets] },
    optimisation: {
      lr: cfg.lr, schedule: cfg.schedule, warmupSteps: cfg.warmupSteps, weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxGradNorm,
      batch: cfg.batch, gradAccum: cfg.gradAccum, epochs: cfg.epochs, maxSteps: cfg.maxSteps, seqLen: cfg.seqLen, trainOn: cfg.trainOn, seed: cfg.seed,
    },
  };
  const losses = rec.losses ?? [], evals = rec.evals ?? [];
  return {
    baseModel: hubIdOf(cfg.model, 'models'), baseModelName: localName(cfg.model),
    datasets: dataset ? [dataset] : [], datasetName: localName(cfg.data),
    training, steps: rec.step ?? losses.at(-1)?.step ?? null, finalLoss: losses.at(-1)?.loss ?? null, evalLoss: evals.at(-1)?.loss ?? null,
    comparison: demoComparison(runDir),
  };
}

/** `finch demo`'s base-versus-tuned answers (demo.json), when the run folder has them. */
function demoComparison(runDir: string): ComparisonFacts | null {
  const file = join(runDir, 'demo.json');
  if (!existsSync(file)) return null;
  try {
    const d = JSON.parse(readFileSync(file, 'utf8')) as { base_accuracy?: unknown; tuned_accuracy?: unknown; eval_rows?: unknown };
    if (typeof d.base_accuracy !== 'number' || typeof d.tuned_accuracy !== 'number' || typeof d.eval_rows !== 'number') return null;
    return { on: 'held-out problems of the demo dataset', rows: d.eval_rows, baseAccuracy: d.base_accuracy, tunedAccuracy: d.tuned_accuracy };
  } catch {
    return null; // a comparison the card can do without
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
