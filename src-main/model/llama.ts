// The decoder of every family Finch trains (Llama 2/3/3.x, Mistral, Qwen2, Qwen3, Gemma 3, Phi-3,
// SmolLM) as graph nodes, in the model's own order:
//
//   h    = embed(ids)                  # Gemma: * sqrt(D)
//   h    = h + attn(norm(h))           # per layer: q/k norms (Qwen3, Gemma), RoPE on q/k (partial
//                                      #   for Phi-4-mini), grouped-query causal attention over the
//                                      #   whole sequence or a sliding window; Gemma norms the output
//   h    = h + mlp(norm(h))            # gated: down(act(gate(x)) * up(x)), act SiLU or GELU-tanh
//   out  = lm_head(norm(h))            # Gemma: optional soft-capping of the logits
//   loss = cross_entropy(out, targets)
//
// What varies by family is read from its description (family.ts: projections, fused or not, norm
// kind, q/k norms, norms around the blocks, embedding scale) and from the checkpoint's config
// (types.ts: biases, layer types and window, RoPE per layer type, query scale, soft-capping).
//
// Every projection may carry a LoRA branch (with dropout when training). The blocks (RMSNorm,
// rotary embedding, SiLU, GELU, LoRA linear, cross-entropy) are engine/nn's, which use only ops
// with kernels on both the CPU and WebGPU providers: no int64 arithmetic (targets are int32, shapes
// are constants), no SoftmaxCrossEntropyLoss or LogSoftmax; a sliding window is an additive mask
// the host builds, like the causal one. Activations are kept 2-D, [rows = B*T, D], so every
// projection is one GEMM; attention reshapes to [B, heads, T, hd].
//
// The weights are asked for by Hugging Face name (Weights: weights/graph-weights.ts decides how
// they are stored: float, float16, 4-bit, split under a device buffer limit); the graphs' inputs
// and outputs are graphs.ts's. Attention scores, MLP intermediates and logits may be built in
// chunks (chunk-plan.ts) so that a checkpointed layer's backward holds one chunk at a time.

import type { Dim } from '../engine/graph/dtype.js';
import type { Graph, Tensor } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import * as nn from '../engine/nn/layers.js';
import type { ChunkPlan } from './chunk-plan.js';
import { ropeAttentionScale, ropeInvFreq } from './config.js';
import { type Family, familyOf } from './family.js';
import { type DropoutContext, dropoutSeedIndex, loraDropout } from './lora-dropout.js';
import { type LoraSpec, type LoraTarget, modulePath, projectionShape } from './lora.js';
import type { LayerType, ModelConfig } from './types.js';
import type { WeightPart, Weights } from './weights/graph-weights.js';

/** Graph inputs holding the LoRA matrices, by PEFT name. */
export type LoraInputs = Map<string, Tensor>;

/** The adapters of a forward pass. */
export interface LoraContext {
  readonly spec: LoraSpec;
  readonly inputs: LoraInputs;
  /** alpha / r, or a per-row scale (generation: base and tuned rows in one batch). */
  readonly scale: nn.LoraBranch['scale'];
  /** Dropout on the branches' inputs (training with dropout on), else null. */
  readonly dropout: DropoutContext | null;
}

/** One layer's key/value cache: [B, KV, P, hd] each. */
export interface KvCache {
  k: Tensor;
  v: Tensor;
}

/** Everything a forward pass is built from, fixed before its first node. */
export interface ForwardSpec {
  readonly cfg: ModelConfig;
  readonly weights: Weights;
  /**
   * Batch and sequence dims of the activations: numbers for training; for generation B is a number
   * and T a symbol, so every reshape has a constant shape ([B, -1, ...]): shapes computed in the
   * graph (Shape, Concat on int64) would run on the CPU under WebGPU.
   */
  readonly B: number;
  readonly T: Dim;
  readonly lora: LoraContext | null;
  readonly chunks: ChunkPlan;
  /**
   * RoPE inverse frequencies [rotaryDim / 2] of the full-attention layers (model/config.ts
   * ropeInvFreq) and the positions its tables cover. The rest comes from cfg: Gemma's sliding
   * layers have their own base, and LongRoPE picks its short or long factors by maxPositions.
   */
  readonly invFreq: Float64Array;
  readonly maxPositions: number;
  /**
   * Layers per checkpoint segment: 0 keeps every activation, 1 checkpoints each layer (L layer
   * inputs kept), g > 1 nests layers in segments of g (about L/g + g layer inputs kept, for one
   * more forward pass).
   */
  readonly checkpoint: number;
}

export interface ForwardInputs {
  /** Token ids [B, T] int64; null when the embeddings come from the host. */
  ids: Tensor | null;
  /** Embeddings gathered on the host [rows, D] (FrozenWeights.embedRows), or null. */
  embeds: Tensor | null;
  positions: Tensor; // [B, T] int64
  bias: Tensor; // [B, 1, T, S] additive attention mask (S = P + T with a cache)
  /** The mask of sliding-window layers [B, 1, T, S], where the window is shorter than the graph's positions (slidingWindowIn). */
  localBias?: Tensor | null;
  /** Generation: each layer's cache of P earlier positions. */
  past: readonly KvCache[] | null;
}

/** What a layer's attention reads for its layer type: rotary tables at the batch's positions and the mask. */
interface AttentionInputs {
  readonly cos: Tensor; // [B, 1, T, rotaryDim]
  readonly sin: Tensor; // [B, 1, T, rotaryDim]
  readonly bias: Tensor; // [B, 1, T, S]
}

/** What every layer reads besides its input: the forward's spec, its family, and its attention inputs by layer type. */
interface LayerContext extends ForwardSpec {
  readonly family: Family;
  readonly attn: Readonly<Record<LayerType, AttentionInputs>>;
}

const EMBED_TOKENS = 'model.embed_tokens.weight';

/** B*T when static, else a symbol (Reshape infers it). */
const rowsOf = (f: ForwardSpec): Dim => (typeof f.T === 'number' ? f.B * f.T : 'rows');

/** [rows, heads * hd] -> [B, heads, T, hd] */
const splitHeads = (f: ForwardSpec, x: Tensor, heads: number): Tensor => F.transpose(F.reshape(x, [f.B, f.T, heads, f.cfg.headDim]), [0, 2, 1, 3]);

/**
 * The window of this model's sliding layers when it is shorter than `positions` (a graph's
 * longest sequence, or a generator's context), else null: only then does it mask anything, and only
 * then does a graph take the sliding layers' mask ("attn_bias_local").
 */
export function slidingWindowIn(cfg: Pick<ModelConfig, 'slidingWindow' | 'layerTypes'>, positions: number): number | null {
  const w = cfg.slidingWindow;
  return w !== null && w < positions && cfg.layerTypes.includes('sliding') ? w : null;
}

/**
 * The sliding layers' mask ("attn_bias_local") from the full one: query i, at slot P + i of the
 * S = P + T slots, also masks every key `window` or more slots before it, so it sees itself and the
 * window - 1 slots before (transformers: kv_idx > q_idx - sliding_window; llama.cpp alike). Slots,
 * not positions: left padding sits before a row's first token, so the two differ only where the
 * full mask already hides the key. bias [B, 1, T, S] -> a new [B, 1, T, S]
 */
export function windowedBias(bias: Float32Array, B: number, T: number, S: number, window: number, masked = -1e9): Float32Array {
  const out = bias.slice();
  const P = S - T;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const row = (b * T + i) * S, last = P + i - window; // keys at slots <= last are out of the window
      for (let j = 0; j <= last && j < S; j++) out[row + j] = masked;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The decoder: embed -> layers -> final norm

/**
 * Hidden states after the final norm [rows, D], and each layer's cache with the T new positions
 * appended ([B, KV, P+T, hd], generation only).
 */
export function decoder(f: ForwardSpec, inp: ForwardInputs): { h: Tensor; present: KvCache[] } {
  const { cfg } = f;
  const g = inp.positions.graph;
  const full: AttentionInputs = { ...rotaryAt(g, f, inp.positions, 'full'), bias: inp.bias };
  // Sliding layers: their own RoPE base (Gemma 3) and the windowed mask, where they differ.
  const sliding: AttentionInputs = {
    ...(cfg.localRopeTheta !== null && cfg.layerTypes.includes('sliding') ? rotaryAt(g, f, inp.positions, 'sliding') : full),
    bias: inp.localBias ?? inp.bias,
  };
  const c: LayerContext = { ...f, family: familyOf(cfg), attn: { full, sliding } };
  let h = inp.embeds ?? embed(c, inp.ids!); // [rows, D]
  if (c.family.scaledEmbeddings) h = F.mul(h, Math.sqrt(cfg.hiddenSize)); // float32(sqrt(D)), as transformers' embed_scale
  const present: KvCache[] = [];
  const layer = (l: number) => {
    const run = () => g.scope(`layers.${l}`, () => decoderLayer(c, h, l, inp.past?.[l] ?? null));
    const out = f.checkpoint ? g.checkpoint(`layers.${l}`, run) : run();
    h = out.h;
    if (out.present) present.push(out.present);
  };
  const group = Math.max(1, f.checkpoint);
  for (let l = 0; l < cfg.numLayers; l += group) {
    const last = Math.min(cfg.numLayers, l + group);
    if (group > 1) g.checkpoint(`group.${l}-${last - 1}`, () => { for (let k = l; k < last; k++) layer(k); });
    else layer(l);
  }
  return { h: norm(c, h, 'model.norm.weight'), present };
}

/** cos/sin tables [positions, 2 * invFreq.length] (HF layout: the half-frequencies repeated twice), times `scale`. */
export function ropeTables(invFreq: Float64Array, positions: number, scale = 1): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length, hd = half * 2;
  const cos = new Float32Array(positions * hd), sin = new Float32Array(positions * hd);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i]!;
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(a) * scale;
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(a) * scale;
    }
  }
  return { cos, sin };
}

/**
 * The rotary tables of a layer type (initializers over maxPositions) gathered at the batch's
 * positions: [B, 1, T, rotaryDim] each.
 */
function rotaryAt(g: Graph, f: ForwardSpec, positions: Tensor, type: LayerType): { cos: Tensor; sin: Tensor } {
  const { cfg } = f;
  const invFreq = type === 'sliding' ? ropeInvFreq(cfg, { layer: 'sliding' })
    : cfg.ropeScaling?.type === 'longrope' ? ropeInvFreq(cfg, { maxPositions: f.maxPositions }) : f.invFreq;
  const tables = ropeTables(invFreq, f.maxPositions, ropeAttentionScale(cfg, type));
  const width = 2 * invFreq.length, prefix = type === 'sliding' ? 'rope.local' : 'rope';
  // A second forward in the same graph (a preference step's frozen reference) shares the tables.
  const table = (name: string, a: Float32Array) => g.initializers.get(name)?.tensor
    ?? g.initializer(name, 'float32', [f.maxPositions, width], { kind: 'inline', bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
  const cosT = table(`${prefix}.cos`, tables.cos), sinT = table(`${prefix}.sin`, tables.sin);
  return { cos: F.unsqueeze(F.gather(cosT, positions), [1]), sin: F.unsqueeze(F.gather(sinT, positions), [1]) };
}

/** Token embeddings [rows, D]: gather [B, T] ids, then reshape the float rows (reshaping the int64 ids would run on the CPU). */
function embed(c: LayerContext, ids: Tensor): Tensor {
  const { cfg } = c;
  return F.reshape(c.weights.embedding(ids, EMBED_TOKENS, [cfg.vocabSize, cfg.hiddenSize]), [rowsOf(c), cfg.hiddenSize]);
}

/** RMSNorm over the last axis with the weight `name` ([size]): by w, or by (1 + w) for Gemma. x: [..., size] */
function norm(c: LayerContext, x: Tensor, name: string, size = c.cfg.hiddenSize): Tensor {
  const w = c.weights.vector(name, size);
  return nn.rmsNorm(x, c.family.normPlusOne ? F.add(w, 1) : w, c.cfg.rmsNormEps);
}

/**
 * One block: h + attn(norm(h)), then + mlp(norm(.)). With Gemma's norms around the blocks the
 * attention and MLP outputs are normed too, and the MLP's pre-norm is pre_feedforward_layernorm.
 * h: [rows, D]
 */
function decoderLayer(c: LayerContext, h: Tensor, layer: number, past: KvCache | null): { h: Tensor; present: KvCache | null } {
  const p = `model.layers.${layer}`;
  const a = attention(c, norm(c, h, `${p}.input_layernorm.weight`), layer, past);
  if (!c.family.sandwichNorms) {
    const h1 = F.add(h, a.out);
    const m = mlp(c, norm(c, h1, `${p}.post_attention_layernorm.weight`), layer);
    return { h: F.add(h1, m), present: a.present };
  }
  const h1 = F.add(h, norm(c, a.out, `${p}.post_attention_layernorm.weight`));
  const m = mlp(c, norm(c, h1, `${p}.pre_feedforward_layernorm.weight`), layer);
  return { h: F.add(h1, norm(c, m, `${p}.post_feedforward_layernorm.weight`)), present: a.present };
}

// ---------------------------------------------------------------------------------------------
// Attention

/**
 * Grouped-query causal self-attention, over the whole sequence or the layer's sliding window (its
 * mask). x: [rows, D] -> [rows, D], and the layer's cache with T appended.
 */
function attention(c: LayerContext, x: Tensor, layer: number, past: KvCache | null): { out: Tensor; present: KvCache | null } {
  const { cfg } = c;
  const H = cfg.numHeads, KV = cfg.numKvHeads, hd = cfg.headDim, G = H / KV;
  const bias = cfg.attentionBias;
  const kind = c.attn[cfg.layerTypes[layer]!];
  let q: Tensor, k: Tensor, v: Tensor;
  if (c.family.projections.includes('qkv_proj')) {
    // Phi-3: one projection whose output rows are q, then k, then v.
    const [q0, k0, v0] = F.split(projection(c, x, layer, 'qkv_proj', bias), [H * hd, KV * hd, KV * hd], 1);
    q = splitHeads(c, q0!, H);
    k = splitHeads(c, k0!, KV);
    v = splitHeads(c, v0!, KV);
  } else {
    q = splitHeads(c, projection(c, x, layer, 'q_proj', bias), H); // [B, H, T, hd]
    k = splitHeads(c, projection(c, x, layer, 'k_proj', bias), KV); // [B, KV, T, hd]
    v = splitHeads(c, projection(c, x, layer, 'v_proj', bias), KV); // [B, KV, T, hd]
  }
  if (c.family.qkNorm) {
    // RMSNorm over each head's hd features, before RoPE.
    q = norm(c, q, `model.layers.${layer}.self_attn.q_norm.weight`, hd);
    k = norm(c, k, `model.layers.${layer}.self_attn.k_norm.weight`, hd);
  }
  const qr = rotate(c, q, kind);
  k = rotate(c, k, kind);
  if (past) {
    k = F.concat([past.k, k], 2); // [B, KV, P+T, hd]
    v = F.concat([past.v, v], 2);
  }
  // Chunks of hc query heads: only one chunk's [B, hc, T, S] scores and probabilities are live.
  const hc = c.chunks.attentionHeads;
  let ctx: Tensor;
  if (hc >= H) {
    ctx = attend(c, qr, k, v, kind.bias);
  } else {
    const kvc = Math.max(1, hc / G); // KV heads per chunk
    const qs = F.split(qr, Array<number>(H / hc).fill(hc), 1);
    const ks = F.split(k, Array<number>(KV / kvc).fill(kvc), 1), vs = F.split(v, Array<number>(KV / kvc).fill(kvc), 1);
    const kvOf = (i: number) => Math.floor((i * hc) / G / kvc); // chunk i's KV piece
    // Each chunk is a (nested) checkpoint segment: its backward recomputes its own probabilities.
    ctx = F.concat(qs.map((qi, i) => x.graph.checkpoint(`attn.${i}`, () => attend(c, qi, ks[kvOf(i)]!, vs[kvOf(i)]!, kind.bias))), 1); // [B, H, T, hd]
  }
  const merged = F.reshape(F.transpose(ctx, [0, 2, 1, 3]), [rowsOf(c), H * hd]); // [rows, H*hd]
  return { out: projection(c, merged, layer, 'o_proj', cfg.attentionOutputBias), present: past ? { k, v } : null };
}

/** RoPE on [B, heads, T, hd]; with a partial rotary factor only the first rotaryDim features turn. */
function rotate(c: LayerContext, x: Tensor, r: AttentionInputs): Tensor {
  const hd = c.cfg.headDim, rd = c.cfg.rotaryDim;
  if (rd === hd) return nn.rotary(x, r.cos, r.sin);
  const [turned, kept] = F.split(x, [rd, hd - rd], -1);
  return F.concat([nn.rotary(turned!, r.cos, r.sin), kept!], -1);
}

/**
 * Causal attention of `hc` query heads against their `kvc` KV heads, without repeating K/V: each
 * KV head's query heads fold into rows. Scores are scaled by hd^-0.5 (Gemma: query_pre_attn_scalar^-0.5).
 * q [B, hc, T, hd], k/v [B, kvc, S, hd], bias [B, 1, T, S] -> [B, hc, T, hd]
 */
function attend(c: LayerContext, q: Tensor, k: Tensor, v: Tensor, bias: Tensor): Tensor {
  const { cfg } = c;
  const hd = cfg.headDim, hc = q.shape[1] as number, kvc = k.shape[1] as number, gq = hc / kvc, S = k.shape[2]!;
  const rowsG = gq === 1 ? c.T : typeof c.T === 'number' ? gq * c.T : `${gq}*${c.T}`;
  const qg = F.reshape(q, [c.B, kvc, rowsG, hd]); // [B, kvc, gq*T, hd]
  const scale = cfg.queryPreAttnScalar === null ? 1 / Math.sqrt(hd) : cfg.queryPreAttnScalar ** -0.5;
  const scores = F.mul(F.matmul(qg, F.transposeLast2(k)), scale); // [B, kvc, gq*T, S]
  const probs = F.softmax(F.add(F.reshape(scores, [c.B, hc, c.T, S]), bias), -1); // [B, hc, T, S]
  const ctx = F.matmul(F.reshape(probs, [c.B, kvc, rowsG, S]), v); // [B, kvc, gq*T, hd]
  return F.reshape(ctx, [c.B, hc, c.T, hd]);
}

/** cap * tanh(x / cap): Gemma's soft-capping of the logits. */
const softcap = (x: Tensor, cap: number): Tensor => F.mul(F.tanh(F.div(x, cap)), cap);

// ---------------------------------------------------------------------------------------------
// MLP

/** The gate's activation: SiLU, or GELU with the tanh approximation (Gemma). */
const activation = (c: LayerContext, x: Tensor): Tensor => (c.cfg.hiddenAct === 'gelu_tanh' ? nn.geluTanh(x) : nn.silu(x));

/** Gated MLP: down(act(gate(x)) * up(x)), gate and up fused into gate_up_proj for Phi-3. x: [rows, D] -> [rows, D] */
function mlp(c: LayerContext, x: Tensor, layer: number): Tensor {
  const bias = c.cfg.mlpBias, I = c.cfg.intermediateSize;
  if (c.chunks.mlpSizes.length > 1) return chunkedMlp(c, x, layer);
  let gate: Tensor, up: Tensor;
  if (c.family.projections.includes('gate_up_proj')) {
    [gate, up] = F.split(projection(c, x, layer, 'gate_up_proj', bias), [I, I], 1) as [Tensor, Tensor]; // rows: gate, then up
  } else {
    gate = projection(c, x, layer, 'gate_proj', bias);
    up = projection(c, x, layer, 'up_proj', bias);
  }
  const act = F.mul(activation(c, gate), up); // [rows, I]
  return projection(c, act, layer, 'down_proj', bias);
}

/**
 * The MLP chunked over the intermediate features: piece j uses rows Ij of gate/up and columns Ij
 * of down, so only one piece's [rows, I/n] intermediates are live. Each piece is a (nested)
 * checkpoint segment that also applies its share of down's LoRA ((act_j @ A_j^T) @ B^T), so
 * nothing outside a piece reads its intermediates and its backward recomputes it once.
 * Gate/up LoRA: x @ A^T is shared by the pieces, B splits by rows. A fused gate_up_proj is cut into
 * the gate's pieces followed by the up's (its rows: gate, then up).
 */
function chunkedMlp(c: LayerContext, x: Tensor, layer: number): Tensor {
  const bias = c.cfg.mlpBias, sizes = c.chunks.mlpSizes;
  const D = c.cfg.hiddenSize, I = c.cfg.intermediateSize;
  const fused = c.family.projections.includes('gate_up_proj');
  const rowSizes = fused ? [...sizes, ...sizes] : sizes; // the row pieces of one gate/up weight
  const loraIn = (target: LoraTarget) => {
    const ab = loraOf(c, layer, target);
    if (!ab) return null;
    const xa = nn.loraDown(dropout(c, x, layer, target), ab.a); // [rows, r]
    return { xa, bs: F.split(ab.b, rowSizes, 0) }; // B pieces [I/n, r]
  };
  const gateL = loraIn(fused ? 'gate_up_proj' : 'gate_proj'), upL = fused ? gateL : loraIn('up_proj');
  const downL = loraOf(c, layer, 'down_proj');
  const downAs = downL ? F.split(downL.a, sizes, 1) : null; // A pieces [r, I/n]
  const p = (target: LoraTarget) => modulePath(layer, target);
  let out: Tensor | null = null;
  let col0 = 0;
  sizes.forEach((size, j) => {
    const first = col0;
    const y = x.graph.checkpoint(`mlp.${j}`, () => {
      // Piece j of the gate (which 0) or the up projection (which 1).
      const half = (which: 0 | 1, l: ReturnType<typeof loraIn>) => {
        const target: LoraTarget = fused ? 'gate_up_proj' : which ? 'up_proj' : 'gate_proj';
        const index = fused ? which * sizes.length + j : j;
        const part: WeightPart = { axis: 0, sizes: rowSizes, index };
        const h = c.weights.linear(x, `${p(target)}.weight`, fused ? [2 * I, D] : [I, D], bias ? `${p(target)}.bias` : null, part); // [rows, I/n]
        return l ? nn.loraLinear(h, l.xa, { b: l.bs[index]!, scale: c.lora!.scale }) : h;
      };
      const gate = half(0, gateL), up = half(1, upL);
      const act = F.mul(activation(c, gate), up); // [rows, I/n]
      const base = c.weights.linear(act, `${p('down_proj')}.weight`, [D, I], null, { axis: 1, sizes, index: j }); // [rows, D]
      if (!downL) return base;
      const xa = nn.loraDown(dropout(c, act, layer, 'down_proj', first, I), downAs![j]!); // [rows, r]
      return nn.loraLinear(base, xa, { b: downL.b, scale: c.lora!.scale });
    });
    out = out ? F.add(out, y) : y;
    col0 += size;
  });
  return bias ? F.add(out!, c.weights.vector(`${p('down_proj')}.bias`, D)) : out!;
}

// ---------------------------------------------------------------------------------------------
// Projections with LoRA

/** A projection with its optional LoRA branch (nn.loraLinear). x: [rows, in] -> [rows, out] */
function projection(c: LayerContext, x: Tensor, layer: number, target: LoraTarget, withBias: boolean): Tensor {
  const path = modulePath(layer, target);
  const y = c.weights.linear(x, `${path}.weight`, projectionShape(c.cfg, target), withBias ? `${path}.bias` : null);
  const ab = loraOf(c, layer, target);
  if (!ab) return y;
  const xa = nn.loraDown(dropout(c, x, layer, target), ab.a); // [rows, r]
  return nn.loraLinear(y, xa, { b: ab.b, scale: c.lora!.scale }); // [rows, out]
}

/** The LoRA matrices of a module, or null when it carries no adapter. */
function loraOf(c: LayerContext, layer: number, target: LoraTarget): { a: Tensor; b: Tensor } | null {
  if (!c.lora || !c.lora.spec.targets.includes(target)) return null;
  const path = modulePath(layer, target);
  return {
    a: c.lora.inputs.get(`base_model.model.${path}.lora_A.weight`)!, // [r, in]
    b: c.lora.inputs.get(`base_model.model.${path}.lora_B.weight`)!, // [out, r]
  };
}

/** A LoRA branch's input with dropout (its seed keyed by layer and projection), or x when dropout is off. */
function dropout(c: LayerContext, x: Tensor, layer: number, target: LoraTarget, col0 = 0, width?: number): Tensor {
  const d = c.lora?.dropout;
  return d ? loraDropout(d, x, dropoutSeedIndex(c.lora!.spec, layer, target), col0, width) : x;
}

// ---------------------------------------------------------------------------------------------
// Head and loss

/**
 * The LM head (tied models reuse the embedding table), soft-capped where the model says so (Gemma).
 * h: [rows, D] -> [rows, V] (or [rows, piece] for a row piece).
 */
export function lmHead(f: ForwardSpec, h: Tensor, part: WeightPart | null = null): Tensor {
  const { cfg } = f;
  const name = cfg.tieWordEmbeddings ? EMBED_TOKENS : 'lm_head.weight';
  const logits = f.weights.linear(h, name, [cfg.vocabSize, cfg.hiddenSize], null, part);
  return cfg.finalLogitSoftcap === null ? logits : softcap(logits, cfg.finalLogitSoftcap);
}

/**
 * Mean cross-entropy of the head's logits over targets != -100 (targets: [rows] int32). The
 * logits are never whole when the chunk plan cuts the vocabulary, or with `rowChunks` > 1.
 */
export function lmLoss(f: ForwardSpec, h: Tensor, targets: Tensor, rowChunks: number): Tensor {
  if (f.chunks.vocabSizes.length > 1) return vocabChunkedLoss(f, h, targets, f.chunks.vocabSizes);
  if (rowChunks === 1) return nn.crossEntropy(lmHead(f, h), targets);
  return rowChunkedLoss(f, h, targets, rowChunks);
}

/**
 * The vocabulary-chunked loss with its gradient with respect to h built in the forward
 * (nn.fusedHeadCrossEntropy), so that a training step's backward starts from h and no piece's
 * logits are recomputed. Null where the loss is not cut into vocabulary pieces (autodiff's
 * formulation stays: no recomputation to save) or its logits are capped.
 * h: [rows, D] -> loss [], dh [rows, D]
 */
export function lmLossAndGradient(f: ForwardSpec, h: Tensor, targets: Tensor): { loss: Tensor; dh: Tensor } | null {
  const { cfg } = f, sizes = f.chunks.vocabSizes;
  // Capped logits (Gemma: cap * tanh(logits / cap)) are not h W^T: autodiff's formulation takes them.
  if (sizes.length === 1 || cfg.finalLogitSoftcap !== null) return null;
  const name = cfg.tieWordEmbeddings ? EMBED_TOKENS : 'lm_head.weight';
  return nn.fusedHeadCrossEntropy(h, targets, sizes.map((size, index) => ({
    size, weight: (after: Tensor) => f.weights.bothWays(name, [cfg.vocabSize, cfg.hiddenSize], { axis: 0, sizes, index }, after),
  })));
}

/**
 * Each row's log-probability of its target (targets: [rows] int32), 0 where the target is -100:
 * [rows]. Built from the same vocabulary pieces as lmLoss, so the logits are never whole when the
 * chunk plan cuts the vocabulary. Preference losses sum these per sequence.
 */
export function lmTokenLogProbs(f: ForwardSpec, h: Tensor, targets: Tensor): Tensor {
  const sizes = f.chunks.vocabSizes;
  if (sizes.length === 1) return nn.tokenLogProbsFromPieces([nn.crossEntropyPiece(lmHead(f, h), targets)], targets);
  let start = 0;
  const pieces = sizes.map((size, j) => {
    const first = start;
    start += size;
    return h.graph.checkpoint(`logprobs.vocab${j}`, () => nn.crossEntropyPiece(lmHead(f, h, { axis: 0, sizes, index: j }), targets, first));
  });
  return nn.tokenLogProbsFromPieces(pieces, targets);
}

/**
 * The vocabulary in pieces: each piece is a checkpoint segment giving per-row log-sum-exp and
 * target logit (nn.crossEntropyPiece), so the backward recomputes one [rows, V/n] block of logits
 * at a time (the lm_head is read once per pass, unlike row chunks).
 */
function vocabChunkedLoss(f: ForwardSpec, h: Tensor, targets: Tensor, sizes: number[]): Tensor {
  const g = h.graph;
  let start = 0;
  const pieces = sizes.map((size, j) => {
    const first = start;
    start += size;
    // One [rows, 2] output: ORT schedules the target gather with the log-sum-exp, not at the end
    // of the step (the loss value is the last output it computes), which would keep the logits.
    return g.checkpoint(`loss.vocab${j}`, () => nn.crossEntropyPiece(lmHead(f, h, { axis: 0, sizes, index: j }), targets, first));
  });
  return nn.crossEntropyFromPieces(pieces, targets);
}

/** Row chunks: each chunk's logits are recomputed in the backward, so only [rows/chunks, V] is live. */
function rowChunkedLoss(f: ForwardSpec, h: Tensor, targets: Tensor, chunks: number): Tensor {
  if (typeof f.T !== 'number') throw new Error('buildTrainForward: row-chunked loss (lossChunks) needs a static sequence length');
  const g = h.graph;
  const rows = f.B * f.T, size = Math.ceil(rows / chunks);
  const sizes = Array.from({ length: chunks }, (_, i) => Math.min(size, rows - i * size)).filter((s) => s > 0);
  const hs = F.split(h, sizes, 0), ts = F.split(targets, sizes, 0);
  const valid = F.cast(F.greater(targets, F.scalar(g, 'int32', -100)), 'float32'); // [rows]
  const count = F.max2(F.reduceSum(valid, [0], false), 1);
  let total: Tensor | null = null;
  hs.forEach((hc, i) => {
    // Sum over this chunk's valid tokens.
    const part = g.checkpoint(`loss.${i}`, () => nn.crossEntropyFromPieces([nn.crossEntropyPiece(lmHead(f, hc), ts[i]!)], ts[i]!, { reduction: 'sum' }));
    total = total ? F.add(total, part) : part;
  });
  return F.div(total!, count);
}
