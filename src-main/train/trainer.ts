// The fine-tuning run: data -> compiled step graph -> optimizer steps, with evaluation,
// checkpoints that resume exactly, a NaN guard and progress events. Everything a step depends on
// (data order, dropout masks, learning rate) is a pure function of (seed, step), so a run killed at
// any moment and resumed from its last checkpoint continues with the very same numbers.
//
// Output folder:
//   <out>/adapter_config.json, adapter_model.safetensors   the final PEFT adapter
//   <out>/run.json                                          config, status and loss history
//   <out>/checkpoints/step-<N>/                             adapter + optimizer.safetensors + trainer_state.json

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Batch } from '../data/batch.js';
import { prepareDataset, type PreparedDataset } from '../data/dataset.js';
import type { FormatName, ColumnMap } from '../data/formats.js';
import { shuffledIndices } from '../data/random.js';
import type { TemplateChoice, TrainOn } from '../data/template.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { type HostTensor, type Provider, Session } from '../engine/runtime/session.js';
import { loadPeftAdapter, savePeftAdapter } from '../model/adapter.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { type LoraSpec, initLora, mulberry32 } from '../model/lora.js';
import { Checkpoint, writeFileAtomic, writeSafetensors } from '../model/safetensors.js';
import { batchFeeds } from './feeds.js';
import { type ScheduleName, learningRate } from './schedule.js';
import { type StepGraphs, buildLossGraph, buildStepGraphs } from './step.js';

export interface TrainConfig {
  model: string;
  data: string;
  out: string;
  format?: FormatName;
  map?: ColumnMap;
  onBadRow?: 'fail' | 'skip';
  trainOn: TrainOn;
  /** Chat template: the model's ('model', required), Finch's fallback, or 'auto' (model's if any). */
  template: TemplateChoice;
  pack: boolean;
  seqLen: number;
  valFraction: number;
  lora: LoraSpec;
  /** 4-bit frozen base (QLoRA). */
  quantize: boolean;
  lr: number;
  schedule: ScheduleName;
  warmupSteps: number;
  epochs: number;
  /** Stop after this many optimizer steps (overrides epochs). */
  maxSteps: number | null;
  batch: number;
  gradAccum: number;
  weightDecay: number;
  maxGradNorm: number | null;
  /** Evaluate validation loss every N steps (0 = only at the end). */
  evalEvery: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  seed: number;
  threads: number;
  provider: Provider;
  checkpointLayers: boolean;
  /** 4-bit block size (32: lower error; 64: ~5% less memory). */
  blockSize: number;
}

/** Defaults, documented where they live. */
export const TRAIN_DEFAULTS: Omit<TrainConfig, 'model' | 'data' | 'out'> = {
  trainOn: 'completions', // prompt tokens are not trained (labels -100)
  template: 'auto',
  pack: false,
  seqLen: 512,
  valFraction: 0.05, // held-out rows for the eval loss
  lora: { rank: 16, alpha: 32, dropout: 0.05, rslora: false, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
  quantize: false,
  lr: 2e-4, // the common LoRA learning rate
  schedule: 'cosine',
  warmupSteps: 0,
  epochs: 1,
  maxSteps: null,
  batch: 4,
  gradAccum: 1,
  weightDecay: 0,
  maxGradNorm: 1.0,
  evalEvery: 0,
  checkpointEvery: 100,
  keepCheckpoints: 2,
  seed: 0,
  threads: 0,
  provider: 'cpu',
  checkpointLayers: false,
  blockSize: 32,
};

export type TrainEvent =
  | { event: 'prepared'; train_sequences: number; val_sequences: number; seq_len: number; truncated: number; total_steps: number; notes: string[] }
  | { event: 'step'; step: number; total_steps: number; loss: number; lr: number; grad_norm: number; tokens_per_s: number; elapsed_s: number; eta_s: number; rss_mb: number }
  | { event: 'eval'; step: number; eval_loss: number; perplexity: number }
  | { event: 'checkpoint'; step: number; path: string }
  | { event: 'paused'; step: number }
  | { event: 'continued'; step: number }
  | { event: 'resumed'; step: number }
  | { event: 'done'; adapter: string; steps: number; loss: number | null; eval_loss: number | null; status: 'completed' | 'cancelled' };

export interface TrainControl {
  paused: boolean;
  cancelled: boolean;
}

export class TrainingError extends Error {
  override name = 'TrainingError';
}

interface TrainerState {
  step: number;
  config: TrainConfig;
  losses: { step: number; loss: number }[];
  evals: { step: number; loss: number }[];
  datasetFingerprint: string;
}

const STATE_FILE = 'trainer_state.json';

/** The newest complete checkpoint folder of a run (complete = its state file exists), or null. */
export function latestCheckpoint(out: string): string | null {
  const dir = join(out, 'checkpoints');
  if (!existsSync(dir)) return null;
  const steps = readdirSync(dir).filter((n) => /^step-\d+$/.test(n) && existsSync(join(dir, n, STATE_FILE))).sort();
  return steps.length ? join(dir, steps[steps.length - 1]!) : null;
}

/** Reads the config a run was started with, for `--resume DIR`. */
export function resumeConfig(out: string): TrainConfig {
  const ck = latestCheckpoint(out);
  const runFile = join(out, 'run.json');
  if (ck) return (JSON.parse(readFileSync(join(ck, STATE_FILE), 'utf8')) as TrainerState).config;
  if (existsSync(runFile)) return (JSON.parse(readFileSync(runFile, 'utf8')) as { config: TrainConfig }).config;
  throw new TrainingError(`${out}: nothing to resume (no checkpoints/ and no run.json in this folder)`);
}

/** Dropout seeds of one micro-batch: a pure function of (seed, step, micro), so resume repeats them. */
function dropoutSeeds(seed: number, step: number, micro: number, n: number): Float32Array {
  const rand = mulberry32((seed * 1_000_003 + step * 7919 + micro * 104_729) >>> 0);
  return Float32Array.from({ length: n }, () => rand() * 1000);
}

export async function train(cfg: TrainConfig, emit: (e: TrainEvent) => void, control: TrainControl = { paused: false, cancelled: false }): Promise<{ adapter: string; steps: number }> {
  const out = resolve(cfg.out);
  mkdirSync(out, { recursive: true });
  // QLoRA gathers embedding rows on the host: the table never enters the session (2 GiB at 128k x 4096).
  const model = loadModel(cfg.model, { quantize: cfg.quantize, blockSize: cfg.blockSize ?? 32, rowReads: cfg.quantize });
  try {
    return await runWith(model, cfg, out, emit, control);
  } finally {
    model.close();
  }
}

async function runWith(model: LoadedModel, cfg: TrainConfig, out: string, emit: (e: TrainEvent) => void, control: TrainControl) {
  const data = await prepareDataset(cfg.data, model.tokenizer, {
    seqLen: cfg.seqLen, pack: cfg.pack, valFraction: cfg.valFraction, seed: cfg.seed, trainOn: cfg.trainOn, template: cfg.template ?? 'auto',
    format: cfg.format, map: cfg.map, onBadRow: cfg.onBadRow ?? 'fail',
  });
  if (data.train.length === 0) throw new TrainingError(`${cfg.data}: no training rows left after preparing the dataset (${data.notes.join('; ')})`);
  // One static graph shape: the longest sequence, rounded up to 8, capped by seqLen.
  let longest = 0;
  for (const set of [data.train, data.validation]) for (let i = 0; i < set.length; i++) longest = Math.max(longest, set.tokenCount(i));
  const T = Math.min(cfg.seqLen, Math.ceil(longest / 8) * 8);
  const B = cfg.batch;
  const microPerEpoch = Math.ceil(data.train.length / B);
  const stepsPerEpoch = Math.max(1, Math.floor(microPerEpoch / cfg.gradAccum));
  const totalSteps = cfg.maxSteps ?? stepsPerEpoch * cfg.epochs;
  const fingerprint = `${data.train.length}:${data.validation.length}:${data.stats.tokens}:${T}`;
  emit({ event: 'prepared', train_sequences: data.train.length, val_sequences: data.validation.length, seq_len: T, truncated: data.stats.truncated, total_steps: totalSteps, notes: data.notes });

  const shape = {
    batch: B, seq: T, lora: cfg.lora, checkpointLayers: cfg.checkpointLayers, hostEmbeddings: cfg.quantize,
    // Two-level checkpointing for deep models: about 2*sqrt(L) layer inputs stay alive instead of L.
    checkpointGroup: cfg.checkpointLayers ? Math.max(1, Math.round(Math.sqrt(model.config.numLayers))) : 1,
  };
  const embed = shape.hostEmbeddings ? (ids: BigInt64Array) => model.weights.embedRows(ids) : undefined;
  const opt = { weightDecay: cfg.weightDecay, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: cfg.maxGradNorm };
  const graphs = buildStepGraphs(model.weights, model.invFreq, shape, opt, cfg.gradAccum);
  // ORT's memory arena: measured 2.5-3x faster steps on the small bench preset (no page faults on
  // fresh buffers each step) at similar peak RSS; off in the memory-saving mode (checkpointing),
  // where the arena's rounding up costs more than it saves.
  const sessionOpts = { provider: cfg.provider, threads: cfg.threads, cpuMemArena: !cfg.checkpointLayers };
  const stepSession = await Session.create(serializeModel((graphs.fused ?? graphs.grads)!), sessionOpts);
  const updateSession = graphs.update ? await Session.create(serializeModel(graphs.update), sessionOpts) : null;
  let evalSession: Session | null = null;

  // State: parameters and moments, fresh or from the last checkpoint.
  const params = new Map<string, Float32Array>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  let state: TrainerState = { step: 0, config: cfg, losses: [], evals: [], datasetFingerprint: fingerprint };
  const resumeDir = latestCheckpoint(out);
  if (resumeDir) {
    state = JSON.parse(readFileSync(join(resumeDir, STATE_FILE), 'utf8')) as TrainerState;
    if (state.datasetFingerprint !== fingerprint) {
      throw new TrainingError(`${resumeDir}: the dataset or sequence length changed since this run started (${state.datasetFingerprint} vs ${fingerprint}); start a new run in another folder`);
    }
    const adapter = loadPeftAdapter(resumeDir, model.config);
    for (const [k, t] of adapter.tensors) params.set(k, t);
    const ck = Checkpoint.open(join(resumeDir, 'optimizer.safetensors'));
    for (const p of graphs.params) {
      m.set(p.name, ck.readTensor(`m:${p.name}`));
      v.set(p.name, ck.readTensor(`v:${p.name}`));
    }
    ck.close();
    emit({ event: 'resumed', step: state.step });
  } else {
    for (const [k, t] of initLora(graphs.params, cfg.seed)) {
      params.set(k, t);
      m.set(k, new Float32Array(t.length));
      v.set(k, new Float32Array(t.length));
    }
    writeFileAtomic(join(out, 'run.json'), JSON.stringify({ config: cfg, status: 'running' }, null, 2));
  }

  const tensor = (shapeOf: readonly number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims: shapeOf, data });
  const paramFeeds = (): Record<string, HostTensor> => {
    const f: Record<string, HostTensor> = {};
    for (const p of graphs.params) f[p.name] = tensor(p.shape, params.get(p.name)!);
    return f;
  };
  let epochOrder = { epoch: -1, order: [] as number[] }; // the shuffle of the current epoch, made once
  const microBatch = (k: number): Batch => {
    const epoch = Math.floor(k / microPerEpoch), j = k % microPerEpoch;
    if (epochOrder.epoch !== epoch) epochOrder = { epoch, order: shuffledIndices(data.train.length, cfg.seed + epoch) };
    const order = epochOrder.order;
    const idx = order.slice(j * B, (j + 1) * B);
    return data.train.batch(idx, { T });
  };

  const started = performance.now();
  const startStep = state.step;
  let lastLoss: number | null = state.losses.at(-1)?.loss ?? null;
  let tokensSeen = 0;
  let status: 'completed' | 'cancelled' = 'completed';

  while (state.step < totalSteps) {
    // session.run does not yield to the event loop: yield once per step so that control messages
    // (pause, cancel from the app or a worker's parent) are seen at the next step boundary.
    await new Promise((r) => setImmediate(r));
    if (control.paused && !control.cancelled) {
      emit({ event: 'paused', step: state.step });
      while (control.paused && !control.cancelled) await new Promise((r) => setTimeout(r, 100));
      emit({ event: 'continued', step: state.step });
    }
    if (control.cancelled) { status = 'cancelled'; break; }
    const step = state.step;
    const lr = learningRate(cfg.schedule, cfg.lr, step, totalSteps, cfg.warmupSteps);
    const optFeeds = (): Record<string, HostTensor> => {
      const f: Record<string, HostTensor> = { lr: tensor([], Float32Array.of(lr)), step: tensor([], Float32Array.of(step + 1)) };
      for (const p of graphs.params) {
        f[`m:${p.name}`] = tensor(p.shape, m.get(p.name)!);
        f[`v:${p.name}`] = tensor(p.shape, v.get(p.name)!);
      }
      return f;
    };
    let lossSum = 0, tokens = 0;
    let outs: Record<string, HostTensor>;
    if (graphs.fused) {
      const b = microBatch(step);
      tokens += b.tokens;
      outs = await stepSession.run({ ...batchFeeds(b, B, T, embed), ...paramFeeds(), ...optFeeds(), ...seedFeed(graphs, cfg.seed, step, 0) });
      lossSum = (outs.loss!.data as Float32Array)[0]!;
    } else {
      const sums = new Map<string, Float32Array>(graphs.params.map((p) => [p.name, new Float32Array(params.get(p.name)!.length)]));
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const b = microBatch(step * cfg.gradAccum + micro);
        tokens += b.tokens;
        const g = await stepSession.run({ ...batchFeeds(b, B, T, embed), ...paramFeeds(), ...seedFeed(graphs, cfg.seed, step, micro) });
        lossSum += (g.loss!.data as Float32Array)[0]!;
        for (const p of graphs.params) {
          const s = sums.get(p.name)!, d = g[`grad:${p.name}`]!.data as Float32Array;
          for (let i = 0; i < s.length; i++) s[i]! += d[i]! / cfg.gradAccum;
        }
      }
      const f: Record<string, HostTensor> = { ...paramFeeds(), ...optFeeds() };
      for (const p of graphs.params) f[`grad:${p.name}`] = tensor(p.shape, sums.get(p.name)!);
      outs = await updateSession!.run(f);
    }
    const loss = lossSum / (graphs.fused ? 1 : cfg.gradAccum);
    const gradNorm = (outs.grad_norm!.data as Float32Array)[0]!;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const last = latestCheckpoint(out);
      throw new TrainingError(`step ${step + 1}: the loss became ${loss} (gradient norm ${gradNorm}); the update was not applied. ` +
        `Lower the learning rate (now ${cfg.lr}) or enable gradient clipping, then resume${last ? ` from ${last}` : ''}.`);
    }
    for (const p of graphs.params) {
      params.set(p.name, outs[`new:${p.name}`]!.data as Float32Array);
      m.set(p.name, outs[`new_m:${p.name}`]!.data as Float32Array);
      v.set(p.name, outs[`new_v:${p.name}`]!.data as Float32Array);
    }
    state.step = step + 1;
    state.losses.push({ step: state.step, loss });
    lastLoss = loss;
    tokensSeen += tokens;
    const elapsed = (performance.now() - started) / 1000;
    const done = state.step - startStep;
    emit({
      event: 'step', step: state.step, total_steps: totalSteps, loss, lr, grad_norm: gradNorm,
      tokens_per_s: tokensSeen / elapsed, elapsed_s: elapsed, eta_s: (elapsed / done) * (totalSteps - state.step),
      rss_mb: process.memoryUsage().rss / 2 ** 20,
    });

    const last = state.step === totalSteps;
    if ((cfg.evalEvery > 0 && state.step % cfg.evalEvery === 0) || (last && data.validation.length > 0)) {
      evalSession ??= await Session.create(serializeModel(buildLossGraph(model.weights, model.invFreq, shape)), sessionOpts);
      const evalLoss = await evaluate(evalSession, data, B, T, paramFeeds(), embed);
      state.evals.push({ step: state.step, loss: evalLoss });
      emit({ event: 'eval', step: state.step, eval_loss: evalLoss, perplexity: Math.exp(evalLoss) });
    }
    if (state.step % cfg.checkpointEvery === 0 || last) {
      const path = saveCheckpoint(out, state, model, cfg, graphs, params, m, v);
      emit({ event: 'checkpoint', step: state.step, path });
    }
  }

  await stepSession.release();
  await updateSession?.release();
  await evalSession?.release();
  if (status === 'cancelled') {
    // Keep the progress: a cancelled run resumes where it stopped.
    if (state.step > 0 && state.step % cfg.checkpointEvery !== 0) {
      emit({ event: 'checkpoint', step: state.step, path: saveCheckpoint(out, state, model, cfg, graphs, params, m, v) });
    }
    writeFileAtomic(join(out, 'run.json'), JSON.stringify({ config: cfg, status, step: state.step, losses: state.losses, evals: state.evals }, null, 2));
    emit({ event: 'done', adapter: latestCheckpoint(out) ?? '', steps: state.step, loss: lastLoss, eval_loss: state.evals.at(-1)?.loss ?? null, status });
    return { adapter: latestCheckpoint(out) ?? '', steps: state.step };
  }
  savePeftAdapter(out, { spec: cfg.lora, baseModel: cfg.model, tensors: params, cfg: model.config });
  writeFileAtomic(join(out, 'run.json'), JSON.stringify({ config: cfg, status, step: state.step, losses: state.losses, evals: state.evals }, null, 2));
  emit({ event: 'done', adapter: out, steps: state.step, loss: lastLoss, eval_loss: state.evals.at(-1)?.loss ?? null, status });
  return { adapter: out, steps: state.step };
}

function seedFeed(graphs: StepGraphs, seed: number, step: number, micro: number): Record<string, HostTensor> {
  if (!graphs.dropoutModules) return {};
  return { dropout_seeds: { dtype: 'float32', dims: [graphs.dropoutModules], data: dropoutSeeds(seed, step, micro, graphs.dropoutModules) } };
}

/** Mean loss over the validation set, weighted by each batch's target count. */
async function evaluate(session: Session, data: PreparedDataset, B: number, T: number, params: Record<string, HostTensor>, embed?: (ids: BigInt64Array) => Float32Array): Promise<number> {
  let sum = 0, count = 0;
  for (let i = 0; i < data.validation.length; i += B) {
    const idx = Array.from({ length: Math.min(B, data.validation.length - i) }, (_, k) => i + k);
    const b = data.validation.batch(idx, { T });
    if (b.targets === 0) continue;
    const out = await session.run({ ...batchFeeds(b, B, T, embed), ...params });
    sum += (out.loss!.data as Float32Array)[0]! * b.targets;
    count += b.targets;
  }
  return count ? sum / count : NaN;
}

/** Writes checkpoints/step-N atomically (temporary folder, then rename) and prunes old ones. */
function saveCheckpoint(out: string, state: TrainerState, model: LoadedModel, cfg: TrainConfig, graphs: StepGraphs,
  params: Map<string, Float32Array>, m: Map<string, Float32Array>, v: Map<string, Float32Array>): string {
  const root = join(out, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const name = `step-${String(state.step).padStart(8, '0')}`;
  const final = join(root, name), tmp = join(root, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp);
    savePeftAdapter(tmp, { spec: cfg.lora, baseModel: cfg.model, tensors: params, cfg: model.config });
    writeSafetensors(join(tmp, 'optimizer.safetensors'), graphs.params.flatMap((p) => [
      { name: `m:${p.name}`, dtype: 'F32' as const, shape: p.shape, data: m.get(p.name)! },
      { name: `v:${p.name}`, dtype: 'F32' as const, shape: p.shape, data: v.get(p.name)! },
    ]));
    writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(state));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException;
    const previous = latestCheckpoint(out);
    if (err.code === 'ENOSPC') {
      throw new TrainingError(`the disk is full: could not write the checkpoint of step ${state.step} under ${root}. ` +
        `Free some space, then continue with --resume ${out}${previous ? ` (last good checkpoint: ${previous})` : ''}.`);
    }
    throw e;
  }
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const all = readdirSync(root).filter((n) => /^step-\d+$/.test(n)).sort();
  for (const old of all.slice(0, Math.max(0, all.length - cfg.keepCheckpoints))) rmSync(join(root, old), { recursive: true, force: true });
  return final;
}
