// The fine-tuning run: data -> compiled step graph -> optimizer steps, with evaluation,
// checkpoints that resume exactly, a NaN guard and progress events. Everything a step depends on
// (data order, dropout masks, learning rate) is a pure function of (seed, step), so a run killed at
// any moment and resumed from its last checkpoint continues with the very same numbers.
//
// Output folder:
//   <out>/adapter_config.json, adapter_model.safetensors   the final PEFT adapter
//   <out>/finch_adapter.json                                the chat template training used (model/adapter.ts)
//   <out>/run.json                                          config, status and loss history
//   <out>/checkpoints/step-<N>/                             written and read by Checkpointer (checkpoint.ts)

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TrainConfig } from '../../src-shared/run-config.js';
import type { DeviceRecord, TrainEvent } from '../../src-shared/train-events.js';
import type { Batch } from '../data/batch.js';
import { type PreparedDataset, prepareDataset } from '../data/dataset.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { fallbackNodes } from '../engine/runtime/placement.js';
import { resolveProvider } from '../engine/runtime/providers.js';
import { sessionFromGraph } from '../engine/onnx/staged.js';
import { type DeviceTensor, type Feed, type HostTensor, Session, type SessionOptions, keepsOutputsOnDevice } from '../engine/runtime/session.js';
import { savePeftAdapter } from '../model/adapter.js';
import { slidingWindowIn } from '../model/llama.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { prepareInt4 } from '../model/quant-cache.js';
import { initLora } from '../model/lora.js';
import { writeFileAtomic } from '../model/safetensors.js';
import { stagingDir } from '../store/paths.js';
import { Checkpointer, type OptimizerTensors, TrainingError, type TrainerState } from './checkpoint.js';
import { meanLoss, staticSeqLen } from './evaluate.js';
import { batchFeeds } from './feeds.js';
import { graphDevice } from './precision.js';
import { type GraphPlan, planGraph } from './plan.js';
import { learningRate } from './schedule.js';
import { DeviceGradientSum } from './grad-sum.js';
import { TrainableState, discard } from './state.js';
import { DEFAULT_OPTIMIZER, type StepGraphs, buildLossGraph, buildStepGraphs } from './step.js';
import { mulberry32 } from '../util/random.js';
import { MicroBatches, batchShaping, tokenIndexFeed } from './length-batches.js';

export interface TrainControl {
  paused: boolean;
  cancelled: boolean;
}

/** Dropout seeds of one micro-batch: a pure function of (seed, step, micro), so resume repeats them. */
function dropoutSeeds(seed: number, step: number, micro: number, n: number): Float32Array {
  const rand = mulberry32((seed * 1_000_003 + step * 7919 + micro * 104_729) >>> 0);
  return Float32Array.from({ length: n }, () => rand() * 1000);
}

/** A model opened for a run, and how long opening it took (the `ready` event's load phase). */
export interface TrainingModel {
  model: LoadedModel;
  /** Seconds spent loading, the 4-bit cache read or quantization included. */
  loadS: number;
  int4Source: 'cache' | 'quantized' | null;
}

/**
 * Opens cfg.model as a run trains it: in full precision, or for QLoRA in 4 bits (blocks of
 * cfg.blockSize) from FINCH_HOME's weight cache, quantized on every core and cached the first time.
 * QLoRA gathers embedding rows on the host (train/plan.ts) and reads them from the checkpoint one
 * at a time, so the table never enters memory (2 GiB at 128k x 4096), unless `generates`: a run that
 * also generates with this model (sample answers, the demo) has the table in its generation graphs
 * anyway, and gathers its rows from that copy.
 */
export async function openTrainingModel(cfg: Pick<TrainConfig, 'model' | 'quantize' | 'blockSize'>, o: { generates: boolean; onNote?: (message: string) => void }): Promise<TrainingModel> {
  const started = performance.now();
  const model = loadModel(cfg.model, { quantize: cfg.quantize, blockSize: cfg.blockSize, rowReads: cfg.quantize && !o.generates });
  try {
    const int4 = cfg.quantize ? await prepareInt4(model.dir, model.config, model.weights, { onMessage: o.onNote }) : null;
    return { model, loadS: (performance.now() - started) / 1000, int4Source: int4?.source ?? null };
  } catch (e) {
    model.close();
    throw e;
  }
}

/** What a caller hangs on a run's loop. */
export interface TrainHooks {
  /**
   * After the checkpoint of a step that evaluated (an evalEvery step that is also a checkpoint
   * step) or of the last step: that checkpoint's folder (a PEFT adapter) and the run's model. The
   * loop waits for it before the next step. The app's sample answers are made here.
   */
  onEvaluated?: (step: number, adapterDir: string, model: LoadedModel) => Promise<void>;
}

export interface TrainOptions {
  /**
   * The model, opened by the caller with openTrainingModel and still the caller's afterwards (the
   * demo answers with it before and after training); by default it is opened here and closed at the end.
   */
  model?: TrainingModel;
  hooks?: TrainHooks;
}

export interface TrainResult {
  /** The final adapter folder (cfg.out), or the last checkpoint of a cancelled run ('' if none). */
  adapter: string;
  steps: number;
}

/**
 * The one way into training (`finch train`, the app's job host, the demo): opens the model, prepares
 * the run (data, graph plan, graphs, sessions, state: prepareRun), then runs the optimizer steps.
 */
export async function train(cfg: TrainConfig, emit: (e: TrainEvent) => void, control: TrainControl = { paused: false, cancelled: false }, o: TrainOptions = {}): Promise<TrainResult> {
  const hooks = o.hooks ?? {};
  const opened = o.model ?? await openTrainingModel(cfg, { generates: !!hooks.onEvaluated, onNote: (message) => emit({ event: 'note', message }) });
  try {
    return await trainPrepared(await prepareRun(opened, cfg, emit), emit, control, hooks);
  } finally {
    if (!o.model) opened.model.close();
  }
}

/** A run ready for its first step: what prepareRun made, and the sessions it opened (released by trainPrepared). */
interface PreparedRun {
  cfg: TrainConfig;
  model: LoadedModel;
  out: string;
  data: PreparedDataset;
  batches: MicroBatches;
  totalSteps: number;
  plan: GraphPlan;
  graphs: StepGraphs;
  sessionOpts: SessionOptions;
  sessions: StepSessions;
  device: DeviceRecord;
  /** The host gathers embedding rows (plan.hostEmbeddings). */
  embed: ((ids: BigInt64Array) => Float32Array) | undefined;
  checkpoints: Checkpointer;
  /** Recorded beside every adapter the run writes: eval and generate render prompts as training did. */
  finch: { template: PreparedDataset['template'] };
  /** Step, losses and evaluations so far (from the last checkpoint when resuming). */
  state: TrainerState;
  trainable: TrainableState;
}

/**
 * Prepares a run on an opened model: the dataset, the graph plan on the chosen provider, the
 * compiled step graphs and their sessions, and the LoRA state, fresh or from the last checkpoint.
 * Emits `prepared`, `device`, `ready` and, resuming, `resumed`.
 */
async function prepareRun(opened: TrainingModel, cfg: TrainConfig, emit: (e: TrainEvent) => void): Promise<PreparedRun> {
  const { model } = opened;
  const phaseStart = performance.now();
  const since = (t: number) => (performance.now() - t) / 1000;
  if (model.weights.quantize !== cfg.quantize || (cfg.quantize && model.weights.blockSize !== cfg.blockSize)) {
    throw new TrainingError(`${model.dir}: the model was loaded ${model.weights.quantize ? `4-bit (block ${model.weights.blockSize})` : 'in full precision'} ` +
      `but the run asks for ${cfg.quantize ? `4-bit (block ${cfg.blockSize})` : 'full precision'}; load it with the run's settings`);
  }
  const out = resolve(cfg.out);
  mkdirSync(out, { recursive: true });
  let t = performance.now();
  const data = await prepareDataset(cfg.data, model.tokenizer, {
    seqLen: cfg.seqLen, pack: cfg.pack, valFraction: cfg.valFraction, seed: cfg.seed, trainOn: cfg.trainOn, template: cfg.template,
    format: cfg.format, map: cfg.map, onBadRow: cfg.onBadRow,
  });
  if (data.train.length === 0) throw new TrainingError(`${cfg.data}: no training rows left after preparing the dataset (${data.notes.join('; ')})`);
  const T = staticSeqLen([data.train, data.validation], cfg.seqLen);
  const shaping = batchShaping(T, cfg);
  const batches = new MicroBatches(data, cfg.batch, shaping, cfg.seed, cfg.batch * cfg.gradAccum);
  const stepsPerEpoch = Math.max(1, Math.floor(batches.perEpoch / cfg.gradAccum));
  const totalSteps = cfg.maxSteps ?? stepsPerEpoch * cfg.epochs;
  const fingerprint = `${data.train.length}:${data.validation.length}:${data.stats.tokens}:${T}`;
  emit({ event: 'prepared', train_sequences: data.train.length, val_sequences: data.validation.length, seq_len: T, truncated: data.stats.truncated, total_steps: totalSteps, notes: data.notes,
    batch_shape: shaping.mode, pad_multiple: shaping.padMultiple, group_by_length: shaping.groupByLength, padding_fraction: batches.paddingFraction(0) });

  // The provider decides the frozen path's dtype and the largest weight buffer; the plan, the graphs.
  const chosen = await resolveProvider(cfg.provider);
  const onDevice = (() => {
    try { return graphDevice(chosen, cfg.computeDtype); } catch (e) { throw new TrainingError((e as Error).message); }
  })();
  const plan = planGraph({ ...cfg, seqLen: T }, model.config, onDevice);
  const embed = plan.hostEmbeddings ? (ids: BigInt64Array) => model.weights.embedRows(ids) : undefined;
  const opt = { ...DEFAULT_OPTIMIZER, weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxGradNorm };
  const dataS = since(t);
  t = performance.now();
  const graphs = buildStepGraphs(model.weights, model.invFreq, plan, opt, cfg.gradAccum);
  const graphS = since(t);
  t = performance.now();
  // ORT's memory arena: measured 2.5-3x faster steps on the small bench preset (no page faults on
  // fresh buffers each step) at similar peak RSS; off in the memory-saving mode (checkpointing),
  // where the arena's rounding up costs more than it saves.
  const strict = cfg.strictProvider && chosen.provider !== 'cpu';
  const sessionOpts = { provider: chosen.provider, disableCpuFallback: strict, threads: cfg.threads, cpuMemArena: !cfg.checkpointLayers };
  const device: DeviceRecord = {
    provider: chosen.provider, adapter: chosen.adapter, reason: chosen.reason, strict,
    compute_dtype: plan.computeDtype, compute_dtype_reason: onDevice.computeDtypeReason, max_weight_bytes: Number.isFinite(plan.maxWeightBytes) ? plan.maxWeightBytes : null,
    // Serializing the step graph for the placement probe costs a copy of its weights: only off the CPU.
    fallback_nodes: strict || chosen.provider === 'cpu' ? [] : await fallbackNodes(serializeModel(graphs.kind === 'fused' ? graphs.step : graphs.grads), chosen.provider, sessionOpts),
  };
  emit({ event: 'device', ...device });
  const stateOnDevice = keepsOutputsOnDevice(chosen.provider) && cfg.deviceState;
  const sessions = await openStepSessions(graphs, sessionOpts, TrainableState.deviceOutputs(graphs.params, stateOnDevice));
  try {
    emit({ event: 'ready', load_s: opened.loadS, data_s: dataS, graph_s: graphS, session_s: since(t), total_s: opened.loadS + since(phaseStart), int4_source: opened.int4Source });
    const finch = { template: data.template };
    const checkpoints = new Checkpointer(out, { config: model.config, baseModel: cfg.model, spec: plan.lora, params: graphs.params, finch }, cfg.keepCheckpoints);

    // State: parameters and moments, fresh or from the last checkpoint.
    let state: TrainerState = { step: 0, config: cfg, losses: [], evals: [], datasetFingerprint: fingerprint };
    let tensors: OptimizerTensors;
    const restored = checkpoints.restore();
    if (restored) {
      if (restored.state.datasetFingerprint !== fingerprint) {
        throw new TrainingError(`${restored.dir}: the dataset or sequence length changed since this run started (${restored.state.datasetFingerprint} vs ${fingerprint}); start a new run in another folder`);
      }
      ({ state, tensors } = restored);
      emit({ event: 'resumed', step: state.step });
    } else {
      tensors = { params: new Map(), m: new Map(), v: new Map() };
      for (const [k, t] of initLora(graphs.params, cfg.seed)) {
        tensors.params.set(k, t);
        tensors.m.set(k, new Float32Array(t.length));
        tensors.v.set(k, new Float32Array(t.length));
      }
      writeFileAtomic(join(out, 'run.json'), JSON.stringify({ config: cfg, status: 'running', device }, null, 2));
    }
    const trainable = new TrainableState(graphs.params, tensors, stateOnDevice, chosen.provider);
    return { cfg, model, out, data, batches, totalSteps, plan, graphs, sessionOpts, sessions, device, embed, checkpoints, finch, state, trainable };
  } catch (e) {
    await releaseStepSessions(sessions);
    throw e;
  }
}

/**
 * The optimizer steps of a prepared run, its evaluations and checkpoints (with the hook after
 * them), then the final adapter. Releases the run's sessions and device state on every way out.
 */
async function trainPrepared(run: PreparedRun, emit: (e: TrainEvent) => void, control: TrainControl, hooks: TrainHooks): Promise<TrainResult> {
  const { cfg, model, out, data, batches, totalSteps, plan, graphs, sessions, checkpoints, finch, state, trainable, embed } = run;
  const B = plan.batch, T = plan.seq;
  // Each micro-batch at its own padded length (b.T); a symbolic-length graph with dropout also takes token_index.
  const window = slidingWindowIn(model.config, T); // the graphs take the sliding layers' mask
  const microFeeds = (b: Batch) => ({ ...batchFeeds(b, B, b.T, embed, window), ...(plan.dynamicSeq && graphs.dropoutModules ? tokenIndexFeed(b.T) : {}) });
  const evaluated = new Set<number>();
  /** Writes a checkpoint; the hook follows one of an evaluated or the last step. */
  const checkpoint = async (tensors: OptimizerTensors) => {
    const path = checkpoints.save(state, tensors);
    emit({ event: 'checkpoint', step: state.step, path });
    if (hooks.onEvaluated && (evaluated.has(state.step) || state.step === totalSteps)) await hooks.onEvaluated(state.step, path, model);
  };
  let evalSession: Session | null = null;
  const started = performance.now();
  const startStep = state.step;
  let lastLoss: number | null = state.losses.at(-1)?.loss ?? null;
  let tokensSeen = 0;
  let status: 'completed' | 'cancelled' = 'completed';
  let tensors: OptimizerTensors;
  try {
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
      const r = await runStep(sessions, graphs, trainable, {
        step, lr, gradAccum: cfg.gradAccum, seed: cfg.seed, micro: (k) => batches.get(k), feeds: microFeeds,
      });
      if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
        discard(r.device);
        const last = checkpoints.latest();
        throw new TrainingError(`step ${step + 1}: the loss became ${r.loss} (gradient norm ${r.gradNorm}); the update was not applied. ` +
          `Lower the learning rate (now ${cfg.lr}) or enable gradient clipping, then resume${last ? ` from ${last}` : ''}.`);
      }
      trainable.update(r.host, r.device);
      state.step = step + 1;
      state.losses.push({ step: state.step, loss: r.loss });
      lastLoss = r.loss;
      tokensSeen += r.tokens;
      const elapsed = (performance.now() - started) / 1000;
      const done = state.step - startStep;
      emit({
        event: 'step', step: state.step, total_steps: totalSteps, loss: r.loss, lr, grad_norm: r.gradNorm,
        tokens_per_s: tokensSeen / elapsed, elapsed_s: elapsed, eta_s: (elapsed / done) * (totalSteps - state.step),
        rss_mb: process.memoryUsage().rss / 2 ** 20,
      });

      const last = state.step === totalSteps;
      if ((cfg.evalEvery > 0 && state.step % cfg.evalEvery === 0) || (last && data.validation.length > 0)) {
        evalSession ??= await sessionFromGraph(buildLossGraph(model.weights, model.invFreq, plan), run.sessionOpts, stagingDir());
        const evalLoss = (await meanLoss(evalSession, data.validation, B, T, trainable.paramFeeds(), embed, window)).loss;
        state.evals.push({ step: state.step, loss: evalLoss });
        evaluated.add(state.step);
        emit({ event: 'eval', step: state.step, eval_loss: evalLoss, perplexity: Math.exp(evalLoss) });
      }
      if (state.step % cfg.checkpointEvery === 0 || last) await checkpoint(await trainable.toHost());
    }
    // The state leaves the device for the last writes.
    tensors = await trainable.toHost();
  } finally {
    // Device tensors are freed before their sessions.
    await trainable.release();
    await releaseStepSessions(sessions);
    await evalSession?.release();
  }

  const runJson = () => writeFileAtomic(join(out, 'run.json'), JSON.stringify({ config: cfg, status, device: run.device, step: state.step, losses: state.losses, evals: state.evals }, null, 2));
  let adapter = out;
  if (status === 'cancelled') {
    // Keep the progress: a cancelled run resumes where it stopped.
    if (state.step > 0 && state.step % cfg.checkpointEvery !== 0) await checkpoint(tensors);
    adapter = checkpoints.latest() ?? '';
  } else {
    savePeftAdapter(out, { spec: plan.lora, baseModel: cfg.model, tensors: tensors.params, cfg: model.config, finch });
  }
  runJson();
  emit({ event: 'done', adapter, steps: state.step, loss: lastLoss, eval_loss: state.evals.at(-1)?.loss ?? null, status });
  return { adapter, steps: state.step };
}

const tensor = (dims: readonly number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims, data });

/** The sessions of a StepGraphs, same shape. */
type StepSessions = { kind: 'fused'; step: Session } | { kind: 'accumulating'; grads: Session; update: Session; gradSum: DeviceGradientSum | null };

/**
 * `keep`: the updated-state outputs to leave on the device (TrainableState.deviceOutputs); when
 * there are any, accumulated gradients stay on the device too (grad-sum.ts).
 */
async function openStepSessions(graphs: StepGraphs, opts: SessionOptions, keep: string[]): Promise<StepSessions> {
  const updating = { ...opts, outputsOnDevice: keep };
  if (graphs.kind === 'fused') return { kind: 'fused', step: await sessionFromGraph(graphs.step, updating, stagingDir()) };
  const onDevice = keep.length > 0;
  const grads = await sessionFromGraph(graphs.grads, { ...opts, outputsOnDevice: onDevice ? DeviceGradientSum.deviceOutputs(graphs.params) : [] }, stagingDir());
  const gradSum = onDevice ? await DeviceGradientSum.open(graphs.params, opts) : null;
  return { kind: 'accumulating', grads, update: await sessionFromGraph(graphs.update, updating, stagingDir()), gradSum };
}

async function releaseStepSessions(s: StepSessions): Promise<void> {
  if (s.kind === 'fused') return s.step.release();
  await s.gradSum?.release();
  await s.grads.release();
  await s.update.release();
}

interface StepInputs {
  step: number;
  lr: number;
  gradAccum: number;
  seed: number;
  /** Micro-batch k of the run (k = step for a fused step, step * gradAccum + micro otherwise). */
  micro: (k: number) => Batch;
  feeds: (b: Batch) => Record<string, HostTensor>;
}

/**
 * One optimizer step. Returns the updated tensors' outputs ("new:", "new_m:", "new_v:"; on the
 * device or the host as the session keeps them), the step's loss and gradient norm, and the
 * tokens it read.
 *
 * With gradient accumulation the step's loss is the mean over every trained token of its
 * micro-batches, as if they were one batch (Hugging Face Trainer normalizes the same way): each
 * micro-batch's graph gives the mean loss L_i over its n_i trained tokens and its gradient g_i, and
 * the step uses sum(n_i L_i) / N and sum(n_i g_i) / N with N = sum(n_i). Averaging the L_i instead
 * would weight the tokens of a short micro-batch more than those of a long one.
 */
async function runStep(sessions: StepSessions, graphs: StepGraphs, state: TrainableState, s: StepInputs): Promise<{ host: Record<string, HostTensor>; device: Record<string, DeviceTensor>; loss: number; gradNorm: number; tokens: number }> {
  const paramFeeds = state.paramFeeds();
  const optFeeds: Record<string, Feed> = { lr: tensor([], Float32Array.of(s.lr)), step: tensor([], Float32Array.of(s.step + 1)), ...state.momentFeeds() };
  const seeds = (micro: number) => seedFeed(graphs, s.seed, s.step, micro);
  let outs: { host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }, loss: number, tokens = 0;
  if (sessions.kind === 'fused') {
    const b = s.micro(s.step);
    tokens += b.tokens;
    outs = await sessions.step.runKeeping({ ...s.feeds(b), ...paramFeeds, ...optFeeds, ...seeds(0) });
    loss = (outs.host.loss!.data as Float32Array)[0]!;
  } else {
    let lossSum = 0, targets = 0; // sum(n_i L_i), N
    const sums = new Map<string, Float64Array>(); // sum(n_i g_i), when the gradients come to the host
    const micros = Array.from({ length: s.gradAccum }, (_, micro) => s.micro(s.step * s.gradAccum + micro));
    const N = micros.reduce((a, b) => a + b.targets, 0); // the device sum weighs by n_i / N as it goes
    for (const [micro, b] of micros.entries()) {
      tokens += b.tokens;
      if (b.targets === 0) continue; // nothing trained: its mean loss is 0/0 and its weight 0
      const g = await sessions.grads.runKeeping({ ...s.feeds(b), ...paramFeeds, ...seeds(micro) });
      const n = b.targets;
      lossSum += (g.host.loss!.data as Float32Array)[0]! * n;
      targets += n;
      if (sessions.gradSum) { await sessions.gradSum.add(g.device, n / N); continue; }
      for (const p of graphs.params) {
        const d = g.host[`grad:${p.name}`]!.data as Float32Array;
        let sum = sums.get(p.name);
        if (!sum) sums.set(p.name, sum = new Float64Array(d.length));
        for (let i = 0; i < sum.length; i++) sum[i]! += d[i]! * n;
      }
    }
    const f: Record<string, Feed> = { ...paramFeeds, ...optFeeds, ...sessions.gradSum?.feeds() };
    for (const p of graphs.params) { // the host sums (0/0 = NaN for the guard when no micro-batch had targets)
      f[`grad:${p.name}`] ??= tensor(p.shape, Float32Array.from(sums.get(p.name) ?? new Float64Array(p.shape.reduce((a, d) => a * d, 1)), (x) => x / targets));
    }
    outs = await sessions.update.runKeeping(f);
    sessions.gradSum?.clear();
    loss = lossSum / targets;
  }
  return { ...outs, loss, gradNorm: (outs.host.grad_norm!.data as Float32Array)[0]!, tokens };
}

function seedFeed(graphs: StepGraphs, seed: number, step: number, micro: number): Record<string, HostTensor> {
  if (!graphs.dropoutModules) return {};
  return { dropout_seeds: tensor([graphs.dropoutModules], dropoutSeeds(seed, step, micro, graphs.dropoutModules)) };
}
