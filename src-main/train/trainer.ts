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

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TrainConfig } from '../../src-shared/run-config.js';
import type { DeviceRecord, TrainEvent, TrainPhase } from '../../src-shared/train-events.js';
import type { Batch } from '../data/batch.js';
import { type PreparedDataset, prepareDataset } from '../data/dataset.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { fallbackNodes, placementProbeUnavailable } from '../engine/runtime/placement.js';
import { resolveProvider } from '../engine/runtime/providers.js';
import { sessionFromGraph } from '../engine/onnx/staged.js';
import { type DeviceTensor, type Feed, type HostTensor, type Provider, Session, type SessionOptions, keepsOutputsOnDevice } from '../engine/runtime/session.js';
import { loadPeftAdapter, savePeftAdapter } from '../model/adapter.js';
import { loadModelConfig } from '../model/config.js';
import { slidingWindowIn } from '../model/llama.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { prepareInt4 } from '../model/quant-cache.js';
import { type LoraSpec, initLora } from '../model/lora.js';
import { writeFileAtomic } from '../model/safetensors.js';
import { stagingDir } from '../store/paths.js';
import {
  Checkpointer, type OptimizerTensors, TrainingError, type TrainerState, datasetChange, datasetFingerprint, latestCheckpoint, readRunFile, readState, removeUnfinishedCheckpoints,
} from './checkpoint.js';
import { Gate, RunCancelled, type TrainControl } from './control.js';
import { meanLoss, meanPreferenceLoss, staticSeqLen } from './evaluate.js';
import { batchFeeds } from './feeds.js';
import { graphDevice } from './precision.js';
import { type GraphPlan, planGraph, seqLenRefusal } from './plan.js';
import { learningRate } from './schedule.js';
import { DeviceGradientSum } from './grad-sum.js';
import { TrainableState, discard } from './state.js';
import { DEFAULT_OPTIMIZER, type ReferenceAdapter, type StepGraphs, buildLossGraph, buildStepGraphs } from './step.js';
import { type RewardMetrics, RewardTally } from './objective.js';
import { mulberry32 } from '../util/random.js';
import { MicroBatches, batchShaping, tokenIndexFeed } from './length-batches.js';

export type { TrainControl } from './control.js';

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
export async function openTrainingModel(cfg: Pick<TrainConfig, 'model' | 'quantize' | 'blockSize'>, o: { generates: boolean; onNote?: (message: string) => void; gate?: Gate }): Promise<TrainingModel> {
  await o.gate?.enter('loading');
  const started = performance.now();
  const model = loadModel(cfg.model, { quantize: cfg.quantize, blockSize: cfg.blockSize, rowReads: cfg.quantize && !o.generates });
  try {
    let int4: Awaited<ReturnType<typeof prepareInt4>> | null = null;
    if (cfg.quantize) {
      await o.gate?.enter('quantizing');
      const gate = o.gate;
      int4 = await prepareInt4(model.dir, model.config, model.weights, { onMessage: o.onNote, between: gate && (() => gate.check()) });
    }
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
  /** As each phase begins (after its 'phase' event); the run waits for it. Tests hold or fail a run in a phase here. */
  onPhase?: (phase: TrainPhase, step: number) => void | Promise<void>;
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
 * Pause and cancel (`control`) are honoured at every phase's boundaries (control.ts); a run
 * cancelled before its first step ends 'cancelled' with what it had.
 */
export async function train(cfg: TrainConfig, emit: (e: TrainEvent) => void, control: TrainControl = { paused: false, cancelled: false }, o: TrainOptions = {}): Promise<TrainResult> {
  const hooks = o.hooks ?? {};
  // Refused before anything loads; a folder without config.json is left to loadModel, which names what it lacks.
  const config = o.model?.model.config ?? (existsSync(join(cfg.model, 'config.json')) ? loadModelConfig(cfg.model) : null);
  const tooLong = config && seqLenRefusal(cfg.seqLen, config, cfg.model);
  if (tooLong) throw new TrainingError(tooLong.message, tooLong.hint);
  const gate = new Gate(control, emit, hooks.onPhase);
  const resumeFrom = latestCheckpoint(resolve(cfg.out));
  if (resumeFrom) gate.step = readState(resumeFrom).step;
  let opened = o.model ?? null;
  try {
    opened ??= await openTrainingModel(cfg, { generates: !!hooks.onEvaluated, onNote: (message) => emit({ event: 'note', message }), gate });
    return await trainPrepared(await prepareRun(opened, cfg, emit, gate), emit, gate, hooks);
  } catch (e) {
    if (e instanceof RunCancelled) return cancelledBeforeSteps(cfg, emit);
    throw e;
  } finally {
    if (!o.model) opened?.model.close();
  }
}

/** A run cancelled before its first step (of this process): its folder keeps what it had, and 'done' names its last checkpoint. */
function cancelledBeforeSteps(cfg: TrainConfig, emit: (e: TrainEvent) => void): TrainResult {
  const out = resolve(cfg.out);
  const last = latestCheckpoint(out);
  const state = last ? readState(last) : null;
  const record = { step: state?.step ?? 0, losses: state?.losses ?? [], evals: state?.evals ?? [] };
  if (existsSync(out)) {
    const runFile = join(out, 'run.json');
    const before = existsSync(runFile) ? (() => { try { return readRunFile(runFile); } catch { return null; } })() : null;
    writeFileAtomic(runFile, JSON.stringify({ config: cfg, status: 'cancelled', ...(before?.device ? { device: before.device } : {}), ...record }, null, 2));
  }
  emit({ event: 'done', adapter: last ?? '', steps: record.step, loss: record.losses.at(-1)?.loss ?? null, eval_loss: record.evals.at(-1)?.loss ?? null, status: 'cancelled' });
  return { adapter: last ?? '', steps: record.step };
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
  /** A DPO run's frozen reference adapter (--init-adapter), else null. */
  reference: ReferenceAdapter;
}

/**
 * The adapter a run starts from (--init-adapter): its layout (rank, alpha, rsLoRA, targets: the
 * run's own are set aside, with a note, where they differ; dropout stays the run's) and matrices.
 */
function initAdapter(cfg: TrainConfig, model: LoadedModel, emit: (e: TrainEvent) => void): { spec: LoraSpec; tensors: Map<string, Float32Array> | null } {
  if (!cfg.initAdapter) return { spec: cfg.lora, tensors: null };
  let adapter;
  try {
    adapter = loadPeftAdapter(cfg.initAdapter, model.config);
  } catch (e) {
    throw new TrainingError(`--init-adapter: ${(e as Error).message}`);
  }
  const spec: LoraSpec = { ...adapter.spec, dropout: cfg.lora.dropout };
  const layout = (l: LoraSpec) => `rank ${l.rank}, alpha ${l.alpha}${l.rslora ? ', rsLoRA' : ''}, targets ${l.targets.join(',')}`;
  if (layout(spec) !== layout(cfg.lora)) emit({ event: 'note', message: `training the adapter of ${cfg.initAdapter} further with its own layout (${layout(spec)}), not the run's (${layout(cfg.lora)})` });
  return { spec, tensors: adapter.tensors };
}

/** Refuses a method the data cannot train, naming what fits. */
function checkMethod(cfg: TrainConfig, data: PreparedDataset): void {
  const preference = cfg.method !== 'sft';
  if (data.kind === 'pairs' && !preference) {
    throw new TrainingError(`${cfg.data} holds preference pairs (a chosen and a rejected answer): train it with --method dpo or --method orpo, or map one answer column as the completion (--map completion=chosen) for supervised fine-tuning`);
  }
  if (data.kind === 'sequences' && preference) {
    throw new TrainingError(`--method ${cfg.method} trains on preference pairs, but ${cfg.data} is in the ${data.format.name} format: give each prompt a chosen and a rejected answer (columns prompt, chosen, rejected; see README "Preference tuning")`);
  }
  if (preference && cfg.trainOn === 'all') throw new TrainingError(`--train-on all applies to supervised fine-tuning: --method ${cfg.method} scores the answers (the prompt is the same on both sides)`);
}

/**
 * Prepares a run on an opened model: the dataset, the graph plan on the chosen provider, the
 * compiled step graphs and their sessions, and the LoRA state, fresh or from the last checkpoint.
 * Emits `prepared`, `device`, `ready` and, resuming, `resumed`. Whatever it opened is released
 * when it fails or is cancelled.
 */
async function prepareRun(opened: TrainingModel, cfg: TrainConfig, emit: (e: TrainEvent) => void, gate: Gate): Promise<PreparedRun> {
  const { model } = opened;
  const phaseStart = performance.now();
  const since = (t: number) => (performance.now() - t) / 1000;
  if (model.weights.quantize !== cfg.quantize || (cfg.quantize && model.weights.blockSize !== cfg.blockSize)) {
    throw new TrainingError(`${model.dir}: the model was loaded ${model.weights.quantize ? `4-bit (block ${model.weights.blockSize})` : 'in full precision'} ` +
      `but the run asks for ${cfg.quantize ? `4-bit (block ${cfg.blockSize})` : 'full precision'}; load it with the run's settings`);
  }
  const out = resolve(cfg.out);
  mkdirSync(out, { recursive: true });
  for (const name of removeUnfinishedCheckpoints(out)) emit({ event: 'note', message: `removed ${name}, a checkpoint a stopped process had not finished writing` });
  await gate.enter('data');
  let t = performance.now();
  const data = await prepareDataset(cfg.data, model.tokenizer, {
    seqLen: cfg.seqLen, pack: cfg.pack, valFraction: cfg.valFraction, seed: cfg.seed, trainOn: cfg.trainOn, template: cfg.template,
    format: cfg.format, map: cfg.map, onBadRow: cfg.onBadRow,
  });
  if (data.train.length === 0) throw new TrainingError(`${cfg.data}: no training rows left after preparing the dataset (${data.notes.join('; ')})`);
  checkMethod(cfg, data);
  const start = initAdapter(cfg, model, emit);
  const reference = cfg.method === 'dpo' ? start.tensors : null;
  const T = staticSeqLen([data.train, data.validation], cfg.seqLen);
  const shaping = batchShaping(T, cfg);
  const batches = new MicroBatches(data, cfg.batch, shaping, cfg.seed, cfg.batch * cfg.gradAccum);
  const stepsPerEpoch = Math.max(1, Math.floor(batches.perEpoch / cfg.gradAccum));
  const totalSteps = cfg.maxSteps ?? stepsPerEpoch * cfg.epochs;
  const fingerprint = datasetFingerprint(data, T);
  // A resume continues on the data it started with, or not at all: checked before the slow phases.
  const previous = latestCheckpoint(out);
  if (previous) {
    const change = datasetChange(readState(previous), fingerprint);
    if (change) {
      throw new TrainingError(`${cfg.data}: the prepared dataset differs from the one the run's checkpoint ${previous} was trained on: ${change}`,
        'resume with the data the run started with, or start a new run (Clone settings) to train on this data');
    }
  }
  emit({ event: 'prepared', train_sequences: data.train.length, val_sequences: data.validation.length, seq_len: T, truncated: data.stats.truncated, total_steps: totalSteps, notes: data.notes,
    batch_shape: shaping.mode, pad_multiple: shaping.padMultiple, group_by_length: shaping.groupByLength, padding_fraction: batches.paddingFraction(0) });

  // The provider decides the frozen path's dtype and the largest weight buffer; the plan, the graphs.
  const chosen = await resolveProvider(cfg.provider);
  const onDevice = (() => {
    try { return graphDevice(chosen, cfg.computeDtype); } catch (e) { throw new TrainingError((e as Error).message); }
  })();
  const plan = planGraph({ ...cfg, lora: start.spec, seqLen: T }, model.config, onDevice);
  const embed = plan.hostEmbeddings ? (ids: BigInt64Array) => model.weights.embedRows(ids) : undefined;
  const opt = { ...DEFAULT_OPTIMIZER, weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxGradNorm };
  const dataS = since(t);
  await gate.enter('graphs');
  t = performance.now();
  const graphs = buildStepGraphs(model.weights, model.invFreq, plan, opt, cfg.gradAccum, reference);
  const graphS = since(t);
  await gate.check();
  // ORT's memory arena: measured 2.5-3x faster steps on the small bench preset (no page faults on
  // fresh buffers each step) at similar peak RSS; off in the memory-saving mode (checkpointing),
  // where the arena's rounding up costs more than it saves.
  const strict = cfg.strictProvider && chosen.provider !== 'cpu';
  const sessionOpts = { provider: chosen.provider, disableCpuFallback: strict, threads: cfg.threads, cpuMemArena: !cfg.checkpointLayers };
  const device: DeviceRecord = {
    provider: chosen.provider, adapter: chosen.adapter, reason: chosen.reason, strict,
    compute_dtype: plan.computeDtype, compute_dtype_reason: onDevice.computeDtypeReason, max_weight_bytes: Number.isFinite(plan.maxWeightBytes) ? plan.maxWeightBytes : null,
    ...await cpuFallbacks(graphs, chosen.provider, sessionOpts, strict),
  };
  emit({ event: 'device', ...device });
  const stateOnDevice = keepsOutputsOnDevice(chosen.provider) && cfg.deviceState;
  await gate.enter('sessions');
  t = performance.now();
  const sessions = await openStepSessions(graphs, sessionOpts, TrainableState.deviceOutputs(graphs.params, stateOnDevice), gate);
  try {
    emit({ event: 'ready', load_s: opened.loadS, data_s: dataS, graph_s: graphS, session_s: since(t), total_s: opened.loadS + since(phaseStart), int4_source: opened.int4Source });
    const finch = { template: data.template };
    const checkpoints = new Checkpointer(out, { config: model.config, baseModel: cfg.model, spec: plan.lora, params: graphs.params, finch }, cfg.keepCheckpoints);

    // State: parameters and moments, fresh or from the last checkpoint; from here on every
    // checkpoint records this data's fingerprint (an older checkpoint's lacks the content hashes).
    let state: TrainerState = { step: 0, config: cfg, losses: [], evals: [], ...fingerprint };
    let tensors: OptimizerTensors;
    const restored = checkpoints.restore();
    if (restored) {
      state = { ...restored.state, ...fingerprint };
      tensors = restored.tensors;
      emit({ event: 'resumed', step: state.step });
    } else {
      tensors = { params: new Map(), m: new Map(), v: new Map() };
      for (const [k, t] of start.tensors ?? initLora(graphs.params, cfg.seed)) {
        tensors.params.set(k, t);
        tensors.m.set(k, new Float32Array(t.length));
        tensors.v.set(k, new Float32Array(t.length));
      }
      writeFileAtomic(join(out, 'run.json'), JSON.stringify({ config: cfg, status: 'running', device }, null, 2));
    }
    gate.step = state.step;
    const trainable = new TrainableState(graphs.params, tensors, stateOnDevice, chosen.provider);
    return { cfg, model, out, data, batches, totalSteps, plan, graphs, sessionOpts, sessions, device, embed, checkpoints, finch, state, trainable, reference };
  } catch (e) {
    await releaseStepSessions(sessions);
    throw e;
  }
}

/**
 * The nodes of the step graph that ORT would run on the CPU instead of a GPU provider. Listing them
 * starts a Node process (engine/runtime/placement.ts), which an Electron utility process (the
 * desktop app's jobs) cannot do: there the run says why they were not listed.
 */
async function cpuFallbacks(graphs: StepGraphs, provider: Provider, opts: SessionOptions, strict: boolean): Promise<Pick<DeviceRecord, 'fallback_nodes' | 'fallback_unchecked'>> {
  if (strict || provider === 'cpu') return { fallback_nodes: [] };
  const unavailable = placementProbeUnavailable();
  if (unavailable) return { fallback_nodes: [], fallback_unchecked: unavailable };
  // Serializing the step graph for the probe costs a copy of its weights: only off the CPU.
  return { fallback_nodes: await fallbackNodes(serializeModel(graphs.kind === 'fused' ? graphs.step : graphs.grads), provider, opts) };
}

/**
 * The optimizer steps of a prepared run, its evaluations and checkpoints (with the hook after
 * them), then the final adapter. Releases the run's sessions and device state on every way out.
 * A pause first checkpoints the steps taken since the last checkpoint, so that a paused run loses
 * nothing if Finch stops; a cancel keeps them the same way and ends the run 'cancelled'.
 */
async function trainPrepared(run: PreparedRun, emit: (e: TrainEvent) => void, gate: Gate, hooks: TrainHooks): Promise<TrainResult> {
  const { cfg, model, out, data, batches, totalSteps, plan, graphs, sessions, checkpoints, finch, state, trainable, embed } = run;
  const B = plan.batch, T = plan.seq;
  // Each micro-batch at its own padded length (b.T); a symbolic-length graph with dropout also takes token_index.
  const window = slidingWindowIn(model.config, T); // the graphs take the sliding layers' mask
  const microFeeds = (b: Batch) => ({ ...batchFeeds(b, B, b.T, embed, window), ...(plan.dynamicSeq && graphs.dropoutModules ? tokenIndexFeed(b.T) : {}) });
  const evaluated = new Set<number>();
  /** The step of the newest checkpoint (the restored one when resuming; -1: none yet). */
  let savedStep = checkpoints.latest() ? state.step : -1;
  const save = (tensors: OptimizerTensors): string => {
    const path = checkpoints.save(state, tensors);
    savedStep = state.step;
    emit({ event: 'checkpoint', step: state.step, path });
    return path;
  };
  /** Writes a checkpoint; the hook follows one of an evaluated or the last step. */
  const checkpoint = async (tensors: OptimizerTensors) => {
    const path = save(tensors);
    if (hooks.onEvaluated && (evaluated.has(state.step) || state.step === totalSteps)) await hooks.onEvaluated(state.step, path, model);
  };
  const unsaved = () => state.step > 0 && state.step !== savedStep;
  let evalSession: Session | null = null;
  const started = performance.now();
  const startStep = state.step;
  let lastLoss: number | null = state.losses.at(-1)?.loss ?? null;
  let tokensSeen = 0;
  let status: 'completed' | 'cancelled' = 'completed';
  let tensors: OptimizerTensors;
  try {
    gate.beforePause = async () => { if (unsaved()) save(await trainable.toHost()); };
    try {
      await gate.enter('training');
      while (state.step < totalSteps) {
        // session.run does not yield to the event loop: the boundary does, once per step, so that
        // control messages (pause, cancel from the app or a worker's parent) are seen.
        await gate.check();
        const step = state.step;
        const lr = learningRate(cfg.schedule, cfg.lr, step, totalSteps, cfg.warmupSteps);
        const r = await runStep(sessions, graphs, trainable, {
          step, lr, gradAccum: cfg.gradAccum, seed: cfg.seed, micro: (k) => batches.get(k), feeds: microFeeds, pairs: plan.objective.method !== 'sft',
        });
        if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
          discard(r.device);
          const last = checkpoints.latest();
          throw new TrainingError(`step ${step + 1}: the loss became ${r.loss} (gradient norm ${r.gradNorm}); the update was not applied. ` +
            `Lower the learning rate (now ${cfg.lr}) or enable gradient clipping, then resume${last ? ` from ${last}` : ''}.`);
        }
        trainable.update(r.host, r.device);
        state.step = gate.step = step + 1;
        state.losses.push({ step: state.step, loss: r.loss });
        lastLoss = r.loss;
        tokensSeen += r.tokens;
        const elapsed = (performance.now() - started) / 1000;
        const done = state.step - startStep;
        emit({
          event: 'step', step: state.step, total_steps: totalSteps, loss: r.loss, lr, grad_norm: r.gradNorm,
          tokens_per_s: tokensSeen / elapsed, elapsed_s: elapsed, eta_s: (elapsed / done) * (totalSteps - state.step),
          rss_mb: process.memoryUsage().rss / 2 ** 20, ...r.rewards,
        });

        const last = state.step === totalSteps;
        const evaluates = (cfg.evalEvery > 0 && state.step % cfg.evalEvery === 0) || (last && data.validation.length > 0);
        const checkpointDue = state.step % cfg.checkpointEvery === 0 || last;
        if (evaluates) {
          await gate.enter('evaluating');
          evalSession ??= await sessionFromGraph(buildLossGraph(model.weights, model.invFreq, plan, run.reference), run.sessionOpts, stagingDir());
          const params = trainable.paramFeeds(), between = () => gate.check();
          const e = data.kind === 'pairs'
            ? await meanPreferenceLoss(evalSession, data.validation, B / 2, T, params, embed, window, between)
            : { ...await meanLoss(evalSession, data.validation, B, T, params, embed, window, between), rewards: undefined };
          state.evals.push({ step: state.step, loss: e.loss });
          evaluated.add(state.step);
          emit({ event: 'eval', step: state.step, eval_loss: e.loss, perplexity: Math.exp(e.loss), ...e.rewards });
        }
        if (checkpointDue) {
          await gate.enter('checkpoint');
          await checkpoint(await trainable.toHost());
        }
        if ((evaluates || checkpointDue) && !last) await gate.enter('training');
      }
    } catch (e) {
      if (!(e instanceof RunCancelled)) throw e;
      status = 'cancelled';
    }
    gate.beforePause = null;
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
    if (unsaved()) save(tensors);
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
async function openStepSessions(graphs: StepGraphs, opts: SessionOptions, keep: string[], gate: Gate): Promise<StepSessions> {
  // A boundary before each session; what was opened is released if the run stops in between.
  const opened: { release(): Promise<void> }[] = [];
  const open = async <S extends { release(): Promise<void> }>(create: () => Promise<S>): Promise<S> => {
    await gate.check();
    const s = await create();
    opened.push(s);
    return s;
  };
  try {
    const updating = { ...opts, outputsOnDevice: keep };
    if (graphs.kind === 'fused') return { kind: 'fused', step: await open(() => sessionFromGraph(graphs.step, updating, stagingDir())) };
    const onDevice = keep.length > 0;
    const grads = await open(() => sessionFromGraph(graphs.grads, { ...opts, outputsOnDevice: onDevice ? DeviceGradientSum.deviceOutputs(graphs.params) : [] }, stagingDir()));
    const gradSum = onDevice ? await open(() => DeviceGradientSum.open(graphs.params, opts)) : null;
    return { kind: 'accumulating', grads, update: await open(() => sessionFromGraph(graphs.update, updating, stagingDir())), gradSum };
  } catch (e) {
    for (const s of opened.reverse()) await s.release();
    throw e;
  }
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
  /** A preference objective: its loss is a mean over pairs, and the step reports their rewards. */
  pairs: boolean;
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
 * would weight the tokens of a short micro-batch more than those of a long one. A preference
 * objective's loss is a mean over pairs, so n_i counts a micro-batch's pairs.
 */
async function runStep(sessions: StepSessions, graphs: StepGraphs, state: TrainableState, s: StepInputs): Promise<{ host: Record<string, HostTensor>; device: Record<string, DeviceTensor>; loss: number; gradNorm: number; tokens: number; rewards: RewardMetrics | undefined }> {
  const paramFeeds = state.paramFeeds();
  const optFeeds: Record<string, Feed> = { lr: tensor([], Float32Array.of(s.lr)), step: tensor([], Float32Array.of(s.step + 1)), ...state.momentFeeds() };
  const seeds = (micro: number) => seedFeed(graphs, s.seed, s.step, micro);
  const weight = (b: Batch) => (s.pairs ? b.pairs : b.targets);
  const rewards = new RewardTally();
  const tally = (host: Record<string, HostTensor>, b: Batch) => {
    if (s.pairs) rewards.add(host.rewards_chosen!.data as Float32Array, host.rewards_rejected!.data as Float32Array, b.pairs);
  };
  let outs: { host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }, loss: number, tokens = 0;
  if (sessions.kind === 'fused') {
    const b = s.micro(s.step);
    tokens += b.tokens;
    outs = await sessions.step.runKeeping({ ...s.feeds(b), ...paramFeeds, ...optFeeds, ...seeds(0) });
    loss = (outs.host.loss!.data as Float32Array)[0]!;
    tally(outs.host, b);
  } else {
    let lossSum = 0, targets = 0; // sum(n_i L_i), N
    const sums = new Map<string, Float64Array>(); // sum(n_i g_i), when the gradients come to the host
    const micros = Array.from({ length: s.gradAccum }, (_, micro) => s.micro(s.step * s.gradAccum + micro));
    const N = micros.reduce((a, b) => a + weight(b), 0); // the device sum weighs by n_i / N as it goes
    for (const [micro, b] of micros.entries()) {
      tokens += b.tokens;
      if (weight(b) === 0) continue; // nothing trained: its mean loss is 0/0 and its weight 0
      const g = await sessions.grads.runKeeping({ ...s.feeds(b), ...paramFeeds, ...seeds(micro) });
      const n = weight(b);
      tally(g.host, b);
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
  return { ...outs, loss, gradNorm: (outs.host.grad_norm!.data as Float32Array)[0]!, tokens, rewards: s.pairs ? rewards.metrics() : undefined };
}

function seedFeed(graphs: StepGraphs, seed: number, step: number, micro: number): Record<string, HostTensor> {
  if (!graphs.dropoutModules) return {};
  return { dropout_seeds: tensor([graphs.dropoutModules], dropoutSeeds(seed, step, micro, graphs.dropoutModules)) };
}
