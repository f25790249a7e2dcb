// The two graphs Finch builds from a model (model/llama.ts), with the inputs and outputs the
// trainer and the generator feed and read:
// - the training forward + loss for a [B, T] batch (train/step.ts adds the backward and AdamW);
// - the generation graph: T new tokens appended to a KV cache of P (prefill and decode share it).
//
// Memory (train/memory.ts models exactly this): a training graph stores each 4-bit weight once, as
// a uint4 [N, K] initializer that both the forward and the backward dequantize (onnx/lower.ts
// lowers it; ORT's own MatMulNBits would keep a second, repacked copy). Attention scores, MLP
// intermediates and logits are built in chunks (chunk-plan.ts) so that a checkpointed layer's
// backward holds one chunk at a time; embeddings can be gathered on the host (hostEmbeddings).

import type { Dim } from '../engine/graph/dtype.js';
import type { Graph, Tensor } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { type ChunkPlan, chunkPlan } from './chunk-plan.js';
import { type ForwardInputs, type ForwardSpec, type KvCache, type LoraContext, type LoraInputs, decoder, lmHead, lmLoss, lmLossAndGradient, lmTokenLogProbs, slidingWindowIn } from './llama.js';
import { type DropoutContext, dropoutSeedCount } from './lora-dropout.js';
import { type LoraParam, type LoraSpec, loraParams, loraScale } from './lora.js';
import type { FrozenWeights } from './weights/frozen-weights.js';
import { type ComputeDtype, type DeviceOptions, GraphWeights } from './weights/graph-weights.js';

// ---------------------------------------------------------------------------------------------
// Training graph

export interface TrainGraphOptions {
  batch: number;
  seq: number;
  /** LoRA adapters to train, or null for full-parameter training (trainBase). */
  lora: LoraSpec | null;
  /** Every base weight becomes a graph input ("baseInputs"): full-parameter training. */
  trainBase?: boolean;
  /** Recompute each decoder layer in the backward instead of keeping its activations. */
  checkpointLayers?: boolean;
  /**
   * With checkpointLayers: nest the layers in outer segments of this many (two-level
   * checkpointing): about L/g + g layer inputs stay alive instead of L, for one more forward pass.
   * Default 1.
   */
  checkpointGroup?: number;
  /** Split the vocabulary projection + loss into this many row chunks (overrides the vocabulary chunks). */
  lossChunks?: number;
  /**
   * Where the loss is cut into vocabulary pieces, build its gradient with respect to the final
   * hidden states in the forward (TrainGraph.headGrad): the training step's backward starts there
   * instead of recomputing each piece's logits. Not with trainBase (the lm_head's own gradient).
   */
  headGradient?: boolean;
  /** Feed per-module dropout seeds (input "dropout_seeds") when lora.dropout > 0. */
  dropout?: boolean;
  /**
   * Take the embeddings as input "inputs_embeds" [B*T, D] (FrozenWeights.embedRows) instead of
   * storing the table in the graph: 2 GiB less for a 128k x 4096 float32 vocabulary.
   */
  hostEmbeddings?: boolean;
  /** Chunk size for attention scores, MLP intermediates and logits (default CHUNK_BYTES). */
  chunkBytes?: number;
  /** The chunking decided by the run's plan (train/plan.ts); without it, chunkPlan of this shape, chunkBytes and maxWeightBytes. */
  chunks?: ChunkPlan;
  /**
   * A symbolic sequence length: the graph runs batches of any T up to `seq` (one session, one copy
   * of the weights), so a batch pads only to its own longest row. Chunking is planned for `seq`.
   * With dropout the graph takes "token_index" int32 [T] = 0..T-1 (int32: int64 has no WebGPU Where for the checkpoint barriers).
   */
  dynamicSeq?: boolean;
  /** float16: frozen weights and their products in float16, the rest float32 (DeviceOptions). */
  computeDtype?: ComputeDtype;
  /** The device's largest buffer: frozen weights are split to fit (DeviceOptions; MLP and vocabulary pieces via chunkPlan). */
  maxWeightBytes?: number;
}

/** The symbol of a dynamic graph's sequence length ("seq") and of its B*T activation rows ("rows"). */
export const SEQ_DIM = 'seq';

export interface TrainGraph {
  /** Scalar mean cross-entropy over targets != -100. */
  loss: Tensor;
  lora: LoraParam[];
  loraInputs: LoraInputs;
  /** Base weights fed as inputs when trainBase is set, by HF name. */
  baseInputs: Map<string, Tensor>;
  /** Number of dropout seeds to feed (0 = no dropout input). */
  dropoutModules: number;
  /** How the graph chunks its largest activations. */
  chunks: ChunkPlan;
  /** With headGradient and vocabulary pieces: the final hidden states h [rows, D] and dLoss/dh, for grad(h, params, { seed: dh }). */
  headGrad: { h: Tensor; dh: Tensor } | null;
  /**
   * Builds the unchunked logits [B*T, V] of the same forward (same trunk, lm_head and LoRA), for
   * checks against a reference; a training step never calls it (the loss keeps them chunked).
   */
  logits: () => Tensor;
}

/**
 * The forward + loss of a causal LM for a [B, T] batch. Inputs: input_ids (or inputs_embeds with
 * hostEmbeddings), position_ids (int64 [B, T]), attn_bias (float [B, 1, T, T], 0 or -1e9),
 * attn_bias_local (the same with the sliding window applied, train/feeds.ts) when the model's window
 * is shorter than `seq` (slidingWindowIn), targets (int32 [B*T], the next token or -100), the LoRA
 * matrices by PEFT name, and dropout_seeds (and token_index with a symbolic T) when dropout is on.
 */
export function buildTrainForward(g: Graph, fw: FrozenWeights, invFreq: Float64Array, o: TrainGraphOptions): TrainGraph {
  const t = trainingForward(g, fw, invFreq, o);
  const { h } = decoder(t.f, t.inputs); // [rows, D]
  const rowChunks = Math.max(1, o.lossChunks ?? 1);
  const fused = o.headGradient && !o.trainBase && rowChunks === 1 ? lmLossAndGradient(t.f, h, t.targets) : null;
  const loss = fused ? fused.loss : lmLoss(t.f, h, t.targets, rowChunks);
  return { loss, ...t.graph, headGrad: fused ? { h, dh: fused.dh } : null, logits: () => lmHead(t.f, h) };
}

/** The inputs and the forward's spec of a training graph, before its first layer. */
function trainingForward(g: Graph, fw: FrozenWeights, invFreq: Float64Array, o: TrainGraphOptions) {
  const { cfg } = fw;
  const B = o.batch, T: Dim = o.dynamicSeq ? SEQ_DIM : o.seq;
  const rowsDim: Dim = typeof T === 'number' ? B * T : 'rows';
  if (o.hostEmbeddings && o.trainBase) throw new Error('buildTrainForward: hostEmbeddings cannot be combined with trainBase (the embeddings are trained)');
  const ids = o.hostEmbeddings ? null : g.input('input_ids', 'int64', [B, T]);
  const embeds = o.hostEmbeddings ? g.input('inputs_embeds', 'float32', [rowsDim, cfg.hiddenSize]) : null;
  const positions = g.input('position_ids', 'int64', [B, T]);
  const bias = g.input('attn_bias', 'float32', [B, 1, T, T]);
  const localBias = slidingWindowIn(cfg, o.seq) === null ? null : g.input('attn_bias_local', 'float32', [B, 1, T, T]);
  const targets = g.input('targets', 'int32', [rowsDim]);
  const params = o.lora ? loraParams(cfg, o.lora) : [];
  const loraInputs: LoraInputs = new Map(params.map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
  const seedCount = o.lora ? dropoutSeedCount(o.lora, cfg.numLayers) : 0;
  const useDropout = (o.dropout ?? true) && !!o.lora && o.lora.dropout > 0;
  let dropout: DropoutContext | null = null;
  if (useDropout) {
    const seeds = g.input('dropout_seeds', 'float32', [seedCount]);
    const tokenIndex = o.dynamicSeq ? g.input('token_index', 'int32', [T]) : null;
    dropout = { p: o.lora!.dropout, seeds, batch: B, seq: o.seq, symbolic: tokenIndex ? { tokenIndex, rows: rowsDim } : null };
  }
  const plan = o.chunks ?? chunkPlan(cfg, B, o.seq, fw.blockSize, o.chunkBytes, o.maxWeightBytes);
  // Row chunks of the loss replace the vocabulary pieces.
  const chunks = o.lossChunks && o.lossChunks > 1 ? { ...plan, vocabSizes: [cfg.vocabSize] } : plan;
  const weights = new GraphWeights(g, fw, { trainable: !!o.trainBase, singleStorage: true, computeDtype: o.computeDtype, maxWeightBytes: o.maxWeightBytes });
  const lora: LoraContext | null = o.lora ? { spec: o.lora, inputs: loraInputs, scale: loraScale(o.lora), dropout } : null;
  const f: ForwardSpec = {
    cfg, weights, B, T, lora, chunks, invFreq, maxPositions: o.seq,
    checkpoint: o.checkpointLayers ? Math.max(1, o.checkpointGroup ?? 1) : 0,
  };
  const inputs: ForwardInputs = { ids, embeds, positions, bias, localBias, past: null };
  const graph = { lora: params, loraInputs, baseInputs: weights.inputs, dropoutModules: useDropout ? seedCount : 0, chunks };
  return { f, inputs, targets, graph };
}

// ---------------------------------------------------------------------------------------------
// Preference graph: answer log-probabilities of the policy and of a frozen reference

/** Each row's summed log-probability of its targets and how many targets it has: [B] each. */
export interface RowLogProbs {
  sum: Tensor;
  count: Tensor;
}

/**
 * What a preference loss compares the policy with: nothing (ORPO), the base model (the LoRA path
 * switched off), or the base with a frozen adapter of the run's LoRA layout (its matrices by PEFT
 * name, stored as initializers "reference.<name>"): DPO continuing an SFT adapter.
 */
export type ReferenceModel = null | { lora: null } | { lora: ReadonlyMap<string, Float32Array> };

export interface PreferenceGraph extends Omit<TrainGraph, 'loss' | 'logits' | 'headGrad'> {
  policy: RowLogProbs;
  reference: RowLogProbs | null;
}

/**
 * A training forward that ends in each row's answer log-probabilities instead of a mean loss, for
 * a batch of preference pairs (data/batch.ts: chosen rows, then rejected rows). The reference is a
 * second forward of the same rows in the same graph, over the same weight initializers (no second
 * copy of the weights), without LoRA dropout, checkpointing or gradients (nothing it computes
 * depends on a trained tensor); it is built first, so it runs before the policy's forward keeps
 * activations alive. Inputs as buildTrainForward's; lossChunks is not supported.
 */
export function buildPreferenceForward(g: Graph, fw: FrozenWeights, invFreq: Float64Array, o: TrainGraphOptions, reference: ReferenceModel): PreferenceGraph {
  if (o.lossChunks && o.lossChunks > 1) throw new Error('buildPreferenceForward: row-chunked losses (lossChunks) are for the cross-entropy only');
  const t = trainingForward(g, fw, invFreq, o);
  const rowSums = (f: ForwardSpec, h: Tensor): RowLogProbs => {
    const logp = lmTokenLogProbs(f, h, t.targets); // [rows]
    const count = F.cast(F.greater(t.targets, F.scalar(g, 'int32', -100)), 'float32'); // [rows]
    const perRow = (x: Tensor) => F.reduceSum(F.reshape(x, [f.B, f.T]), [1], false); // [B]
    return { sum: perRow(logp), count: perRow(count) };
  };
  let ref: RowLogProbs | null = null;
  if (reference) {
    const lora = reference.lora && o.lora ? frozenLora(g, fw, o.lora, reference.lora) : null;
    if (reference.lora && !lora) throw new Error('buildPreferenceForward: a reference adapter needs the run\'s LoRA spec');
    const rf: ForwardSpec = { ...t.f, lora, checkpoint: 0 };
    ref = g.scope('reference', () => rowSums(rf, decoder(rf, t.inputs).h));
  }
  const policy = rowSums(t.f, decoder(t.f, t.inputs).h);
  return { ...t.graph, policy, reference: ref };
}

/** A frozen adapter's matrices as initializers, in a LoraContext without dropout. */
function frozenLora(g: Graph, fw: FrozenWeights, spec: LoraSpec, tensors: ReadonlyMap<string, Float32Array>): LoraContext {
  const inputs: LoraInputs = new Map(loraParams(fw.cfg, spec).map((p) => {
    const data = tensors.get(p.name);
    if (!data || data.length !== p.shape[0] * p.shape[1]) throw new Error(`reference adapter: ${p.name} is missing or not ${p.shape.join(' x ')}`);
    return [p.name, g.initializer(`reference.${p.name}`, 'float32', p.shape, { kind: 'inline', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) })];
  }));
  return { spec, inputs, scale: loraScale(spec), dropout: null };
}

// ---------------------------------------------------------------------------------------------
// Generation graph (prefill and decode share it: T tokens appended to a cache of P)

export interface GenerationGraph {
  logits: Tensor; // [B, V] of the last position
  presentK: Tensor[];
  presentV: Tensor[];
}

/**
 * Inputs: input_ids [B, T], position_ids [B, T], attn_bias [B, 1, T, P+T] (and attn_bias_local,
 * the sliding layers' mask, when the model's window is shorter than maxPositions), past_k.N / past_v.N
 * [B, KV, P, hd], lora_scale [B] (0 = base model, 1 = tuned: base and tuned answers share one
 * session and one copy of the weights), and the LoRA matrices when `lora` is given.
 * Outputs the last position's logits and the present caches. The batch B is fixed (so every
 * reshape has a constant shape); T (prefill or one decoded token) and P vary per run.
 */
export function buildGeneration(g: Graph, fw: FrozenWeights, invFreq: Float64Array, maxPositions: number, lora: LoraSpec | null, batch: number, device: DeviceOptions = {}): GenerationGraph {
  const { cfg } = fw;
  const B = batch, T = 'seq', P = 'past';
  const ids = g.input('input_ids', 'int64', [B, T]);
  const positions = g.input('position_ids', 'int64', [B, T]);
  const bias = g.input('attn_bias', 'float32', [B, 1, T, `${P}+${T}`]);
  const localBias = slidingWindowIn(cfg, maxPositions) === null ? null : g.input('attn_bias_local', 'float32', [B, 1, T, `${P}+${T}`]);
  const past: KvCache[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const k = g.input(`past_k.${l}`, 'float32', [B, cfg.numKvHeads, P, cfg.headDim]);
    past.push({ k, v: g.input(`past_v.${l}`, 'float32', [B, cfg.numKvHeads, P, cfg.headDim]) });
  }
  let loraCtx: LoraContext | null = null;
  if (lora) {
    const scaleIn = g.input('lora_scale', 'float32', [B]);
    const params = loraParams(cfg, lora);
    const inputs: LoraInputs = new Map(params.map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
    // Per-row scale: rows are B*T in batch-major order, so xa [rows, r] is scaled as [B, T, r] by [B, 1, 1].
    const perBatch = F.reshape(F.mul(scaleIn, loraScale(lora)), [B, 1, 1]);
    const r = lora.rank;
    const scale = (xa: Tensor) => F.reshape(F.mul(F.reshape(xa, [B, T, r]), perBatch), ['rows', r]); // [rows, r]
    loraCtx = { spec: lora, inputs, scale, dropout: null };
  }
  const whole: ChunkPlan = { attentionHeads: cfg.numHeads, mlpSizes: [cfg.intermediateSize], vocabSizes: [cfg.vocabSize] };
  const f: ForwardSpec = { cfg, weights: new GraphWeights(g, fw, device), B, T, lora: loraCtx, chunks: whole, invFreq, maxPositions, checkpoint: 0 };
  const { h, present } = decoder(f, { ids, embeds: null, positions, bias, localBias, past }); // [rows, D]
  // Only the last position's logits are needed: gather row t = T-1 of each sequence.
  const last = F.reshape(F.slice(F.reshape(h, [B, T, cfg.hiddenSize]), [-1], [Number.MAX_SAFE_INTEGER], [1]), [B, cfg.hiddenSize]);
  const logits = lmHead(f, last);
  return { logits, presentK: present.map((c) => c.k), presentV: present.map((c) => c.v) };
}
