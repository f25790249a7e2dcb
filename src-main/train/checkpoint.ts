// A run's checkpoints: checkpoints/step-<N>/ holds the PEFT adapter (the LoRA parameters, with
// finch_adapter.json so that a checkpoint used on its own renders prompts as training did), the
// AdamW moments (optimizer.safetensors, "m:<name>" and "v:<name>") and trainer_state.json (step,
// config, loss history, what the prepared dataset was). A checkpoint is written into a temporary
// folder (.tmp-step-<N>-<pid>) and counts only once that folder has been renamed into place, so a
// run killed while writing one resumes from the previous one; the next process to open the run
// removes the temporary folder its killed predecessor left.
//
// run.json, beside checkpoints/, is the run's record for people and other tools: its config,
// status, device and loss history (readRunFile checks one written by anyone).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PROVIDER_NAMES } from '../../src-shared/choices.js';
import { type TrainConfig, readStoredConfig } from '../../src-shared/run-config.js';
import type { DeviceRecord } from '../../src-shared/train-events.js';
import type { PreparedDataset } from '../data/dataset.js';
import { type FinchAdapterInfo, loadPeftAdapter, savePeftAdapter } from '../model/adapter.js';
import type { LoraParam, LoraSpec } from '../model/lora.js';
import { READ_LIMITS, readJsonSync } from '../util/regular-file.js';
import { Checkpoint, writeFileAtomic, writeSafetensors } from '../model/safetensors.js';
import type { ModelConfig } from '../model/types.js';

/** A run that cannot go on; `hint` says what to do instead, where there is something to say. */
export class TrainingError extends Error {
  override name = 'TrainingError';
  constructor(message: string, readonly hint: string | null = null) {
    super(message);
  }
}

/** What trainer_state.json holds: everything besides tensors that a resumed run continues from. */
export interface TrainerState {
  step: number;
  config: TrainConfig;
  losses: { step: number; loss: number }[];
  evals: { step: number; loss: number }[];
  /** train:validation:tokens:T of the prepared dataset (sequences, tokens kept, graph length). */
  datasetFingerprint: string;
  /**
   * SHA-256 of each split's prepared rows (datasetFingerprint's datasetHashes): a resume refuses
   * data that differs in any token. Absent in checkpoints written before Finch recorded it: those
   * resume on the counts alone, and their next checkpoint records it.
   */
  datasetHashes?: { train: string; validation: string };
}

/** What a run's prepared data is, as its checkpoints record it (TrainerState's two dataset fields). */
export type DatasetFingerprint = Pick<TrainerState, 'datasetFingerprint'> & Required<Pick<TrainerState, 'datasetHashes'>>;

/** The counts and the content hashes of a prepared dataset whose graphs take T tokens. */
export function datasetFingerprint(data: PreparedDataset, T: number): DatasetFingerprint {
  const hash = (set: PreparedDataset['train']) => {
    const h = createHash('sha256');
    for (let i = 0; i < set.length; i++) {
      const members = set.samples(i);
      h.update(Uint32Array.of(members.length)); // where one sequence (of packed samples) ends
      for (const s of members) {
        const ids = data.samples.tokens(s);
        h.update(Uint32Array.of(ids.length));
        h.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
        h.update(data.samples.trained(s));
      }
    }
    return h.digest('hex');
  };
  return {
    datasetFingerprint: `${data.train.length}:${data.validation.length}:${data.stats.tokens}:${T}`,
    datasetHashes: { train: hash(data.train), validation: hash(data.validation) },
  };
}

/**
 * What differs between the data a checkpoint was trained on and the data prepared now, in words
 * ("the training rows' content (same 36 sequences and 4210 tokens: a row was edited)"), or null
 * when it is the same. A checkpoint without hashes (written before Finch recorded them) is judged
 * on its counts.
 */
export function datasetChange(then: Pick<TrainerState, 'datasetFingerprint' | 'datasetHashes'>, now: DatasetFingerprint): string | null {
  const [a, b] = [then.datasetFingerprint, now.datasetFingerprint].map((f) => f.split(':').map(Number));
  const names = ['training sequences', 'validation sequences', 'tokens', 'sequence length of the graphs'];
  const counts = names.flatMap((name, i) => (a![i] === b![i] ? [] : [`${name} ${a![i]} then, ${b![i]} now`]));
  if (counts.length) return counts.join('; ');
  if (!then.datasetHashes) return null;
  const content = (['train', 'validation'] as const).filter((k) => then.datasetHashes![k] !== now.datasetHashes[k]);
  if (!content.length) return null;
  return `the content of the ${content.map((k) => (k === 'train' ? 'training' : 'validation')).join(' and ')} rows ` +
    `(the same ${a![0]} training and ${a![1]} validation sequences of ${a![2]} tokens in all, but different tokens: a row was edited)`;
}

/** The trainable tensors of a run: LoRA parameters and their AdamW moments, by PEFT name. */
export interface OptimizerTensors {
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STEP_DIR = /^step-\d+$/;

/** The newest complete checkpoint folder of a run (complete = its state file exists), or null. */
export function latestCheckpoint(out: string): string | null {
  const dir = join(out, 'checkpoints');
  if (!existsSync(dir)) return null;
  const steps = readdirSync(dir).filter((n) => STEP_DIR.test(n) && existsSync(join(dir, n, STATE_FILE))).sort();
  return steps.length ? join(dir, steps[steps.length - 1]!) : null;
}

/** Reads the config a run was started with, for `--resume DIR`. */
export function resumeConfig(out: string): TrainConfig {
  const ck = latestCheckpoint(out);
  const runFile = join(out, 'run.json');
  if (ck) return readState(ck).config;
  if (existsSync(runFile)) return configIn(runFile);
  throw new TrainingError(`${out}: nothing to resume (no checkpoints/ and no run.json in this folder)`);
}

/** The `config` of a run.json or trainer_state.json, through the run-configuration schema (older files' missing settings take their defaults). */
export function configIn(file: string, json: { config?: unknown } = readJson(file)): TrainConfig {
  try {
    return readStoredConfig(json.config, file);
  } catch (e) {
    throw new TrainingError((e as Error).message);
  }
}

/**
 * run.json or trainer_state.json, bounded (a run folder is anyone's: its run.json may be a FIFO or
 * a link to /dev/zero) and an object; anything else is a TrainingError naming the file.
 */
function readJson(file: string): { config?: unknown } {
  const json = readJsonSync(file, READ_LIMITS.runRecord, { what: 'a run record', error: (message) => new TrainingError(message) });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TrainingError(`${file}: not a JSON object`);
  return json;
}

/** `value` through `schema`, or a TrainingError naming the file and the field. */
function checked<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new TrainingError(`${file}: ${issue.path.join('.') || '(the file)'}: ${issue.message}`);
}

const Point = z.object({ step: z.int().min(0), loss: z.number() });
const Points = z.array(Point);

const StateFile = z.object({
  step: z.int().min(0),
  losses: Points,
  evals: Points,
  datasetFingerprint: z.string().regex(/^\d+:\d+:\d+:\d+$/, 'must be train:validation:tokens:T'),
  datasetHashes: z.object({ train: z.string().regex(/^[0-9a-f]{64}$/), validation: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
});

/** A checkpoint's trainer_state.json, every field checked (its config through the schema). */
export function readState(dir: string): TrainerState {
  const file = join(dir, STATE_FILE);
  const json = readJson(file);
  return { ...checked(StateFile, json, file), config: configIn(file, json) };
}

/** run.json as the trainer writes it: other fields (older or newer Finch) are kept out. */
/** The statuses the trainer writes into run.json. */
const RUN_FILE_STATUSES = ['running', 'completed', 'cancelled'] as const;

const RunFile = z.object({
  status: z.enum(RUN_FILE_STATUSES),
  device: z.looseObject({ provider: z.enum(PROVIDER_NAMES) }).optional(),
  step: z.int().min(0).optional(),
  losses: Points.optional(),
  evals: Points.optional(),
});

export interface RunRecord {
  config: TrainConfig;
  status: (typeof RUN_FILE_STATUSES)[number];
  device?: DeviceRecord;
  step?: number;
  losses?: { step: number; loss: number }[];
  evals?: { step: number; loss: number }[];
}

/** A run folder's run.json, checked like input: a field of the wrong type is an error naming it. */
export function readRunFile(file: string): RunRecord {
  const json = readJson(file);
  const r = checked(RunFile, json, file);
  return { ...r, device: r.device as DeviceRecord | undefined, config: configIn(file, json) };
}

/**
 * Removes the temporary folders of checkpoints that a killed process was writing (.tmp-step-*):
 * called by the process that opens the run next. Folders of a process still alive are left.
 */
export function removeUnfinishedCheckpoints(out: string): string[] {
  const root = join(out, 'checkpoints');
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    const m = /^\.tmp-step-\d+-(\d+)$/.exec(name);
    if (!m || (Number(m[1]) !== process.pid && alive(Number(m[1])))) continue;
    rmSync(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Writes and reads the checkpoints of the run in `out` for one model and LoRA layout. */
export class Checkpointer {
  constructor(
    private readonly out: string,
    private readonly model: { config: ModelConfig; baseModel: string; spec: LoraSpec; params: readonly LoraParam[]; finch: FinchAdapterInfo },
    private readonly keep: number,
  ) {}

  latest(): string | null {
    return latestCheckpoint(this.out);
  }

  /** The state and tensors of the newest checkpoint, or null when the run has none. */
  restore(): { dir: string; state: TrainerState; tensors: OptimizerTensors } | null {
    const dir = this.latest();
    if (!dir) return null;
    const state = readState(dir);
    const params = new Map<string, Float32Array>(loadPeftAdapter(dir, this.model.config).tensors);
    const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
    const ck = Checkpoint.open(join(dir, OPTIMIZER_FILE));
    try {
      for (const p of this.model.params) {
        m.set(p.name, ck.readTensor(`m:${p.name}`));
        v.set(p.name, ck.readTensor(`v:${p.name}`));
      }
    } finally {
      ck.close();
    }
    return { dir, state, tensors: { params, m, v } };
  }

  /** Writes checkpoints/step-N atomically (temporary folder, then rename) and prunes old ones. */
  save(state: TrainerState, t: OptimizerTensors): string {
    const root = join(this.out, 'checkpoints');
    mkdirSync(root, { recursive: true });
    const name = `step-${String(state.step).padStart(8, '0')}`;
    const final = join(root, name), tmp = join(root, `.tmp-${name}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    try {
      mkdirSync(tmp);
      savePeftAdapter(tmp, { spec: this.model.spec, baseModel: this.model.baseModel, tensors: t.params, cfg: this.model.config, finch: this.model.finch });
      writeSafetensors(join(tmp, OPTIMIZER_FILE), this.model.params.flatMap((p) => [
        { name: `m:${p.name}`, dtype: 'F32' as const, shape: p.shape, data: t.m.get(p.name)! },
        { name: `v:${p.name}`, dtype: 'F32' as const, shape: p.shape, data: t.v.get(p.name)! },
      ]));
      writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(state));
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      const previous = this.latest();
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new TrainingError(`the disk is full: could not write the checkpoint of step ${state.step} under ${root}. ` +
          `Free some space, then continue with --resume ${this.out}${previous ? ` (last good checkpoint: ${previous})` : ''}.`);
      }
      throw e;
    }
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    const all = readdirSync(root).filter((n) => STEP_DIR.test(n)).sort();
    for (const old of all.slice(0, Math.max(0, all.length - this.keep))) rmSync(join(root, old), { recursive: true, force: true });
    return final;
  }
}
