// Predicts the peak memory of a LoRA/QLoRA training step before a run starts, from the run's graph
// plan (train/plan.ts: the plan the trainer builds its graphs from), so the wizard can warn "this
// will not fit" up front.
// Each part mirrors a concrete allocation of that graph; test/train/memory.test.ts holds the total
// to the peak RSS of a real step (ONNX Runtime CPU, no arena, no memory pattern).
//
// The step's peak is the backward of the top checkpointed layer: the static parts (weights, inputs,
// LoRA state) plus every kept layer input plus the working set of one layer's backward (one
// attention chunk or one MLP piece at a time, model/chunk-plan.ts). After the backward the
// update allocates the new LoRA state, while the activations are gone; the larger of the two wins.

import type { ChunkPlan } from '../model/chunk-plan.js';
import { familyOf } from '../model/family.js';
import { slidingWindowIn } from '../model/llama.js';
import { modelTargets, projectionShape } from '../model/lora.js';
import { int4Bytes } from '../model/quant.js';
import type { ModelConfig } from '../model/types.js';
import type { GraphPlan } from './plan.js';

export interface MemoryEstimate {
  parts: Record<string, number>;
  totalBytes: number;
  /** The chunking the graph uses (the plan's). */
  chunks: ChunkPlan;
}

const F32 = 4;

/**
 * ONNX Runtime's own memory: graph, kernels, plan and per-run state per written node, and a fixed
 * part (thread pools, MLAS). Fitted to the peak RSS of measured steps (scaled Llama, 512-2048
 * tokens, 3k-24k nodes); with the activation model below the totals are within -12%..+10% of
 * `finch bench train` on the tiny and small presets (float or 4-bit, checkpointed or not) and
 * -11%..+6% of the step in test/train/memory.test.ts.
 */
export const ORT_BYTES_PER_NODE = 3.5 * 1024;
export const ORT_FIXED_BYTES = 40 * 2 ** 20;

/**
 * Bytes of one frozen [N, K] projection as the training graph stores it: uint4 codes + scales, or
 * the float matrix; `el` is the bytes of a float element (scales or weights): 4, or 2 in float16.
 */
export function frozenBytes(n: number, k: number, quantize: boolean, block: number, el = F32): number {
  return quantize ? int4Bytes(n, k, block, el) : n * k * el;
}

/**
 * [out, in] of a layer's projections in the model's order: q, k, v, o, gate, up, down, or Phi-3's
 * fused qkv, o, gate_up, down (model/family.ts).
 */
export function projectionShapes(cfg: ModelConfig): [number, number][] {
  return modelTargets(cfg).map((t) => projectionShape(cfg, t));
}

/** Elements of a layer's norm weights: two, Gemma's four, and the q/k norms over a head (Qwen3, Gemma). */
function normElements(cfg: ModelConfig): number {
  const fam = familyOf(cfg);
  return (fam.sandwichNorms ? 4 : 2) * cfg.hiddenSize + (fam.qkNorm ? 2 * cfg.headDim : 0);
}

/** Elements of a layer's biases (Qwen2's q/k/v biases, and the o_proj and MLP ones where a config has them). */
function biasElements(cfg: ModelConfig): number {
  const D = cfg.hiddenSize, I = cfg.intermediateSize, qDim = cfg.numHeads * cfg.headDim, kvDim = cfg.numKvHeads * cfg.headDim;
  return (cfg.attentionBias ? qDim + 2 * kvDim : 0) + (cfg.attentionOutputBias ? D : 0) + (cfg.mlpBias ? 2 * I + D : 0);
}

/** How many projections of a layer carry LoRA (the plan's targets are the model's own names). */
const loraTargets = (p: GraphPlan): number => p.lora.targets.length;

/** Bytes of the LoRA matrices of a plan (A and B of each targeted projection, float32). */
function loraParamBytes(cfg: ModelConfig, p: GraphPlan): number {
  return cfg.numLayers * p.lora.targets.reduce((s, t) => {
    const [n, k] = projectionShape(cfg, t);
    return s + p.lora.rank * (n + k);
  }, 0) * F32;
}

/** Whether an MLP projection (gate, up, down, Phi-3's gate_up) carries LoRA. */
const mlpLora = (p: GraphPlan): boolean => p.lora.targets.some((t) => /^(gate|up|down|gate_up)_proj$/.test(t));

/**
 * Nodes of the written step graph (forward, recomputes, backward, update), fitted to the graphs
 * model/graphs.ts + step.ts build (within 5% over layers, chunk sizes, 4-bit or float, 4 or 7 LoRA
 * targets, checkpoint groups; checked in test/train/memory.test.ts).
 */
export function estimateNodes(cfg: ModelConfig, p: GraphPlan): number {
  const ch = p.chunks, targets = loraTargets(p);
  const A = cfg.numHeads / ch.attentionHeads, M = ch.mlpSizes.length, Vp = ch.vocabSizes.length;
  const q = p.quantize ? 1 : 0, grouped = p.checkpointLayers && p.checkpointGroup > 1 ? 1 : 0, mlp = mlpLora(p) ? 1 : 0;
  // The families' additions, fitted the same way: q/k norms, Gemma's norms around the blocks and
  // GELU, Phi-3's fused projections (fewer of them).
  const fam = familyOf(cfg);
  const family = (fam.qkNorm ? 43 + 28 * q : 0) + (fam.sandwichNorms ? 122 : 0) - (fam.projections.includes('qkv_proj') ? 83 + 22 * q : 0);
  const perLayer = 193 + 82.7 * A + 22.9 * M + q * (48.6 + 38.4 * M) + 53.3 * targets + 88.3 * mlp * M + grouped * (54.9 + 3.9 * A + 7.2 * M) + family;
  return Math.round(cfg.numLayers * perLayer + 64 + Vp * (62.8 + 12.7 * q));
}

export function estimateTrainingMemory(cfg: ModelConfig, p: GraphPlan): MemoryEstimate {
  const D = cfg.hiddenSize, I = cfg.intermediateSize, L = cfg.numLayers, V = cfg.vocabSize;
  const H = cfg.numHeads, hd = cfg.headDim, qDim = H * hd, kvDim = cfg.numKvHeads * hd;
  const B = p.batch, T = p.seq, rows = B * T;
  const block = p.blockSize, ch = p.chunks, targets = loraTargets(p);
  const projections = projectionShapes(cfg); // [out, in]

  // Frozen weights: one initializer per projection (4-bit: uint4 + scales, read by both the forward
  // and the backward), norms, biases; the lm_head like a projection; the embedding table float32.
  const perLayer = projections.reduce((s, [n, k]) => s + frozenBytes(n, k, p.quantize, block), 0) + (normElements(cfg) + biasElements(cfg)) * F32;
  const embeddings = p.hostEmbeddings ? 0 : V * D * F32;
  const lmHead = cfg.tieWordEmbeddings && !p.quantize ? (p.hostEmbeddings ? V * D * F32 : 0) : frozenBytes(V, D, p.quantize, block);

  // Graph inputs: ids/positions/targets, the [B, 1, T, T] masks (the sliding layers' too, where the
  // window is shorter than T), host embeddings; RoPE tables (the sliding layers' own, Gemma's).
  const masks = slidingWindowIn(cfg, T) === null ? 1 : 2, ropes = cfg.localRopeTheta !== null && cfg.layerTypes.includes('sliding') ? 2 : 1;
  const inputs = 3 * rows * 8 + masks * B * T * T * F32 + (p.hostEmbeddings ? rows * D * F32 : 0) + ropes * 2 * T * cfg.rotaryDim * F32;

  // LoRA matrices, AdamW moments (fed: 3 copies) and gradients (1) during the backward; the update
  // adds the new parameters and moments (3 more). Dropout masks hash constant [rows, in] counters.
  const loraParams = loraParamBytes(cfg, p);
  const has = (t: string) => (p.lora.targets as readonly string[]).includes(t);
  const dropout = p.lora.dropout > 0 ? rows * (D + (has('o_proj') ? qDim : 0) + (has('down_proj') ? I : 0)) * F32 * 2 : 0;

  // Activations. ONNX Runtime's allocation plan hands a freed buffer to the next tensor of the same
  // byte size, so buffers are held per size class at that class's own peak count (traced on the
  // written graph by simulating that plan, test/train/memory.test.ts). Checkpointing keeps each
  // segment's input until its backward: L of them, or with groups of g the L/g outer ones plus the
  // g inner ones of the group in its backward; the backward of one layer then holds ~8 [rows, D]
  // tensors, 5 [rows, kv] ones, 7 per MLP piece width (gate, sigmoid, SiLU, up and gradients) and
  // 3 attention score chunks. Without checkpointing each layer keeps 6 [rows, D], 2 [rows, kv] and
  // 5 [rows, piece] tensors and its unchunked attention probabilities (a chunked attention
  // recomputes its scores in the backward) for the backward, plus one layer's working set on top.
  // The loss holds 4 logits blocks when whole (values, exponentials, gradients); SFT's, cut into
  // vocabulary pieces, forms its own gradient piece by piece (nn.fusedHeadCrossEntropy): 3
  // (values, shifted, exponentials); a preference objective's log-probabilities keep autodiff's 4.
  // The families add (traced the same way on each layout): q/k norms one [rows, q] and one
  // [rows, kv] tensor a layer; Gemma's norms around the blocks 2 [rows, D] a layer kept (3 more in
  // a layer's backward), its GELU 3 per MLP piece, its logit capping a logits piece (and autodiff's
  // loss: capped logits bring no gradient of their own); Phi-3's fused outputs 2 [rows, q + 2 kv]
  // and, unchunked, 2 [rows, 2I].
  const fam = familyOf(cfg);
  const qk = fam.qkNorm ? 1 : 0, sandwich = fam.sandwichNorms ? 1 : 0, gelu = cfg.hiddenAct === 'gelu_tanh' ? 1 : 0;
  const TD = rows * D * F32;
  const g = p.checkpointLayers ? Math.max(1, p.checkpointGroup) : 0;
  const keptInputs = g === 0 ? 0 : g === 1 ? L : Math.ceil(L / g) + g - 1;
  const attentionChunks = H / ch.attentionHeads;
  const classes = new Map<number, number>();
  const hold = (bytes: number, count: number) => { if (bytes > 0) classes.set(bytes, (classes.get(bytes) ?? 0) + count); };
  // The loss phase (outer inputs, the last layer's output and the final norm's 3) comes before
  // the layers' backward (all kept inputs and 8 of the layer's own).
  const outer = g <= 1 ? L : Math.ceil(L / g);
  hold(TD, g === 0 ? L * (6 + 2 * sandwich) + 4 : Math.max(keptInputs + 8 + 3 * sandwich, outer + 4));
  hold(rows * kvDim * F32, g === 0 ? L * (2 + qk) + 3 : 5 + qk);
  hold(rows * qDim * F32, qk * (g === 0 ? L : 1));
  for (const w of new Set(ch.mlpSizes)) hold(rows * w * F32, g === 0 ? L * (5 + 3 * gelu) + 2 : 7 + 3 * gelu);
  if (fam.projections.includes('qkv_proj')) hold(rows * (qDim + 2 * kvDim) * F32, 2);
  if (fam.projections.includes('gate_up_proj') && ch.mlpSizes.length === 1) hold(rows * 2 * I * F32, 2);
  hold(B * ch.attentionHeads * T * T * F32, g === 0 && attentionChunks === 1 ? L + 2 : 3);
  const fusedHead = p.objective.method === 'sft' && cfg.finalLogitSoftcap === null && ch.vocabSizes.length > 1;
  const logitBlocks = cfg.finalLogitSoftcap !== null ? 5 : fusedHead ? 3 : 4;
  for (const w of new Set(ch.vocabSizes)) hold(rows * w * F32, logitBlocks);
  // 4-bit: each dequantized weight shape once, in a buffer of its own size unless an activation
  // class of the same byte size is free for it then (the larger count of the two is held).
  if (p.quantize) {
    const weights = new Map<number, number>();
    const weight = (bytes: number, count: number) => weights.set(bytes, (weights.get(bytes) ?? 0) + count);
    const attention = fam.projections.includes('qkv_proj') ? [[qDim + 2 * kvDim, D]] : [[qDim, D], [kvDim, D]];
    for (const [n, k] of attention) weight(n! * k! * F32, 1);
    for (const w of new Set(ch.mlpSizes)) weight(w * D * F32, 2); // a gate/up row piece and a down column piece
    for (const w of new Set(ch.vocabSizes)) weight(w * D * F32, 1);
    for (const [bytes, count] of weights) classes.set(bytes, Math.max(classes.get(bytes) ?? 0, count));
  }
  const activations = [...classes].reduce((s, [bytes, count]) => s + bytes * count, 0);
  const kept = keptInputs * TD;
  const ort = ORT_FIXED_BYTES + estimateNodes(cfg, p) * ORT_BYTES_PER_NODE;

  const backward = activations + 4 * loraParams;
  const update = 7 * loraParams;
  const parts: Record<string, number> = {
    'frozen weights (layers)': L * perLayer,
    'lm_head': lmHead,
    [p.hostEmbeddings ? 'embeddings (host rows)' : 'embeddings (float32)']: embeddings,
    'inputs (ids, mask)': inputs,
    'LoRA + AdamW state': backward >= update ? 4 * loraParams : update,
    'checkpointed layer inputs': backward >= update ? kept : 0,
    'layer backward (one chunk)': backward >= update ? activations - kept : 0,
    'ONNX Runtime session': ort,
  };
  if (!p.quantize) parts['float weights, repacked by ORT'] = L * perLayer + lmHead; // Gemm repacks constant B, twice (forward, backward)
  if (dropout) parts['dropout masks'] = dropout;
  return { parts, totalBytes: Object.values(parts).reduce((a, b) => a + b, 0), chunks: ch };
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}

/** One line naming what a plan builds ("4-bit (blocks of 64), LoRA r=8 on 7 projections, ..."). */
export function describePlan(p: GraphPlan): string {
  const ck = !p.checkpointLayers ? 'no checkpointing' : p.checkpointGroup > 1 ? `checkpointing in groups of ${p.checkpointGroup} layers` : 'per-layer checkpointing';
  return [
    p.quantize ? `4-bit base (blocks of ${p.blockSize})` : 'float32 base',
    `LoRA r=${p.lora.rank} on ${loraTargets(p)} projections`, `batch ${p.batch} x ${p.seq}`, ck,
    p.hostEmbeddings ? 'embeddings gathered on the host' : 'embeddings in the graph',
  ].join(', ');
}

/** Device and host memory of a step on a GPU provider (estimateDeviceMemory). */
export interface DeviceMemoryEstimate {
  /** Buffers on the GPU: frozen weights (in the compute dtype), graph inputs, LoRA + AdamW state, activations. */
  gpuBytes: number;
  gpuParts: Record<string, number>;
  /** Host memory besides the GPU's: ONNX Runtime's session (graph, kernels, plan) and the LoRA state the trainer feeds and fetches. */
  hostBytes: number;
  hostParts: Record<string, number>;
}

/**
 * The same step (estimateTrainingMemory) on a GPU provider (WebGPU, CUDA, DirectML): every graph
 * tensor lives in GPU memory; the host keeps ONNX Runtime's session and the trainer's copies of
 * the LoRA state: parameters and moments fed each step and their updates fetched, or, with the
 * state kept on the device (WebGPU, train/state.ts), one downloaded copy at a checkpoint. The CPU
 * provider's repacked float weights do not exist there. With the plan's computeDtype float16 the frozen
 * matrices (and 4-bit scales) take half the bytes; activations are priced as float32, an upper
 * bound (the frozen products' outputs are float16). Not yet held to a measurement on a real GPU.
 */
export function estimateDeviceMemory(cfg: ModelConfig, p: GraphPlan, stateOnDevice = false): DeviceMemoryEstimate {
  const host = estimateTrainingMemory(cfg, p).parts;
  const part = (name: string) => {
    const v = host[name];
    if (v === undefined && name !== 'dropout masks') throw new Error(`estimateDeviceMemory: the host estimate has no part "${name}"`);
    return v ?? 0;
  };
  const D = cfg.hiddenSize, V = cfg.vocabSize, block = p.blockSize;
  const el = p.computeDtype === 'float16' ? 2 : F32;
  // A frozen [N, K] matrix on the device: 4-bit codes + scales in the compute dtype, or float.
  const matrix = (n: number, k: number) => frozenBytes(n, k, p.quantize, block, el);
  const layers = cfg.numLayers * (projectionShapes(cfg).reduce((s, [n, k]) => s + matrix(n, k), 0) + (normElements(cfg) + biasElements(cfg)) * F32);
  const tiedFloat = cfg.tieWordEmbeddings && !p.quantize;
  const gpuParts: Record<string, number> = {
    'frozen weights (layers)': layers,
    'lm_head': tiedFloat ? (p.hostEmbeddings ? V * D * el : 0) : matrix(V, D),
    'embeddings': p.hostEmbeddings ? 0 : V * D * el,
    'inputs (ids, mask)': part('inputs (ids, mask)'),
    'LoRA + AdamW state': part('LoRA + AdamW state'),
    'checkpointed layer inputs': part('checkpointed layer inputs'),
    'layer backward (one chunk)': part('layer backward (one chunk)'),
  };
  if (host['dropout masks']) gpuParts['dropout masks'] = host['dropout masks'];
  const loraBytes = loraParamBytes(cfg, p);
  const hostParts: Record<string, number> = {
    'ONNX Runtime session': part('ONNX Runtime session'),
    [stateOnDevice ? 'LoRA + AdamW state (checkpoint download)' : 'LoRA + AdamW state (fed and fetched)']: (stateOnDevice ? 3 : 6) * loraBytes,
  };
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return { gpuBytes: sum(gpuParts), gpuParts, hostBytes: sum(hostParts), hostParts };
}
