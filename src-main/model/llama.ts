// The Llama-family decoder (Llama 2/3/3.x, Mistral, Qwen2, SmolLM) as graph nodes, in the model's
// own order:
//
//   h    = embed(ids)
//   h    = h + attn(rmsnorm(h))        # per layer: RoPE on q/k, grouped-query causal attention
//   h    = h + mlp(rmsnorm(h))         # SiLU-gated: down(silu(gate(x)) * up(x))
//   out  = lm_head(rmsnorm(h))
//   loss = cross_entropy(out, targets)
//
// Every projection may carry a LoRA branch (with dropout when training). The blocks (RMSNorm,
// rotary embedding, SiLU, LoRA linear, cross-entropy) are engine/nn's, which use only ops with
// kernels on both the CPU and WebGPU providers: no int64 arithmetic (targets are int32, shapes
// are constants), no SoftmaxCrossEntropyLoss or LogSoftmax. Activations are kept 2-D,
// [rows = B*T, D], so every projection is one GEMM; attention reshapes to [B, heads, T, hd].
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
import { type DropoutContext, dropoutSeedIndex, loraDropout } from './lora-dropout.js';
import { type LoraSpec, type LoraTarget, modulePath, projectionShape } from './lora.js';
import type { ModelConfig } from './types.js';
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
  /** RoPE inverse frequencies [hd / 2] (model/config.ts ropeInvFreq) and the positions its tables cover. */
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
  /** Generation: each layer's cache of P earlier positions. */
  past: readonly KvCache[] | null;
}

/** What every layer reads besides its input: the forward's spec, the rotary tables at the batch's positions, the mask. */
interface LayerContext extends ForwardSpec {
  readonly cos: Tensor; // [B, 1, T, hd]
  readonly sin: Tensor; // [B, 1, T, hd]
  readonly bias: Tensor; // [B, 1, T, S]
}

const EMBED_TOKENS = 'model.embed_tokens.weight';

/** B*T when static, else a symbol (Reshape infers it). */
const rowsOf = (f: ForwardSpec): Dim => (typeof f.T === 'number' ? f.B * f.T : 'rows');

/** [rows, heads * hd] -> [B, heads, T, hd] */
const splitHeads = (f: ForwardSpec, x: Tensor, heads: number): Tensor => F.transpose(F.reshape(x, [f.B, f.T, heads, f.cfg.headDim]), [0, 2, 1, 3]);

// ---------------------------------------------------------------------------------------------
// The decoder: embed -> layers -> final norm

/**
 * Hidden states after the final norm [rows, D], and each layer's cache with the T new positions
 * appended ([B, KV, P+T, hd], generation only).
 */
export function decoder(f: ForwardSpec, inp: ForwardInputs): { h: Tensor; present: KvCache[] } {
  const { cfg } = f;
  const g = inp.positions.graph;
  const c: LayerContext = { ...f, ...rotaryAt(g, f, inp.positions), bias: inp.bias };
  let h = inp.embeds ?? embed(c, inp.ids!); // [rows, D]
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

/** cos/sin tables [positions, hd] (HF layout: the half-frequencies repeated twice). */
export function ropeTables(invFreq: Float64Array, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length, hd = half * 2;
  const cos = new Float32Array(positions * hd), sin = new Float32Array(positions * hd);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i]!;
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(a);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** The rotary tables (initializers over maxPositions) gathered at the batch's positions: [B, 1, T, hd] each. */
function rotaryAt(g: Graph, f: ForwardSpec, positions: Tensor): { cos: Tensor; sin: Tensor } {
  const hd = f.cfg.headDim, tables = ropeTables(f.invFreq, f.maxPositions);
  const table = (name: string, a: Float32Array) =>
    g.initializer(name, 'float32', [f.maxPositions, hd], { kind: 'inline', bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
  const cosT = table('rope.cos', tables.cos), sinT = table('rope.sin', tables.sin);
  return { cos: F.unsqueeze(F.gather(cosT, positions), [1]), sin: F.unsqueeze(F.gather(sinT, positions), [1]) };
}

/** Token embeddings [rows, D]: gather [B, T] ids, then reshape the float rows (reshaping the int64 ids would run on the CPU). */
function embed(c: LayerContext, ids: Tensor): Tensor {
  const { cfg } = c;
  return F.reshape(c.weights.embedding(ids, EMBED_TOKENS, [cfg.vocabSize, cfg.hiddenSize]), [rowsOf(c), cfg.hiddenSize]);
}

/** RMSNorm with the weight `name`. x: [rows, D] */
function norm(c: LayerContext, x: Tensor, name: string): Tensor {
  return nn.rmsNorm(x, c.weights.vector(name, c.cfg.hiddenSize), c.cfg.rmsNormEps);
}

/** One pre-norm block: h + attn(norm(h)), then + mlp(norm(.)). h: [rows, D] */
function decoderLayer(c: LayerContext, h: Tensor, layer: number, past: KvCache | null): { h: Tensor; present: KvCache | null } {
  const p = `model.layers.${layer}`;
  const a = attention(c, norm(c, h, `${p}.input_layernorm.weight`), layer, past);
  const h1 = F.add(h, a.out);
  const m = mlp(c, norm(c, h1, `${p}.post_attention_layernorm.weight`), layer);
  return { h: F.add(h1, m), present: a.present };
}

// ---------------------------------------------------------------------------------------------
// Attention

/** Grouped-query causal self-attention. x: [rows, D] -> [rows, D], and the layer's cache with T appended. */
function attention(c: LayerContext, x: Tensor, layer: number, past: KvCache | null): { out: Tensor; present: KvCache | null } {
  const { cfg } = c;
  const H = cfg.numHeads, KV = cfg.numKvHeads, hd = cfg.headDim, G = H / KV;
  const bias = cfg.attentionBias;
  const q = splitHeads(c, projection(c, x, layer, 'q_proj', bias), H); // [B, H, T, hd]
  let k = splitHeads(c, projection(c, x, layer, 'k_proj', bias), KV); // [B, KV, T, hd]
  let v = splitHeads(c, projection(c, x, layer, 'v_proj', bias), KV); // [B, KV, T, hd]
  const qr = nn.rotary(q, c.cos, c.sin);
  k = nn.rotary(k, c.cos, c.sin);
  if (past) {
    k = F.concat([past.k, k], 2); // [B, KV, P+T, hd]
    v = F.concat([past.v, v], 2);
  }
  // Chunks of hc query heads: only one chunk's [B, hc, T, S] scores and probabilities are live.
  const hc = c.chunks.attentionHeads;
  let ctx: Tensor;
  if (hc >= H) {
    ctx = attend(c, qr, k, v);
  } else {
    const kvc = Math.max(1, hc / G); // KV heads per chunk
    const qs = F.split(qr, Array<number>(H / hc).fill(hc), 1);
    const ks = F.split(k, Array<number>(KV / kvc).fill(kvc), 1), vs = F.split(v, Array<number>(KV / kvc).fill(kvc), 1);
    const kvOf = (i: number) => Math.floor((i * hc) / G / kvc); // chunk i's KV piece
    // Each chunk is a (nested) checkpoint segment: its backward recomputes its own probabilities.
    ctx = F.concat(qs.map((qi, i) => x.graph.checkpoint(`attn.${i}`, () => attend(c, qi, ks[kvOf(i)]!, vs[kvOf(i)]!))), 1); // [B, H, T, hd]
  }
  const merged = F.reshape(F.transpose(ctx, [0, 2, 1, 3]), [rowsOf(c), H * hd]); // [rows, H*hd]
  return { out: projection(c, merged, layer, 'o_proj', cfg.attentionOutputBias), present: past ? { k, v } : null };
}

/**
 * Causal attention of `hc` query heads against their `kvc` KV heads, without repeating K/V: each
 * KV head's query heads fold into rows. q [B, hc, T, hd], k/v [B, kvc, S, hd] -> [B, hc, T, hd]
 */
function attend(c: LayerContext, q: Tensor, k: Tensor, v: Tensor): Tensor {
  const hd = c.cfg.headDim, hc = q.shape[1] as number, kvc = k.shape[1] as number, gq = hc / kvc, S = k.shape[2]!;
  const rowsG = gq === 1 ? c.T : typeof c.T === 'number' ? gq * c.T : `${gq}*${c.T}`;
  const qg = F.reshape(q, [c.B, kvc, rowsG, hd]); // [B, kvc, gq*T, hd]
  const scores = F.mul(F.matmul(qg, F.transposeLast2(k)), 1 / Math.sqrt(hd)); // [B, kvc, gq*T, S]
  const probs = F.softmax(F.add(F.reshape(scores, [c.B, hc, c.T, S]), c.bias), -1); // [B, hc, T, S]
  const ctx = F.matmul(F.reshape(probs, [c.B, kvc, rowsG, S]), v); // [B, kvc, gq*T, hd]
  return F.reshape(ctx, [c.B, hc, c.T, hd]);
}

// ---------------------------------------------------------------------------------------------
// MLP

/** SiLU-gated MLP: down(silu(gate(x)) * up(x)). x: [rows, D] -> [rows, D] */
function mlp(c: LayerContext, x: Tensor, layer: number): Tensor {
  const bias = c.cfg.mlpBias;
  if (c.chunks.mlpSizes.length > 1) return chunkedMlp(c, x, layer);
  const gate = projection(c, x, layer, 'gate_proj', bias);
  const up = projection(c, x, layer, 'up_proj', bias);
  const act = F.mul(nn.silu(gate), up); // [rows, I]
  return projection(c, act, layer, 'down_proj', bias);
}

/**
 * The MLP chunked over the intermediate features: piece j uses rows Ij of gate/up and columns Ij
 * of down, so only one piece's [rows, I/n] intermediates are live. Each piece is a (nested)
 * checkpoint segment that also applies its share of down's LoRA ((act_j @ A_j^T) @ B^T), so
 * nothing outside a piece reads its intermediates and its backward recomputes it once.
 * Gate/up LoRA: x @ A^T is shared by the pieces, B splits by rows.
 */
function chunkedMlp(c: LayerContext, x: Tensor, layer: number): Tensor {
  const bias = c.cfg.mlpBias, sizes = c.chunks.mlpSizes;
  const D = c.cfg.hiddenSize, I = c.cfg.intermediateSize;
  const loraIn = (target: LoraTarget) => {
    const ab = loraOf(c, layer, target);
    if (!ab) return null;
    const xa = nn.loraDown(dropout(c, x, layer, target), ab.a); // [rows, r]
    return { xa, bs: F.split(ab.b, sizes, 0) }; // B pieces [I/n, r]
  };
  const gateL = loraIn('gate_proj'), upL = loraIn('up_proj');
  const downL = loraOf(c, layer, 'down_proj');
  const downAs = downL ? F.split(downL.a, sizes, 1) : null; // A pieces [r, I/n]
  const p = (target: LoraTarget) => modulePath(layer, target);
  let out: Tensor | null = null;
  let col0 = 0;
  sizes.forEach((size, j) => {
    const first = col0;
    const y = x.graph.checkpoint(`mlp.${j}`, () => {
      const part: WeightPart = { axis: 0, sizes, index: j };
      const half = (target: 'gate_proj' | 'up_proj', l: ReturnType<typeof loraIn>) => {
        const h = c.weights.linear(x, `${p(target)}.weight`, [I, D], bias ? `${p(target)}.bias` : null, part); // [rows, I/n]
        return l ? nn.loraLinear(h, l.xa, { b: l.bs[j]!, scale: c.lora!.scale }) : h;
      };
      const gate = half('gate_proj', gateL), up = half('up_proj', upL);
      const act = F.mul(nn.silu(gate), up); // [rows, I/n]
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

/** The LM head (tied models reuse the embedding table). h: [rows, D] -> [rows, V] (or [rows, piece] for a row piece). */
export function lmHead(f: ForwardSpec, h: Tensor, part: WeightPart | null = null): Tensor {
  const { cfg } = f;
  const name = cfg.tieWordEmbeddings ? EMBED_TOKENS : 'lm_head.weight';
  return f.weights.linear(h, name, [cfg.vocabSize, cfg.hiddenSize], null, part);
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
 * logits are recomputed. Null where the loss is not cut into vocabulary pieces: there autodiff's
 * formulation stays (no recomputation to save). h: [rows, D] -> loss [], dh [rows, D]
 */
export function lmLossAndGradient(f: ForwardSpec, h: Tensor, targets: Tensor): { loss: Tensor; dh: Tensor } | null {
  const { cfg } = f, sizes = f.chunks.vocabSizes;
  if (sizes.length === 1) return null;
  const name = cfg.tieWordEmbeddings ? EMBED_TOKENS : 'lm_head.weight';
  return nn.fusedHeadCrossEntropy(h, targets, sizes.map((size, index) => ({
    size, weight: (after: Tensor) => f.weights.bothWays(name, [cfg.vocabSize, cfg.hiddenSize], { axis: 0, sizes, index }, after),
  })));
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
