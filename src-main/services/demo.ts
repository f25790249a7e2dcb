// The newcomer's demo: the bundled model (assets/demo/model, pretrained by Finch's own engine) with
// a 4-bit frozen base, its answers on held-out problems, a QLoRA fine-tune on the bundled
// MetaMathQA-style dataset, then the tuned answers beside the base ones and the held-out
// exact-match accuracy before and after. The same service backs `finch demo` and the app's
// "Try the demo".

import type { Provider } from '../engine/runtime/session.js';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPeftAdapter } from '../model/adapter.js';
import { parameterCount } from '../model/config.js';
import { writeFileAtomic } from '../model/safetensors.js';
import { evaluateExactMatch, evaluatePreference, readQa } from '../train/evaluate.js';
import { type Objective, objectiveOf } from '../train/objective.js';
import type { PreferenceRow } from '../demo/preference.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import { openTrainingModel, train } from '../train/trainer.js';
import { makeRunDir } from '../store/paths.js';
import { READ_LIMITS, readJsonSync } from '../util/regular-file.js';

/** The bundled demo assets: the checkout's assets/demo, or FINCH_ASSETS/demo (a packaged app's resources). */
export const DEMO_ASSETS = process.env.FINCH_ASSETS ? join(process.env.FINCH_ASSETS, 'demo') : fileURLToPath(new URL('../../assets/demo/', import.meta.url));
export const DEMO_MODEL = join(DEMO_ASSETS, 'model');
export const DEMO_TRAIN = join(DEMO_ASSETS, 'data', 'train.jsonl');
export const DEMO_TEST = join(DEMO_ASSETS, 'data', 'test.jsonl');
/** The preference demo's pairs (demo/preference.ts): the right worked answer chosen, a plausible wrong one rejected. */
export const DEMO_PAIRS_TRAIN = join(DEMO_ASSETS, 'data', 'preference-train.jsonl');
export const DEMO_PAIRS_TEST = join(DEMO_ASSETS, 'data', 'preference-test.jsonl');

/** The demo's fine-tuning recipe, tuned to finish in about two minutes on 2 CPU cores. */
export const DEMO_RECIPE = {
  steps: 300,
  batch: 8,
  lr: 3e-3,
  rank: 16,
  alpha: 32,
  seqLen: 160,
  /** Held-out problems scored before and after. */
  evalRows: 200,
  /** Problems shown side by side. */
  showRows: 4,
  maxNewTokens: 48,
};

/**
 * The preference demo's recipe (DPO on the 4-bit base), sized to finish in under three minutes on 2
 * idle CPU cores. Measured: held-out reward accuracy 88% of the 200 test pairs (chance: 50%) after
 * 60 steps (the run's own held-out pairs: 77% at step 15, 87% at step 60).
 */
export const DPO_DEMO_RECIPE = {
  steps: 60,
  batch: 8,
  lr: 3e-3,
  beta: 0.1,
  rank: 16,
  alpha: 32,
  seqLen: 160,
  /** Pairs of the training file held out for the run's evaluations, and how many evaluations. */
  valFraction: 0.1,
  evals: 4,
  /** Pairs of preference-test.jsonl scored at the end (all of them), and shown. */
  evalRows: 200,
  showRows: 3,
};

/** The run configuration of the preference demo (the app's DPO demo starts the same one). */
export function dpoDemoConfig(steps: number): Pick<TrainConfig, 'method' | 'beta' | 'quantize' | 'maxSteps' | 'batch' | 'lr' | 'schedule' | 'warmupSteps' | 'seqLen' | 'valFraction' | 'evalEvery' | 'checkpointEvery' | 'lora'> {
  const r = DPO_DEMO_RECIPE;
  return {
    method: 'dpo', beta: r.beta, quantize: true, maxSteps: steps, batch: r.batch, lr: r.lr, schedule: 'cosine', warmupSteps: Math.min(5, Math.floor(steps / 10)),
    seqLen: r.seqLen, valFraction: r.valFraction, evalEvery: Math.max(1, Math.round(steps / r.evals)), checkpointEvery: steps,
    lora: { ...TRAIN_DEFAULTS.lora, rank: r.rank, alpha: r.alpha, dropout: 0 },
  };
}

export interface DemoOptions {
  steps?: number;
  evalRows?: number;
  threads?: number;
  /** Execution provider for training and generation (default: the CPU). */
  provider?: Provider;
  strictProvider?: boolean;
  /** Where the run goes (default: a new folder under Finch's runs directory). */
  out?: string;
}

export interface DemoRow { prompt: string; reference: string; base: string; tuned: string | null; baseCorrect: boolean; tunedCorrect: boolean | null }

/** demo.json, as runDemo writes it beside the run (the app imports it with a CLI demo run). */
const DemoFile = z.object({
  base_accuracy: z.number().min(0).max(1),
  tuned_accuracy: z.number().min(0).max(1),
  rows: z.array(z.object({
    prompt: z.string(), reference: z.string(), base: z.string(), adapter: z.string().nullable(), baseCorrect: z.boolean(), adapterCorrect: z.boolean().nullable(),
  })),
});
export type DemoFile = z.output<typeof DemoFile>;

/** A demo run's demo.json, checked like input: a field of the wrong type is an error naming the file and field. */
export function readDemoFile(file: string): DemoFile {
  let json: unknown;
  try {
    json = readJsonSync(file, READ_LIMITS.runRecord); // bounded: a run folder's demo.json may be a FIFO or a link to a device
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const r = DemoFile.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new Error(`${file}: ${issue.path.join('.') || '(the file)'}: ${issue.message}`);
}

export type DemoEvent =
  | { event: 'loaded'; model: string; parameters: number; seconds: number }
  | { event: 'base'; rows: DemoRow[]; base_accuracy: number }
  | Exclude<TrainEvent, { event: 'done' }>
  | (Omit<Extract<TrainEvent, { event: 'done' }>, 'event'> & { event: 'train_done' })
  | { event: 'compare'; rows: DemoRow[]; base_accuracy: number; tuned_accuracy: number }
  | { event: 'done'; base_accuracy: number; tuned_accuracy: number; adapter: string; seconds: number };

/** The bundled assets a demo needs, each there (a package missing one was installed wrong). */
function requireAssets(files: readonly string[]): void {
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`the bundled demo asset ${f} is missing: reinstall Finch (the assets ship in the package)`);
  }
}

export async function runDemo(o: DemoOptions, emit: (e: DemoEvent) => void): Promise<{ baseAccuracy: number; tunedAccuracy: number; adapter: string }> {
  requireAssets([DEMO_MODEL, DEMO_TRAIN, DEMO_TEST]);
  const t0 = performance.now();
  const steps = o.steps ?? DEMO_RECIPE.steps;
  const threads = o.threads ?? 0;
  const out = o.out ?? makeRunDir('demo');
  const device = { provider: o.provider ?? 'cpu', strictProvider: o.strictProvider ?? false } as const;
  const cfg: TrainConfig = {
    ...TRAIN_DEFAULTS, model: DEMO_MODEL, data: DEMO_TRAIN, out, map: { prompt: 'query', completion: 'response' },
    quantize: true, maxSteps: steps, batch: DEMO_RECIPE.batch, lr: DEMO_RECIPE.lr, schedule: 'cosine', warmupSteps: Math.min(10, Math.floor(steps / 10)),
    seqLen: DEMO_RECIPE.seqLen, valFraction: 0, checkpointEvery: steps, threads, ...device,
    lora: { ...TRAIN_DEFAULTS.lora, rank: DEMO_RECIPE.rank, alpha: DEMO_RECIPE.alpha, dropout: 0 },
  };
  // Opened as the trainer opens it; it answers before and after training, so it keeps its embedding table.
  const opened = await openTrainingModel(cfg, { generates: true, onNote: (message) => emit({ event: 'note', message }) });
  const { model } = opened;
  const c = model.config;
  emit({ event: 'loaded', model: DEMO_MODEL, parameters: parameterCount(c), seconds: (performance.now() - t0) / 1000 });
  try {
    const qa = await readQa(DEMO_TEST, { map: { prompt: 'query', completion: 'response' }, limit: o.evalRows ?? DEMO_RECIPE.evalRows });
    const gen = { maxNewTokens: DEMO_RECIPE.maxNewTokens, batch: 16, threads, ...device };
    const before = await evaluateExactMatch(model, qa, null, gen);
    const toRow = (r: (typeof before.rows)[number]): DemoRow => ({ prompt: r.prompt, reference: r.reference, base: r.base, tuned: r.adapter, baseCorrect: r.baseCorrect, tunedCorrect: r.adapterCorrect });
    emit({ event: 'base', rows: before.rows.slice(0, DEMO_RECIPE.showRows).map(toRow), base_accuracy: before.base });

    // The trainer's own "done" becomes "train_done": the demo's "done" is the last event.
    await train(cfg, (e) => emit(e.event === 'done' ? { ...e, event: 'train_done' } : e), undefined, { model: opened });

    const adapter = loadPeftAdapter(out, c);
    const after = await evaluateExactMatch(model, qa, adapter, { ...gen, skipBase: true }); // prompts as its training rendered them
    const tunedAccuracy = after.adapter ?? 0;
    const rows = before.rows.map((r, i) => ({ ...r, adapter: after.rows[i]!.adapter, adapterCorrect: after.rows[i]!.adapterCorrect }));
    emit({ event: 'compare', rows: rows.slice(0, DEMO_RECIPE.showRows).map(toRow), base_accuracy: before.base, tuned_accuracy: tunedAccuracy });
    const seconds = (performance.now() - t0) / 1000;
    writeFileAtomic(join(out, 'demo.json'), JSON.stringify({ base_accuracy: before.base, tuned_accuracy: tunedAccuracy, eval_rows: qa.length, steps, seconds, rows }, null, 2));
    emit({ event: 'done', base_accuracy: before.base, tuned_accuracy: tunedAccuracy, adapter: out, seconds });
    return { baseAccuracy: before.base, tunedAccuracy, adapter: out };
  } finally {
    model.close();
  }
}

/** One held-out pair of the preference demo with the tuned model's implicit rewards. */
export interface PairDemoRow { prompt: string; chosen: string; rejected: string; rewardChosen: number; rewardRejected: number }

export type PreferenceDemoEvent =
  | { event: 'loaded'; model: string; parameters: number; seconds: number }
  | Exclude<TrainEvent, { event: 'done' }>
  | (Omit<Extract<TrainEvent, { event: 'done' }>, 'event'> & { event: 'train_done' })
  | { event: 'pairs'; rows: PairDemoRow[] }
  /** reward_accuracy and reward_margin over every held-out test pair (chance: accuracy 0.5). */
  | { event: 'done'; reward_accuracy: number; reward_margin: number; pairs: number; adapter: string; seconds: number };

/**
 * The preference demo (`finch demo --method dpo`): DPO on the bundled pairs (the right worked answer
 * preferred over a wrong one) from the 4-bit base, the run's held-out reward accuracy at each
 * evaluation, then the tuned model's rewards on every held-out test pair.
 */
export async function runPreferenceDemo(o: DemoOptions, emit: (e: PreferenceDemoEvent) => void): Promise<{ rewardAccuracy: number; adapter: string }> {
  requireAssets([DEMO_MODEL, DEMO_PAIRS_TRAIN, DEMO_PAIRS_TEST]);
  const t0 = performance.now();
  const steps = o.steps ?? DPO_DEMO_RECIPE.steps;
  const threads = o.threads ?? 0;
  const out = o.out ?? makeRunDir('demo-dpo');
  const device = { provider: o.provider ?? 'cpu', strictProvider: o.strictProvider ?? false } as const;
  const cfg: TrainConfig = { ...TRAIN_DEFAULTS, model: DEMO_MODEL, data: DEMO_PAIRS_TRAIN, out, ...dpoDemoConfig(steps), threads, ...device };
  const opened = await openTrainingModel(cfg, { generates: false, onNote: (message) => emit({ event: 'note', message }) });
  const { model } = opened;
  emit({ event: 'loaded', model: DEMO_MODEL, parameters: parameterCount(model.config), seconds: (performance.now() - t0) / 1000 });
  try {
    await train(cfg, (e) => emit(e.event === 'done' ? { ...e, event: 'train_done' } : e), undefined, { model: opened });
    const adapter = loadPeftAdapter(out, model.config);
    const r = await evaluatePreference(model, DEMO_PAIRS_TEST, adapter, objectiveOf(cfg) as Exclude<Objective, { method: 'sft' }>, {
      seqLen: cfg.seqLen, batch: cfg.batch, threads, provider: device.provider, strictProvider: device.strictProvider, maxRows: o.evalRows ?? DPO_DEMO_RECIPE.evalRows,
    });
    const pairs = readFileSync(DEMO_PAIRS_TEST, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as PreferenceRow);
    emit({
      event: 'pairs', rows: r.perPair.slice(0, DPO_DEMO_RECIPE.showRows).map((p) => {
        const row = pairs[p.line - 1]!;
        return { prompt: row.prompt, chosen: row.chosen, rejected: row.rejected, rewardChosen: p.chosen, rewardRejected: p.rejected };
      }),
    });
    const seconds = (performance.now() - t0) / 1000;
    writeFileAtomic(join(out, 'demo.json'), JSON.stringify({ method: 'dpo', reward_accuracy: r.reward_accuracy, reward_margin: r.reward_margin, pairs: r.pairs, steps, seconds }, null, 2));
    emit({ event: 'done', reward_accuracy: r.reward_accuracy, reward_margin: r.reward_margin, pairs: r.pairs, adapter: out, seconds });
    return { rewardAccuracy: r.reward_accuracy, adapter: out };
  } finally {
    model.close();
  }
}
