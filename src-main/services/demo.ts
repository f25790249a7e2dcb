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
import { writeFileAtomic } from '../model/safetensors.js';
import { evaluateExactMatch, readQa } from '../train/evaluate.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import { openTrainingModel, train } from '../train/trainer.js';
import { makeRunDir } from '../store/paths.js';

/** The bundled demo assets: the checkout's assets/demo, or FINCH_ASSETS/demo (a packaged app's resources). */
export const DEMO_ASSETS = process.env.FINCH_ASSETS ? join(process.env.FINCH_ASSETS, 'demo') : fileURLToPath(new URL('../../assets/demo/', import.meta.url));
export const DEMO_MODEL = join(DEMO_ASSETS, 'model');
export const DEMO_TRAIN = join(DEMO_ASSETS, 'data', 'train.jsonl');
export const DEMO_TEST = join(DEMO_ASSETS, 'data', 'test.jsonl');

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
    json = JSON.parse(readFileSync(file, 'utf8'));
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

export async function runDemo(o: DemoOptions, emit: (e: DemoEvent) => void): Promise<{ baseAccuracy: number; tunedAccuracy: number; adapter: string }> {
  for (const f of [DEMO_MODEL, DEMO_TRAIN, DEMO_TEST]) {
    if (!existsSync(f)) throw new Error(`the bundled demo asset ${f} is missing: reinstall Finch (the assets ship in the package)`);
  }
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
  const parameters = c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2)
    + c.numLayers * (2 * c.hiddenSize * c.numHeads * c.headDim + 2 * c.hiddenSize * c.numKvHeads * c.headDim + 3 * c.hiddenSize * c.intermediateSize);
  emit({ event: 'loaded', model: DEMO_MODEL, parameters, seconds: (performance.now() - t0) / 1000 });
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
