// A run's checkpoints: checkpoints/step-<N>/ holds the PEFT adapter (the LoRA parameters, with
// finch_adapter.json so that a checkpoint used on its own renders prompts as training did), the
// AdamW moments (optimizer.safetensors, "m:<name>" and "v:<name>") and trainer_state.json (step,
// config, loss history, dataset fingerprint). A checkpoint counts only once its folder has been renamed
// into place, so a run killed while writing one resumes from the previous one.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type TrainConfig, readStoredConfig } from '../../src-shared/run-config.js';
import { type FinchAdapterInfo, loadPeftAdapter, savePeftAdapter } from '../model/adapter.js';
import type { LoraParam, LoraSpec } from '../model/lora.js';
import { READ_LIMITS, readJsonSync } from '../util/regular-file.js';
import { Checkpoint, writeFileAtomic, writeSafetensors } from '../model/safetensors.js';
import type { ModelConfig } from '../model/types.js';

export class TrainingError extends Error {
  override name = 'TrainingError';
}

/** What trainer_state.json holds: everything besides tensors that a resumed run continues from. */
export interface TrainerState {
  step: number;
  config: TrainConfig;
  losses: { step: number; loss: number }[];
  evals: { step: number; loss: number }[];
  /** train:validation:tokens:T of the prepared dataset; a resume refuses a different one. */
  datasetFingerprint: string;
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

/** A checkpoint's trainer_state.json (its config through the schema). */
export function readState(dir: string): TrainerState {
  const file = join(dir, STATE_FILE);
  const json = readJson(file) as TrainerState;
  return { ...json, config: configIn(file, json) };
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
