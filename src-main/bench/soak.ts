// `finch bench soak`: does a long run's memory stay flat? A training run as the app starts one (a
// job process, services/jobs.ts forkJob, running job-host.ts: the trainer with the app's sample
// answers after each evaluation), for many steps with an evaluation and a checkpoint every N; the
// RSS the trainer reports with each step (its `step` event's rss_mb) tells whether evaluations,
// checkpoints or sample answers leave memory behind.
//
// Growth is measured from the first evaluation on: the steps before it grow the heaps to their
// working size, and the first evaluation opens the evaluation session once.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import { parseCommand } from '../cli/args.js';
import { DEMO_MODEL, DEMO_TEST, DEMO_TRAIN } from '../services/demo.js';
import { type FromJob, type SpawnJob, forkJob } from '../services/jobs.js';
import { writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { readQa } from '../train/evaluate.js';
import { PRESETS } from './train-presets.js';

const DEMO_MAP = { prompt: 'query', completion: 'response' };

const USAGE = `Usage: finch bench soak [--model demo|small] [--steps N] [--every N] [--samples N] [--float] [--threads N] [--json]

RSS of a long training run, as the app runs one (a job process with sample answers after each
evaluation), on the bundled demo dataset: every --every steps an evaluation, a checkpoint and the
sample answers. Reports the RSS after the first evaluation and how far it grows from there.
  --model    demo: the bundled demo model; small: random weights of the \`bench train\` small
             preset's shape (hidden 512, 8 layers, 32k vocabulary) (default demo)
  --steps    optimizer steps (default 1500)
  --every    steps between evaluations and checkpoints (default 250)
  --samples  held-out prompts answered at each evaluation, as the app does (default 4; 0: none)
  --float    a float32 base instead of 4-bit (QLoRA)`;

/** One step's RSS as the trainer reported it. */
export interface SoakStep { step: number; rss_mb: number }

export interface SoakSummary {
  /** Median RSS of the `window` steps after the first evaluation, MiB. */
  baseline_mb: number;
  /** Each later window's median RSS over the baseline, minus 1: the drift (max over windows). */
  growth: number;
  /** The largest single step's RSS after the first evaluation over the baseline, minus 1. */
  peak_growth: number;
  /** Median RSS of each window of `window` steps (from the first evaluation on), MiB. */
  windows: { from: number; to: number; rss_mb: number }[];
  /** RSS at the last step before and the first step after each evaluation, MiB. */
  evaluations: { step: number; before_mb: number; after_mb: number }[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * The flatness of a run's RSS from its first evaluation on: the baseline is the median of the
 * `window` steps after it (single steps swing with the allocator's free lists), the growth the
 * highest later window median over it.
 */
export function soakSummary(steps: readonly SoakStep[], evalSteps: readonly number[], window: number): SoakSummary {
  const first = evalSteps[0];
  if (first === undefined) throw new Error('soakSummary: the run had no evaluation');
  const after = steps.filter((s) => s.step > first);
  if (after.length < window) throw new Error(`soakSummary: ${after.length} steps after the first evaluation, fewer than one window of ${window}`);
  const windows: SoakSummary['windows'] = [];
  for (let i = 0; i + window <= after.length; i += window) {
    const w = after.slice(i, i + window);
    windows.push({ from: w[0]!.step, to: w.at(-1)!.step, rss_mb: median(w.map((s) => s.rss_mb)) });
  }
  const baseline = windows[0]!.rss_mb;
  const rssAt = (step: number) => steps.find((s) => s.step === step)?.rss_mb ?? NaN;
  return {
    baseline_mb: baseline,
    growth: Math.max(...windows.map((w) => w.rss_mb)) / baseline - 1,
    peak_growth: Math.max(...after.map((s) => s.rss_mb)) / baseline - 1,
    windows,
    evaluations: evalSteps.map((step) => ({ step, before_mb: rssAt(step), after_mb: rssAt(step + 1) })),
  };
}

/** The small preset's shape as a model folder (random weights, a generated Llama 3 tokenizer padded to its vocabulary). */
function smallModel(dir: string): string {
  const p = PRESETS.small!;
  writeSyntheticCheckpoint(dir, {
    hiddenSize: p.hidden, numLayers: p.layers, numHeads: p.heads, numKvHeads: p.kvHeads, intermediateSize: p.intermediate,
    modelVocabSize: p.vocab, maxPositionEmbeddings: 2048, vocabSize: 1024,
  });
  return dir;
}

/** Runs the job and collects its events; rejects if it fails. */
function runJob(spawn: SpawnJob, payload: Parameters<SpawnJob>[1], onEvent: (e: TrainEvent) => void): Promise<void> {
  return new Promise((done, fail) => {
    const job = spawn('train', payload);
    let failure: Error | null = null;
    job.onMessage((m: FromJob) => {
      if (m.type === 'train') onEvent(m.event);
      else if (m.type === 'failed') failure = new Error(`the training job failed: ${m.name}: ${m.message}`);
      else if (m.type === 'log' && m.level !== 'info') process.stderr.write(`job ${m.level}: ${m.message}\n`);
    });
    job.onExit((code, signal) => {
      if (failure) fail(failure);
      else if (code === 0) done();
      else fail(new Error(`the training job ended with ${signal ?? `exit code ${code}`}`));
    });
  });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench soak', argv, {
    model: { type: 'string', default: 'demo' }, steps: { type: 'string', default: '1500' }, every: { type: 'string', default: '250' },
    samples: { type: 'string', default: '4' }, float: { type: 'boolean', default: false }, threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const int = (name: 'steps' | 'every' | 'samples' | 'threads', min: number) => {
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got "${values[name]}"`);
    return v;
  };
  let steps: number, every: number, samples: number, threads: number;
  try {
    [steps, every, samples, threads] = [int('steps', 2), int('every', 1), int('samples', 0), int('threads', 0)];
    if (!['demo', 'small'].includes(values.model)) throw new Error(`--model must be demo or small, got "${values.model}"`);
    if (steps < 2 * every) throw new Error(`--steps ${steps} must be at least twice --every ${every}: growth is measured after the first evaluation`);
  } catch (e) {
    console.error(`finch bench soak: ${(e as Error).message}`);
    return 2;
  }
  const log = (s: string) => { if (!values.json) console.error(s); };
  const work = mkdtempSync(join(tmpdir(), 'finch-bench-soak-'));
  try {
    const model = values.model === 'demo' ? DEMO_MODEL : smallModel(join(work, 'model'));
    const cfg: TrainConfig = {
      ...TRAIN_DEFAULTS, model, data: DEMO_TRAIN, out: join(work, 'run'), map: DEMO_MAP, quantize: !values.float,
      maxSteps: steps, epochs: 1000, evalEvery: every, checkpointEvery: every, threads, provider: 'cpu',
      seqLen: values.model === 'demo' ? 160 : PRESETS.small!.seq,
    };
    const qa = samples ? await readQa(DEMO_TEST, { map: DEMO_MAP, limit: samples }) : [];
    const sampleSet = qa.length ? { prompts: qa.map((q) => q.prompt), references: qa.map((q) => q.reference), maxNewTokens: 48 } : null;
    const rss: SoakStep[] = [], evals: number[] = [];
    const started = performance.now();
    log(`soak: ${values.model} model, ${cfg.quantize ? '4-bit' : 'float32'}, ${steps} steps, evaluation + checkpoint every ${every}${sampleSet ? `, ${qa.length} sample answers each` : ''}...`);
    await runJob(forkJob, { config: cfg, samples: sampleSet }, (e) => {
      if (e.event === 'step') {
        rss.push({ step: e.step, rss_mb: e.rss_mb });
        if (e.step % every === 0) log(`step ${e.step}: RSS ${e.rss_mb.toFixed(0)} MiB`);
      } else if (e.event === 'eval') evals.push(e.step);
    });
    const window = Math.max(10, Math.floor(every / 5));
    const summary = soakSummary(rss, evals, window);
    const result = {
      model: values.model, quantize: cfg.quantize, steps, every, samples: qa.length, threads, seconds: (performance.now() - started) / 1000,
      ...summary,
      // Every 10th step's RSS: the curve.
      rss_mb: rss.filter((s) => s.step % 10 === 0).map((s) => [s.step, Math.round(s.rss_mb * 10) / 10]),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(`RSS after the first evaluation ${summary.baseline_mb.toFixed(0)} MiB (median of ${window} steps); ` +
        `largest later median +${(summary.growth * 100).toFixed(1)}%, largest step +${(summary.peak_growth * 100).toFixed(1)}%`);
      for (const w of summary.windows) console.log(`  steps ${w.from}-${w.to}: ${w.rss_mb.toFixed(0)} MiB`);
    }
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
