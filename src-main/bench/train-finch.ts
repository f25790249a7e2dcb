// Child process of `finch bench train`: builds the preset's LoRA training step as the trainer plans
// it (train/plan.ts) on random frozen weights, measures the MatMul peak of this machine through the same ONNX Runtime (the MFU
// denominator), then times optimizer steps. Prints one JSON line. With "batches" (train-data.ts)
// it trains on a real dataset's micro-batches instead of random tokens: one symbolic-length
// session, each batch at its own padded length (or, with "staticSeq", all padded to the longest
// row), and reports real (non-padding) tokens/s. With "method" dpo or orpo it times the preference
// step instead: "batch" pairs of random chosen and rejected rows (2 x batch rows; for DPO also the
// reference forward with LoRA off in the same graph).

import { Graph } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { type Feed, type Provider, Session, keepsOutputsOnDevice } from '../engine/runtime/session.js';
import { FrozenWeights } from '../model/weights/frozen-weights.js';
import type { ComputeDtype } from '../model/weights/graph-weights.js';
import { DEFAULT_BLOCK } from '../model/quant.js';
import { LORA_TARGETS, initLora } from '../model/lora.js';
import { estimateDeviceMemory, estimateTrainingMemory } from '../train/memory.js';
import { type GraphSettings, planGraph } from '../train/plan.js';
import type { Method } from '../train/objective.js';
import { mulberry32 } from '../util/random.js';
import { TrainableState } from '../train/state.js';
import { buildFusedStep, DEFAULT_OPTIMIZER } from '../train/step.js';
import { batchFeeds } from '../train/feeds.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ProfileSummary, summarizeProfile } from './ort-profile.js';
import { type BenchBatches, fromPlain } from './train-data.js';
import { type TrainPreset, presetConfig } from './train-presets.js';
import { measure, peakRssMb, resetPeakRss } from './timing.js';

const o = JSON.parse(process.argv[2]!) as {
  preset: TrainPreset; threads: number; steps: number; warmup: number; quantize: boolean; checkpointLayers?: boolean; chunkBytes?: number; provider?: Provider; strict?: boolean; hostState?: boolean;
  /** A train-data.ts batches file: train on its Finch batches (warmup + steps of them). */
  batches?: string; staticSeq?: boolean;
  computeDtype?: ComputeDtype; maxWeightBytes?: number;
  /** The objective (default sft); a preference method reads the preset's batch as pairs. */
  method?: Method;
  /** A folder for ONNX Runtime's profile of the step session (trace and profile.json summary). */
  profile?: string;
};
const p = o.preset;
const cfg = presetConfig(p);

async function matmulPeak(): Promise<number> {
  // The largest GEMMs of the step: [rows, D] @ [D, I] and [rows, I] @ [I, D], weights frozen.
  let best = 0;
  for (const [m, k, n] of [[B * p.seq, cfg.hiddenSize, cfg.intermediateSize], [B * p.seq, cfg.intermediateSize, cfg.hiddenSize]] as const) {
    const g = new Graph('peak');
    const x = g.input('x', 'float32', [m, k]);
    const w = g.initializer('w', 'float32', [n, k], { kind: 'inline', bytes: new Uint8Array(new Float32Array(n * k).fill(0.01).buffer) });
    g.output(F.gemm(x, w, null, { transB: true }), 'y');
    const s = await Session.create(serializeModel(g), { threads: o.threads });
    const feed = { x: { dtype: 'float32' as const, dims: [m, k], data: new Float32Array(m * k).fill(1) } };
    const t = await measure(() => s.run(feed), { warmup: 2, minSeconds: 1, minReps: 5 });
    best = Math.max(best, (2 * m * k * n) / (t.minMs * 1e-3) / 1e9);
    await s.release();
  }
  return best;
}

/**
 * FLOPs of one step of `seq` tokens per row: base projections forward + input-gradient backward,
 * attention, LoRA; for DPO also the reference forward (base only).
 */
function stepFlops(seq = p.seq): number {
  const N = B * seq, D = cfg.hiddenSize, hd = cfg.headDim, H = cfg.numHeads, KV = cfg.numKvHeads, I = cfg.intermediateSize;
  const perLayer = D * H * hd * 2 + 2 * D * KV * hd + 3 * D * I;
  const linear = 2 * N * (cfg.numLayers * perLayer + D * cfg.vocabSize);
  const attention = cfg.numLayers * 2 * 2 * B * H * seq * seq * hd;
  const loraPerLayer = p.rank * (D + H * hd + 2 * (D + KV * hd) + (H * hd + D) + 2 * (D + I) + (I + D));
  const lora = 2 * N * cfg.numLayers * loraPerLayer;
  const reference = plan.objective.method === 'dpo' ? linear + attention : 0;
  return 2 * linear + 3 * attention + 3 * lora + reference; // backward ~ forward for inputs (no frozen weight grads), 2x for attention and LoRA
}

const rand = mulberry32(1);
const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
const invFreq = Float64Array.from({ length: cfg.headDim / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim));
const lora = { rank: p.rank, alpha: p.alpha, dropout: 0, rslora: false, targets: LORA_TARGETS };
const data = o.batches ? JSON.parse(readFileSync(o.batches, 'utf8')) as BenchBatches : null;
const T = data ? data.maxSeq : p.seq;
// The trainer's plan of this step (train/plan.ts): its chunking (the faster plan here too, as
// smaller tensors reuse memory), checkpoint groups, host embeddings for 4-bit, and a symbolic
// length for a dataset's batches (random tokens fill every row: a static length).
const settings: GraphSettings = { batch: p.batch, method: o.method ?? 'sft', seqLen: T, lora, quantize: o.quantize, blockSize: DEFAULT_BLOCK, checkpointLayers: o.checkpointLayers ?? false, staticSeq: !data || o.staticSeq };
const plan = planGraph(settings, cfg, { computeDtype: o.computeDtype ?? 'float32', maxWeightBytes: o.maxWeightBytes ?? Infinity }, { chunkBytes: o.chunkBytes });
/** Graph rows: the batch, or chosen then rejected rows of each pair (random tokens: every row has targets, so every pair counts). */
const B = plan.batch;
const store = new Map<string, Float32Array>();
const rowRand = mulberry32(2);
const fw = new FrozenWeights(cfg, (name) => {
  let w = store.get(name);
  if (!w) {
    const isNorm = name.endsWith('norm.weight');
    const n = name.includes('embed') || name.includes('lm_head') ? cfg.vocabSize * cfg.hiddenSize : 0;
    w = isNorm ? new Float32Array(cfg.hiddenSize).fill(1) : Float32Array.from({ length: n || sizeOf(name) }, () => 0.02 * normal());
    store.set(name, w);
  }
  return w;
}, {
  quantize: plan.quantize, blockSize: plan.blockSize,
  // Host embeddings: rows made as they are gathered, as the trainer reads them from the checkpoint (no table in memory).
  rows: plan.hostEmbeddings ? () => Float32Array.from({ length: cfg.hiddenSize }, () => 0.02 * (rowRand() * 2 - 1)) : null,
});
function sizeOf(name: string): number {
  const D = cfg.hiddenSize, I = cfg.intermediateSize, q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
  if (/q_proj|o_proj/.test(name)) return D * q;
  if (/k_proj|v_proj/.test(name)) return D * kv;
  return D * I;
}
const embed = plan.hostEmbeddings ? (ids: BigInt64Array) => fw.embedRows(ids) : undefined;
const sg = buildFusedStep(fw, invFreq, plan, DEFAULT_OPTIMIZER);
const rssBeforeSession = process.memoryUsage().rss / 2 ** 20; // the frozen weights are generated now
// As the trainer runs a step: ORT's memory arena on, except with gradient checkpointing, and the
// LoRA state kept on the device where the provider can (trainer.ts, train/state.ts), unless --host-state.
const provider = o.provider ?? 'cpu';
const stateOnDevice = keepsOutputsOnDevice(provider) && !o.hostState;
const session = await Session.create(serializeModel(sg.step), {
  threads: o.threads, cpuMemArena: !plan.checkpointLayers, provider, disableCpuFallback: o.strict ?? false, outputsOnDevice: TrainableState.deviceOutputs(sg.params, stateOnDevice),
  ...(o.profile ? { profilePrefix: join(mkdirSync(o.profile, { recursive: true }) ?? o.profile, 'train-step') } : {}),
});
// The model bytes handed to ONNX Runtime are garbage once it holds the graph (the trainer stages
// large models to files instead): collect them, and measure the peak of the steps from here on.
(globalThis as { gc?: () => void }).gc?.();
resetPeakRss();
const init = initLora(sg.params, 0);
const state = new TrainableState(sg.params, {
  params: init, m: new Map([...init].map(([k, v]) => [k, new Float32Array(v.length)])), v: new Map([...init].map(([k, v]) => [k, new Float32Array(v.length)])),
}, stateOnDevice, provider);
const ids = BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(rand() * cfg.vocabSize)));
const feeds: Record<string, Feed> = {
  ...(embed ? { inputs_embeds: { dtype: 'float32', dims: [B * T, cfg.hiddenSize], data: embed(ids) } } : { input_ids: { dtype: 'int64', dims: [B, T], data: ids } }),
  position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) },
  attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: Float32Array.from({ length: B * T * T }, (_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -1e9)) },
  targets: { dtype: 'int32', dims: [B * T], data: Int32Array.from({ length: B * T }, () => Math.floor(rand() * cfg.vocabSize)) },
  lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-4) },
  step: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
};
let stepNo = 1, loss = 0, transferred = 0;
// Dataset mode: step k reads batch k, padded to its own length (or to T with staticSeq).
let batchNo = 0, realTokens = 0, slots = 0, flops = 0, timedS = 0;
const nextBatch = () => {
  const b = fromPlain(data!.finch[batchNo++ % data!.finch.length]!);
  const seq = o.staticSeq ? T : b.T;
  Object.assign(feeds, batchFeeds(b, B, seq, embed));
  return { b, seq };
};
const t = await measure(async () => {
  const batch = data ? nextBatch() : null;
  const started = performance.now();
  const before = session.traffic.fed + session.traffic.fetched;
  // A real step: the updated parameters and moments feed the next one.
  const out = await session.runKeeping({ ...feeds, ...state.paramFeeds(), ...state.momentFeeds() });
  if (batch && batchNo > o.warmup) {
    timedS += (performance.now() - started) / 1000;
    realTokens += batch.b.tokens;
    slots += B * batch.seq;
    flops += stepFlops(batch.seq);
  }
  transferred = session.traffic.fed + session.traffic.fetched - before; // host tensors in, host outputs back
  loss = (out.host.loss!.data as Float32Array)[0]!;
  state.update(out.host, out.device);
  feeds.step = { dtype: 'float32', dims: [], data: Float32Array.of(++stepNo) };
}, { warmup: o.warmup, minSeconds: 0, minReps: o.steps });
await state.release();
let profile: ProfileSummary | undefined;
if (o.profile) {
  profile = summarizeProfile(session.endProfiling(), o.warmup);
  writeFileSync(join(o.profile, 'profile.json'), `${JSON.stringify(profile, null, 1)}\n`);
}
const stepS = data ? timedS / o.steps : t.medianMs / 1000;
const onGpu = provider === 'cpu' ? null : estimateDeviceMemory(cfg, plan, stateOnDevice);
const stepPeakRssMb = peakRssMb();
// After the step: the MatMul sessions' thread pool and buffers must not be in the RSS measured
// before the step session (rssBeforeSession), where the estimate's ONNX Runtime part would count them twice.
const peak = await matmulPeak();
console.log(JSON.stringify({
  ...(data ? { real_tokens_per_s: realTokens / timedS, padding_fraction: 1 - realTokens / slots } : {}),
  // Tokens per second: with a dataset, real (non-padding) tokens.
  tokens_per_s: data ? realTokens / timedS : (B * T) / stepS,
  step_s: stepS,
  peak_rss_mb: stepPeakRssMb,
  // The session's estimate (train/memory.ts) plus what this process holds besides it: its RSS
  // before the step session (Node, the float weights generated in JavaScript).
  estimate_mb: (estimateTrainingMemory(cfg, plan).totalBytes) / 2 ** 20 + rssBeforeSession,
  // On a GPU provider: the graph's buffers on the device, and the host memory beside them (plus this process's own, as above).
  estimate_gpu_mb: onGpu ? onGpu.gpuBytes / 2 ** 20 : null,
  estimate_host_mb: onGpu ? onGpu.hostBytes / 2 ** 20 + rssBeforeSession : null,
  host_device_bytes_per_step: transferred,
  state_on_device: stateOnDevice,
  loss,
  gflops: data ? flops / timedS / 1e9 : stepFlops() / stepS / 1e9,
  matmul_peak_gflops: peak,
  ...(profile ? { profile } : {}),
}));
