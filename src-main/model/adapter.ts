// PEFT LoRA adapters in and out: `adapter_config.json` + `adapter_model.safetensors`, the folder
// Hugging Face PEFT's save_pretrained writes and PeftModel.from_pretrained reads, so an adapter
// trained in Finch loads in PEFT (and vLLM, TGI, llama.cpp's converter...) and one trained
// elsewhere loads in Finch.
//
// Writing: F32 tensors with PEFT's names (base_model.model.<module>.lora_A.weight, A [r, in],
// B [out, r]) and the LoraConfig keys PEFT has written since 0.7 (the first with use_rslora).
// Newer keys (use_dora, layer_replication, ...) are left out on purpose: PEFT before ~0.11 fails on
// keys it does not know, and every newer one fills them with their defaults.
//
// Reading is lenient about how PEFT and the tools on it spelled things over the years (a list or a
// regex string in target_modules, "all-linear", F16/BF16/F32, `lora_A.default.weight`), and strict
// about what Finch could not apply faithfully (DoRA, per-module ranks, some layers only, extra
// trained modules): those fail with a message instead of loading a different adapter.
//
// Beside the two PEFT files Finch writes finch_adapter.json (FinchAdapterInfo): how its training
// rendered chat rows, so that whatever uses the adapter later (eval, generate, the demo) renders
// prompts the same way. adapter_config.json stays exactly what PEFT writes; PEFT and other tools
// ignore the extra file, and an adapter without it (trained elsewhere) uses the 'auto' choice.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint, SafetensorsError, writeSafetensors, type TensorInfo } from './safetensors.js';
import { LORA_TARGET_ORDER, loraParams, modelTargets, modulePath, type LoraSpec, type LoraTarget } from './lora.js';
import type { ModelConfig, TemplateChoice } from './types.js';
import { readJsonObject } from '../util/json-file.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const FINCH_ADAPTER_INFO = 'finch_adapter.json';
const PICKLED_WEIGHTS = 'adapter_model.bin';

export class AdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterError';
  }
}

export interface PeftAdapter {
  spec: LoraSpec;
  /** PEFT names (without `.default`) -> values, A [r, in] and B [out, r] row-major. */
  tensors: Map<string, Float32Array>;
  /** adapter_config.json's base_model_name_or_path (a Hub id or a path), null when absent. */
  baseModel: string | null;
  /** finch_adapter.json, null for an adapter Finch did not train. */
  finch: FinchAdapterInfo | null;
}

/** What Finch records beside an adapter it trained (finch_adapter.json). */
export interface FinchAdapterInfo {
  /** The chat template training rendered chat rows with; null when every row was raw text. */
  template: 'model' | 'fallback' | null;
}

/** The template choice for prompts of this adapter (or of no adapter): what its training used, else 'auto'. */
export function adapterTemplate(adapter: { finch?: FinchAdapterInfo | null } | null): TemplateChoice {
  return adapter?.finch?.template ?? 'auto';
}

export interface SavePeftAdapterInput {
  spec: LoraSpec;
  /** Written as base_model_name_or_path: the Hub id or folder the adapter was trained on. */
  baseModel: string;
  tensors: ReadonlyMap<string, Float32Array>;
  cfg: ModelConfig;
  /** Written as finch_adapter.json when given. */
  finch?: FinchAdapterInfo;
}

// ---- writing ---------------------------------------------------------------------------------

/** The adapter_config.json PEFT's LoraConfig.save_pretrained would write for `spec`. */
export function peftAdapterConfig(spec: LoraSpec, baseModel: string): Record<string, unknown> {
  const config: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: spec.alpha,
    lora_dropout: spec.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: spec.rank,
    rank_pattern: {},
    revision: null,
    target_modules: LORA_TARGET_ORDER.filter((t) => spec.targets.includes(t)),
    task_type: 'CAUSAL_LM',
    use_rslora: spec.rslora,
  };
  // PEFT writes keys sorted; so do we, so a diff against a PEFT-made config is quiet.
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Writes a PEFT adapter folder at `dir`. Both files are written and fsynced in a temporary sibling
 * folder first; a new `dir` then appears by one rename, an existing one (a run folder that also
 * holds checkpoints) gets the weights renamed in and then the config, so a crash leaves either the
 * old adapter, the new one, or new weights beside the old config of the same run.
 */
export function savePeftAdapter(dir: string, input: SavePeftAdapterInput): void {
  const { spec, baseModel, tensors, cfg } = input;
  validateSpec(spec, `saving adapter to ${dir}`);
  const expected = loraParams(cfg, spec);
  const names = new Set(expected.map((p) => p.name));
  const missing = expected.filter((p) => !tensors.has(p.name)).map((p) => p.name);
  const extra = [...tensors.keys()].filter((n) => !names.has(n));
  if (missing.length || extra.length) {
    throw new AdapterError(
      `saving adapter to ${dir}: tensors do not match the LoRA spec` +
        (missing.length ? `; missing ${listSome(missing)}` : '') +
        (extra.length ? `; unexpected ${listSome(extra)}` : ''),
    );
  }
  for (const p of expected) {
    const v = tensors.get(p.name)!;
    if (v.length !== p.shape[0] * p.shape[1]) {
      throw new AdapterError(`saving adapter to ${dir}: ${p.name} has ${v.length} values, [${p.shape.join(', ')}] needs ${p.shape[0] * p.shape[1]}`);
    }
  }

  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(abs)}.adapter-tmp-${process.pid}-${Date.now()}`);
  fs.mkdirSync(tmp);
  try {
    writeSafetensors(
      path.join(tmp, ADAPTER_WEIGHTS),
      expected.map((p) => ({ name: p.name, dtype: 'F32' as const, shape: p.shape, data: tensors.get(p.name)! })),
      { format: 'pt' },
    );
    writeFileDurable(path.join(tmp, ADAPTER_CONFIG), JSON.stringify(peftAdapterConfig(spec, baseModel), null, 2) + '\n');
    if (input.finch) writeFileDurable(path.join(tmp, FINCH_ADAPTER_INFO), JSON.stringify(input.finch, null, 2) + '\n');
    fsyncDir(tmp);
    if (!fs.existsSync(abs)) {
      fs.renameSync(tmp, abs);
      fsyncDir(parent);
      return;
    }
    if (!fs.statSync(abs).isDirectory()) throw new AdapterError(`cannot save adapter: ${abs} exists and is not a folder`);
    fs.renameSync(path.join(tmp, ADAPTER_WEIGHTS), path.join(abs, ADAPTER_WEIGHTS));
    fs.renameSync(path.join(tmp, ADAPTER_CONFIG), path.join(abs, ADAPTER_CONFIG));
    // The info belongs to the new weights: replaced with them, or removed when there is none.
    if (input.finch) fs.renameSync(path.join(tmp, FINCH_ADAPTER_INFO), path.join(abs, FINCH_ADAPTER_INFO));
    else fs.rmSync(path.join(abs, FINCH_ADAPTER_INFO), { force: true });
    fsyncDir(abs);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Writes a file and fsyncs it (callers rename it into place afterwards). */
export function writeFileDurable(file: string, text: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Makes a rename inside `dir` durable; a no-op where folders cannot be opened (Windows). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // EISDIR/EPERM on platforms without directory fsync: the rename is as durable as it gets.
  } finally {
    fs.closeSync(fd);
  }
}

// ---- reading ---------------------------------------------------------------------------------

/**
 * Loads a PEFT LoRA adapter folder for a model with config `cfg`: reads adapter_config.json,
 * works out which projections it adapts, and checks that adapter_model.safetensors holds exactly
 * their lora_A / lora_B tensors with the shapes `cfg` implies.
 */
export function loadPeftAdapter(dir: string, cfg: ModelConfig): PeftAdapter {
  const abs = path.resolve(dir);
  const configFile = path.join(abs, ADAPTER_CONFIG);
  const weightsFile = path.join(abs, ADAPTER_WEIGHTS);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new AdapterError(`adapter folder not found: ${abs}`);
  if (!fs.existsSync(configFile)) {
    const looksLikeModel = fs.existsSync(path.join(abs, 'config.json'));
    throw new AdapterError(
      `${abs}: no ${ADAPTER_CONFIG}; a PEFT adapter folder holds ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}` +
        (looksLikeModel ? ' (this folder has config.json: is it a full model rather than an adapter?)' : ''),
    );
  }
  if (!fs.existsSync(weightsFile)) {
    if (fs.existsSync(path.join(abs, PICKLED_WEIGHTS))) {
      throw new AdapterError(
        `${path.join(abs, PICKLED_WEIGHTS)}: Finch never loads pickle files (loading one can run arbitrary code). ` +
          `Convert it to ${ADAPTER_WEIGHTS} once, in Python: ` +
          `\`from peft import PeftModel\` then PeftModel.from_pretrained(base, "${abs}").save_pretrained(OUT, safe_serialization=True); ` +
          `or, with torch and safetensors: safetensors.torch.save_file(torch.load("adapter_model.bin", weights_only=True), "${ADAPTER_WEIGHTS}")`,
      );
    }
    throw new AdapterError(`${abs}: no ${ADAPTER_WEIGHTS} next to ${ADAPTER_CONFIG}`);
  }

  const raw = readConfig(configFile);
  const spec = specFromConfig(raw, cfg, configFile);
  const baseModel = typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null;

  let ck: Checkpoint;
  try {
    ck = Checkpoint.open(weightsFile);
  } catch (e) {
    throw new AdapterError(e instanceof SafetensorsError ? e.message : `${weightsFile}: ${(e as Error).message}`);
  }
  try {
    return { spec, baseModel, tensors: readAdapterTensors(ck, cfg, spec, weightsFile), finch: readFinchInfo(path.join(abs, FINCH_ADAPTER_INFO)) };
  } finally {
    ck.close();
  }
}

type Json = Record<string, unknown>;

function readFinchInfo(file: string): FinchAdapterInfo | null {
  if (!fs.existsSync(file)) return null;
  const template = readConfig(file).template;
  if (template !== 'model' && template !== 'fallback' && template !== null) {
    throw new AdapterError(`${file}: "template" must be "model", "fallback" or null, got ${JSON.stringify(template)}; delete the file to use the model's chat template if it has one`);
  }
  return { template };
}

/** A JSON object file of the adapter folder (bounded, a regular file only: util/regular-file.ts). */
function readConfig(file: string): Json {
  return readJsonObject(file, { required: true, missingHint: 'a PEFT adapter folder needs it', what: 'an adapter config', error: (m) => new AdapterError(m) })!;
}

/** LoraSpec from adapter_config.json, with PEFT's defaults for absent keys (r 8, alpha 8). */
function specFromConfig(c: Json, cfg: ModelConfig, file: string): LoraSpec {
  const fail = (msg: string): never => {
    throw new AdapterError(`${file}: ${msg}`);
  };
  const peftType = c.peft_type ?? 'LORA';
  if (peftType !== 'LORA') fail(`peft_type is ${JSON.stringify(peftType)}; Finch loads LoRA adapters only ("LORA")`);
  if (c.use_dora === true) fail('use_dora is true: DoRA adapters are not supported (Finch applies plain LoRA)');
  if (c.lora_bias === true) fail('lora_bias is true: LoRA B biases are not supported');
  checkPlainLora(c, fail);
  const r = c.r ?? 8;
  const alpha = c.lora_alpha ?? 8;
  const dropout = c.lora_dropout ?? 0;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0) fail(`"r" must be a positive integer, got ${JSON.stringify(c.r)}`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`"lora_alpha" must be a number, got ${JSON.stringify(c.lora_alpha)}`);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`"lora_dropout" must be in [0, 1), got ${JSON.stringify(c.lora_dropout)}`);
  const rslora = c.use_rslora ?? false;
  if (typeof rslora !== 'boolean') fail(`"use_rslora" must be true or false, got ${JSON.stringify(c.use_rslora)}`);
  checkPattern(c.rank_pattern, 'rank_pattern', r as number, fail);
  checkPattern(c.alpha_pattern, 'alpha_pattern', alpha as number, fail);
  const targets = targetsFromConfig(c, cfg, fail);
  return { rank: r as number, alpha: alpha as number, dropout: dropout as number, rslora: rslora as boolean, targets };
}

// PEFT options that change what the adapter computes, or which base weights it expects: a
// non-default value means loading it as plain LoRA would give a different model.
const VARIANT_KEYS: [key: string, what: string][] = [
  ['alora_invocation_tokens', 'activated LoRA (aLoRA)'],
  ['target_parameters', 'LoRA on raw parameters'],
  ['use_bdlora', 'block-diagonal LoRA'],
  ['arrow_config', 'Arrow routing'],
  ['layer_replication', 'layer replication'],
  ['trainable_token_indices', 'trainable token embeddings'],
  ['monteclora_config', 'MonteCLoRA'],
  ['velora_config', 'VeLoRA'],
  ['kasa_config', 'KaSA'],
];
// Initialisations that also rewrite the base weights (W - B0 A0): the saved adapter only works on
// that modified base unless PEFT converted it when saving (which resets init_lora_weights).
const BASE_CHANGING_INIT = /^(pissa|olora|corda|loftq|lora_ga)/;

function checkPlainLora(c: Json, fail: (m: string) => never): void {
  const empty = (v: unknown) =>
    v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
  for (const [key, what] of VARIANT_KEYS) {
    if (!empty(c[key])) fail(`"${key}" is set (${what}), which Finch does not support; only plain LoRA adapters load`);
  }
  if (c.use_qalora === true) fail('"use_qalora" is true (QA-LoRA for GPTQ models), which Finch does not support');
  if (!empty(c.modules_to_save)) {
    fail(`"modules_to_save" ${JSON.stringify(c.modules_to_save)}: fully trained modules next to the LoRA are not supported`);
  }
  const init = c.init_lora_weights;
  if (typeof init === 'string' && BASE_CHANGING_INIT.test(init)) {
    fail(
      `"init_lora_weights" is "${init}", which also changes the base weights, so this adapter does not fit the original base. ` +
        'Convert it in PEFT with save_pretrained(..., path_initial_model_for_weight_conversion=...) to a plain LoRA',
    );
  }
}

/** Per-module ranks/alphas cannot be expressed in one LoraSpec: accept them only when they change nothing. */
function checkPattern(p: unknown, key: string, dflt: number, fail: (m: string) => never): void {
  if (p === undefined || p === null) return;
  if (typeof p !== 'object' || Array.isArray(p)) fail(`"${key}" must be an object`);
  const differing = Object.entries(p as Json).filter(([, v]) => v !== dflt);
  if (differing.length) {
    fail(`"${key}" gives some modules their own value (${differing.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}); Finch supports one rank and alpha for all modules`);
  }
}

/**
 * PEFT's module selection, evaluated over the model's projections of every layer: a list matches a
 * module whose name equals an entry or ends with "." + entry; a string is a regex that must match
 * the whole name, or "all-linear". exclude_modules and layers_to_transform narrow it. Finch's
 * LoraSpec adapts a projection in every layer or in none, so anything in between is an error.
 */
function targetsFromConfig(c: Json, cfg: ModelConfig, fail: (m: string) => never): LoraTarget[] {
  const include = moduleMatcher(c.target_modules, 'target_modules', fail);
  if (!include) fail('"target_modules" is missing or null; it must name the adapted modules (e.g. ["q_proj", "v_proj"])');
  const exclude = moduleMatcher(c.exclude_modules, 'exclude_modules', fail);
  let layers: Set<number> | null = null;
  const ltt = c.layers_to_transform;
  if (ltt !== undefined && ltt !== null) {
    const list = typeof ltt === 'number' ? [ltt] : ltt;
    if (!Array.isArray(list) || !list.every((x) => Number.isInteger(x))) fail(`"layers_to_transform" must be an integer or a list of integers`);
    layers = new Set(list as number[]);
  }
  const targets: LoraTarget[] = [];
  for (const t of modelTargets(cfg)) {
    const hit: number[] = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      const name = modulePath(l, t);
      if (include!(name) && !(exclude?.(name) ?? false) && (layers === null || layers.has(l))) hit.push(l);
    }
    if (hit.length === 0) continue;
    if (hit.length !== cfg.numLayers) {
      fail(`the adapter covers ${t} in layers ${hit.join(', ')} of ${cfg.numLayers} only; Finch applies each LoRA target in every layer`);
    }
    targets.push(t);
  }
  if (targets.length === 0) {
    fail(`"target_modules" ${JSON.stringify(c.target_modules)} matches none of the model's projections (${modelTargets(cfg).join(', ')})`);
  }
  return targets;
}

function moduleMatcher(v: unknown, key: string, fail: (m: string) => never): ((name: string) => boolean) | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (v === 'all-linear') return () => true; // every linear layer but the output head
    let re: RegExp;
    try {
      // Python's named groups spelled the JS way; PEFT uses re.fullmatch.
      re = new RegExp(`^(?:${v.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>')})$`);
    } catch (e) {
      return fail(`"${key}" is not a regular expression Finch can read: ${(e as Error).message}`);
    }
    return (name) => re.test(name);
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
    const entries = v as string[];
    return (name) => entries.some((e) => name === e || name.endsWith(`.${e}`));
  }
  return fail(`"${key}" must be a list of module names or a regex string, got ${JSON.stringify(v)}`);
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Maps file names to PEFT's canonical ones, checks the set and shapes, and reads values as float32. */
function readAdapterTensors(ck: Checkpoint, cfg: ModelConfig, spec: LoraSpec, file: string): Map<string, Float32Array> {
  const expected = loraParams(cfg, spec);
  const byCanonical = new Map<string, TensorInfo>();
  const extra: string[] = [];
  const wanted = new Set(expected.map((p) => p.name));
  for (const t of ck.tensors()) {
    // Some PEFT versions and hand-rolled exports keep the adapter name: lora_A.default.weight.
    const canonical = t.name.replace(/\.(lora_[AB])\.default\.weight$/, '.$1.weight');
    if (!wanted.has(canonical)) {
      extra.push(t.name);
      continue;
    }
    if (byCanonical.has(canonical)) {
      throw new AdapterError(`${file}: ${canonical} is stored twice (as ${byCanonical.get(canonical)!.name} and ${t.name})`);
    }
    byCanonical.set(canonical, t);
  }
  if (extra.length) {
    throw new AdapterError(`${file}: tensors Finch cannot apply: ${listSome(extra)}${extraHint(extra)}`);
  }
  const missing = expected.filter((p) => !byCanonical.has(p.name)).map((p) => p.name);
  if (missing.length) {
    throw new AdapterError(
      `${file}: missing ${missing.length} tensor(s) that ${ADAPTER_CONFIG} (r ${spec.rank}, targets ${spec.targets.join(', ')}) implies: ${listSome(missing)}`,
    );
  }
  const out = new Map<string, Float32Array>();
  for (const p of expected) {
    const t = byCanonical.get(p.name)!;
    if (!FLOAT_DTYPES.has(t.dtype)) throw new AdapterError(`${file}: tensor ${t.name} has dtype ${t.dtype}; LoRA weights must be F32, F16 or BF16`);
    if (t.shape.length !== 2 || t.shape[0] !== p.shape[0] || t.shape[1] !== p.shape[1]) {
      const role = p.which === 'A' ? '[r, in]' : '[out, r]';
      throw new AdapterError(
        `${file}: tensor ${t.name} has shape [${t.shape.join(', ')}], expected ${role} = [${p.shape.join(', ')}] for r ${spec.rank} and this model's ${p.target}` +
          ' (was the adapter trained on a different base model, or is "r" in the config wrong?)',
      );
    }
    const v = ck.readTensor(t.name);
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) throw new AdapterError(`${file}: tensor ${t.name} holds ${v[i]} at index ${i}; the adapter is corrupt`);
    }
    out.set(p.name, v);
  }
  return out;
}

function extraHint(names: string[]): string {
  const hints: string[] = [];
  if (names.some((n) => n.includes('lora_embedding'))) hints.push('LoRA on embeddings is not supported');
  if (names.some((n) => n.includes('lora_magnitude_vector'))) hints.push('DoRA magnitude vectors are not supported');
  if (names.some((n) => /(^|\.)(lm_head|embed_tokens)\.weight$|modules_to_save/.test(n))) {
    hints.push('fully trained modules (modules_to_save, e.g. lm_head or embed_tokens) are not supported');
  }
  if (names.some((n) => n.endsWith('.bias'))) hints.push('trained biases (bias "all" / "lora_only") are not supported');
  if (names.some((n) => /\.lora_[AB]\.weight$/.test(n))) hints.push("LoRA on modules other than the attention and MLP projections is not supported");
  return hints.length ? ` (${hints.join('; ')})` : '';
}

function listSome(names: readonly string[], n = 8): string {
  return names.slice(0, n).join(', ') + (names.length > n ? ` and ${names.length - n} more` : '');
}

function validateSpec(spec: LoraSpec, where: string): void {
  if (!Number.isInteger(spec.rank) || spec.rank <= 0) throw new AdapterError(`${where}: rank must be a positive integer, got ${spec.rank}`);
  if (!Number.isFinite(spec.alpha)) throw new AdapterError(`${where}: alpha must be a finite number, got ${spec.alpha}`);
  if (spec.targets.length === 0) throw new AdapterError(`${where}: the LoRA spec has no targets`);
}
