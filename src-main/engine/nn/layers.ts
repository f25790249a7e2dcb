// Building blocks of Llama-family models, composed from the graph ops in graph/ops.ts. They add
// no gradient rules of their own: autodiff differentiates the primitives they are made of.
// Every op chosen here has a WebGPU kernel for float32 (no int64 arithmetic, no LogSoftmax,
// no SoftmaxCrossEntropyLoss, no bool Trilu), so the same graph runs on every execution provider;
// test/engine/composite/ checks each block against PyTorch and the training step on WebGPU.
// Weights use the PyTorch / Hugging Face layout: a linear layer's weight is [out, in].

import { type DType, type Dim, isStatic, numel, shapeToString } from '../graph/dtype.js';
import { type Graph, Tensor } from '../graph/graph.js';
import * as F from '../graph/ops.js';
import { barrier } from '../graph/ordering.js';

/** The most negative finite value of a float dtype: masks with it, because WGSL need not honour -inf. */
export function lowestFinite(dtype: DType): number {
  switch (dtype) {
    case 'float32': return -3.4028234663852886e38;
    case 'float64': return -Number.MAX_VALUE;
    case 'float16': return -65504;
    case 'bfloat16': return -3.3895313892515355e38;
    default: throw new F.GraphBuildError(`lowestFinite: ${dtype} is not a float dtype`);
  }
}

/** y[..., out] = x[..., in] @ w[out, in]^T (+ b[out]), as torch.nn.functional.linear. */
export function linear(x: Tensor, w: Tensor, b: Tensor | null = null): Tensor {
  if (w.rank !== 2) throw new F.GraphBuildError(`linear: weight ${w} must be [out, in]`);
  const [nOut, nIn] = w.shape as [Dim, Dim];
  if (x.shape[x.rank - 1] !== nIn) {
    throw new F.GraphBuildError(`linear: input ${x} does not end in ${nIn}, the in-features of weight ${w}`);
  }
  if (x.rank === 2) return F.gemm(x, w, b, { transB: true }); // [N, out]
  const lead = x.shape.slice(0, -1);
  if (!isStatic(lead)) {
    const y = F.matmul(x, F.transpose(w, [1, 0])); // symbolic leading dims: MatMul broadcasts them
    return b ? F.add(y, b) : y;
  }
  // Static leading dims fold into rows so one Gemm (transB, no Transpose node) does the work,
  // and the weight gradient is a single [out, in] Gemm as well.
  const rows = numel(lead);
  const y = F.gemm(F.reshape(x, [rows, nIn]), w, b, { transB: true }); // [rows, out]
  return F.reshape(y, [...lead, nOut]); // [..., out]
}

/** x * sigmoid(x) (SiLU, a.k.a. swish). */
export function silu(x: Tensor): Tensor {
  return F.mul(x, F.sigmoid(x));
}

/**
 * GELU with the tanh approximation (PyTorch's gelu(approximate='tanh'), Gemma's gelu_pytorch_tanh):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Composed of Mul/Add/Tanh, which every provider
 * has (ONNX's Gelu is opset 20 and has no kernel on some of them).
 */
export function geluTanh(x: Tensor): Tensor {
  const cube = F.mul(F.mul(x, x), x);
  const inner = F.mul(F.add(x, F.mul(cube, 0.044715)), Math.sqrt(2 / Math.PI));
  return F.mul(F.mul(x, 0.5), F.add(F.tanh(inner), 1));
}

/** Llama's RMSNorm: x / sqrt(mean(x^2, -1) + eps) * weight, for x [..., D] and weight [D]. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const d = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== d) throw new F.GraphBuildError(`rmsNorm: weight ${weight} must be [${d}] for input ${x}`);
  const meanSquare = F.reduceMean(F.mul(x, x), [-1], true); // [..., 1]
  const inv = F.reciprocal(F.sqrt(F.add(meanSquare, eps))); // [..., 1]
  return F.mul(F.mul(x, inv), weight); // [..., D]
}

export interface MlpWeights {
  gate: Tensor; // [I, D]
  up: Tensor; // [I, D]
  down: Tensor; // [D, I]
}

/** Llama's gated MLP: down(silu(gate(x)) * up(x)), x [..., D] -> [..., D]. */
export function gatedMlp(x: Tensor, w: MlpWeights): Tensor {
  const h = F.mul(silu(linear(x, w.gate)), linear(x, w.up)); // [..., I]
  return linear(h, w.down); // [..., D]
}

/** Bool [T, T], true where key position <= query position (row = query, column = key). */
export function causalMask(g: Graph, dtype: DType, t: number): Tensor {
  // Trilu runs on float only on WebGPU; with a static T, ONNX Runtime folds this to a constant.
  return F.cast(F.trilu(F.full(g, dtype, [t, t], 1), false), 'bool');
}

/** [B, T, H*hd] -> [B, H, T, hd] */
export function splitHeads(x: Tensor, nHeads: number): Tensor {
  const [b, t, hd] = x.shape as [Dim, Dim, Dim];
  if (typeof hd !== 'number' || hd % nHeads !== 0) throw new F.GraphBuildError(`splitHeads: ${x} does not split into ${nHeads} heads`);
  return F.transpose(F.reshape(x, [b, t, nHeads, hd / nHeads]), [0, 2, 1, 3]);
}

/** [B, H, T, hd] -> [B, T, H*hd] */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, t, hd] = x.shape as [Dim, Dim, Dim, Dim];
  if (typeof h !== 'number' || typeof hd !== 'number') throw new F.GraphBuildError(`mergeHeads: ${x} needs static heads and head size`);
  return F.reshape(F.transpose(x, [0, 2, 1, 3]), [b, t, h * hd]);
}

/** Grouped-query attention: each of the Hkv heads serves `rep` query heads. [B, Hkv, T, hd] -> [B, Hkv*rep, T, hd] */
export function repeatKv(x: Tensor, rep: number): Tensor {
  if (rep === 1) return x;
  const [b, hkv, t, hd] = x.shape as [Dim, Dim, Dim, Dim];
  if (!isStatic(x.shape)) throw new F.GraphBuildError(`repeatKv: ${x} needs a static shape`);
  const wide = F.expand(F.unsqueeze(x, [2]), [b, hkv, rep, t, hd]); // [B, Hkv, rep, T, hd]
  return F.reshape(wide, [b, (hkv as number) * rep, t, hd]);
}

/**
 * Causal scaled dot-product attention, softmax(q k^T / sqrt(hd) + causal mask) v.
 * q [B, H, T, hd]; k, v [B, Hkv, T, hd] with H a multiple of Hkv. Returns [B, H, T, hd].
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const [, h, t, hd] = q.shape as [Dim, Dim, Dim, Dim];
  const hkv = k.shape[1];
  if (typeof h !== 'number' || typeof hkv !== 'number' || h % hkv !== 0) {
    throw new F.GraphBuildError(`causalAttention: query heads of ${q} must be a multiple of key heads of ${k}`);
  }
  if (typeof t !== 'number' || typeof hd !== 'number') {
    throw new F.GraphBuildError(`causalAttention: ${q} needs a static sequence length and head size (one graph per job shape)`);
  }
  const kk = repeatKv(k, h / hkv), vv = repeatKv(v, h / hkv); // [B, H, T, hd]
  const scores = F.mul(F.matmul(q, F.transposeLast2(kk)), 1 / Math.sqrt(hd)); // [B, H, T, T]
  // Where (not an additive bias): masked scores become exactly the lowest finite value, whose
  // softmax weight underflows to 0, and their gradient is exactly 0.
  const masked = F.where(causalMask(q.graph, q.dtype, t), scores, lowestFinite(q.dtype)); // [B, H, T, T]
  return F.matmul(F.softmax(masked, -1), vv); // [B, H, T, hd]
}

export interface AttentionWeights {
  q: Tensor; // [H*hd, D]
  k: Tensor; // [Hkv*hd, D]
  v: Tensor; // [Hkv*hd, D]
  o: Tensor; // [D, H*hd]
  /** Optional projection biases (Qwen2 has them on q, k, v). */
  qBias?: Tensor | null;
  kBias?: Tensor | null;
  vBias?: Tensor | null;
}

export interface AttentionOptions {
  nHeads: number;
  nKvHeads: number;
  /** Applied to q [B, H, T, hd] and k [B, Hkv, T, hd] before the scores (rotary embeddings). */
  rope?: (q: Tensor, k: Tensor) => [Tensor, Tensor];
}

/** Multi-head causal self-attention with grouped-query heads: x [B, T, D] -> [B, T, D]. */
export function selfAttention(x: Tensor, w: AttentionWeights, o: AttentionOptions): Tensor {
  if (x.rank !== 3) throw new F.GraphBuildError(`selfAttention: input ${x} must be [B, T, D]`);
  if (o.nHeads % o.nKvHeads !== 0) throw new F.GraphBuildError(`selfAttention: ${o.nHeads} heads are not a multiple of ${o.nKvHeads} key/value heads`);
  let q = splitHeads(linear(x, w.q, w.qBias ?? null), o.nHeads); // [B, H, T, hd]
  let k = splitHeads(linear(x, w.k, w.kBias ?? null), o.nKvHeads); // [B, Hkv, T, hd]
  const v = splitHeads(linear(x, w.v, w.vBias ?? null), o.nKvHeads); // [B, Hkv, T, hd]
  if (q.shape[3] !== k.shape[3]) throw new F.GraphBuildError(`selfAttention: head sizes differ (${shapeToString(q.shape)} vs ${shapeToString(k.shape)})`);
  if (o.rope) [q, k] = o.rope(q, k);
  return linear(mergeHeads(causalAttention(q, k, v)), w.o); // [B, T, D]
}

/**
 * One vocabulary piece of a cross-entropy: for logits [N, V'] holding the vocabulary rows
 * [first, first + V'), the per-row log-sum-exp and the logit of the label where the label falls in
 * this piece (0 elsewhere), as one [N, 2] tensor. Sums of pieces give the full cross-entropy
 * (crossEntropyFromPieces), so a large vocabulary never needs its whole [N, V] logits at once.
 * labels: int32 [N] (int64 comparisons fall back to the CPU on WebGPU).
 */
export function crossEntropyPiece(logits: Tensor, labels: Tensor, first = 0): Tensor {
  return crossEntropyPieceParts(logits, labels, first).piece;
}

/** crossEntropyPiece's output and the parts of it the fused loss's gradient reuses. */
interface PieceParts {
  piece: Tensor; // [N, 2]: log-sum-exp, target logit
  shift: Tensor; // [N, 1] the row's shift (about its maximum)
  exps: Tensor; // [N, V'] exp(logits - shift)
  sum: Tensor; // [N, 1] their row sums
  safe: Tensor; // [N] int32 label index inside this piece (0 where the label is elsewhere)
  inside: Tensor; // [N] bool: the label falls in this piece
}

function crossEntropyPieceParts(logits: Tensor, labels: Tensor, first: number): PieceParts {
  if (logits.rank !== 2 || labels.rank !== 1 || logits.shape[0] !== labels.shape[0]) {
    throw new F.GraphBuildError(`crossEntropyPiece: expects logits [N, V] and labels [N], got ${logits} and ${labels}`);
  }
  if (labels.dtype !== 'int32') throw new F.GraphBuildError(`crossEntropyPiece: labels ${labels} must be int32 (int64 has no WebGPU kernels)`);
  const g = logits.graph, dt = logits.dtype, size = logits.shape[1] as number;
  // log-sum-exp, shifted by the row maximum for stability. The shift leaves the value unchanged,
  // so its gradient is taken as 0: an integer round trip hides it from autodiff (which follows
  // float tensors only) and costs nothing in accuracy, since any shift near the maximum works.
  const shift = F.cast(F.cast(F.reduceMax(logits, [1], true), 'int32'), dt); // [N, 1]
  const exps = F.exp(F.sub(logits, shift)); // [N, V']
  const sum = F.reduceSum(exps, [1], true); // [N, 1]
  const lse = F.add(F.log(sum), shift); // [N, 1]
  const local = first ? F.sub(labels, F.scalar(g, 'int32', first)) : labels; // [N] index inside this piece
  const inside = F.and(F.greaterOrEqual(local, F.scalar(g, 'int32', 0)), F.less(local, F.scalar(g, 'int32', size))); // [N] bool
  const safe = F.where(inside, local, F.scalar(g, 'int32', 0)); // [N] in range for every row
  const target = F.mul(F.gatherElements(logits, F.unsqueeze(safe, [1]), 1), F.unsqueeze(F.cast(inside, dt), [1])); // [N, 1]
  return { piece: F.concat([lse, target], 1), shift, exps, sum, safe, inside }; // piece [N, 2]
}

/** One vocabulary piece of a linear head: its frozen weight W [V', D] used both ways (graph-weights.ts WeightBothWays). */
export interface HeadPiece {
  /** Rows of the vocabulary it holds. */
  size: number;
  /** The piece's weight, built when its turn comes: `after` is what it waits for (a 4-bit piece is dequantized only then). */
  weight(after: Tensor): { forward(x: Tensor): Tensor; backward(dy: Tensor): Tensor; rows(ids: Tensor): Tensor };
}

/**
 * The cross-entropy of a linear head over vocabulary pieces, and its gradient with respect to the
 * head's input h, both built in the forward: the backward then starts from h (autodiff's seed), so
 * no piece's logits are kept or recomputed. Each piece's weight is read twice (logits = h W^T, then
 * exp(logits - shift) W) instead of three times (forward, recompute, backward), and one piece's
 * [N, V'] block is live at a time (each piece waits for the previous one's result).
 *
 *   dL/dh = (sum_j softmax_j W_j - W[label]) * valid / count
 *
 * The softmax weights are accumulated online, as attention kernels do: acc holds
 * sum_j exp(logits_j - L) W_j for the running log-sum-exp L over the pieces so far, rescaled when a
 * piece raises L. h: [N, D], labels: int32 [N]. Returns the mean loss (crossEntropyFromPieces of the
 * same pieces: the value equals the autodiff formulation's bit for bit) and dL/dh [N, D].
 */
export function fusedHeadCrossEntropy(h: Tensor, labels: Tensor, pieces: readonly HeadPiece[], ignoreIndex = -100): { loss: Tensor; dh: Tensor } {
  const g = h.graph;
  const outs: Tensor[] = [];
  let acc: Tensor | null = null, running: Tensor | null = null, targetRows: Tensor | null = null;
  let first = 0;
  for (const p of pieces) {
    // One piece at a time: the next one waits for both of this one's results, so that ONNX Runtime
    // (which orders nodes depth-first from the outputs) cannot leave a piece's weight alive for a
    // later target-row gather.
    const hj = acc && targetRows ? barrier(barrier(h, acc), targetRows) : h;
    const w = p.weight(hj);
    const parts = crossEntropyPieceParts(w.forward(hj), labels, first); // logits [N, V']
    outs.push(parts.piece);
    // The log-sum-exp as read back from the piece: the target logit is gathered now, while the
    // logits exist, not when the loss value is computed at the end of the step.
    const lse = F.split(parts.piece, [1, 1], 1)[0]!; // [N, 1]
    const u = w.backward(parts.exps); // [N, D]: exp(logits - shift) W
    const rows = F.mul(w.rows(parts.safe), F.unsqueeze(F.cast(parts.inside, h.dtype), [1])); // [N, D]: W[label] where it is in this piece
    if (!acc || !running) {
      running = lse;
      acc = F.div(u, parts.sum); // exp(shift - lse) = 1 / sum
    } else {
      const top = F.max2(running, lse); // [N, 1]
      const next = F.add(F.log(F.add(F.exp(F.sub(running, top)), F.exp(F.sub(lse, top)))), top); // [N, 1] log(e^L + e^lse)
      acc = F.add(F.mul(acc, F.exp(F.sub(running, next))), F.mul(u, F.exp(F.sub(parts.shift, next)))); // [N, D]
      running = next;
    }
    targetRows = targetRows ? F.add(targetRows, rows) : rows;
    first += p.size;
  }
  const weight = F.cast(F.greater(labels, F.scalar(g, 'int32', ignoreIndex)), h.dtype); // [N]
  const scale = F.unsqueeze(F.div(weight, F.max2(F.reduceSum(weight, [0], false), 1)), [1]); // [N, 1] valid / count
  return { loss: crossEntropyFromPieces(outs, labels, { ignoreIndex }), dh: F.mul(F.sub(acc!, targetRows!), scale) };
}

/**
 * Combines vocabulary pieces ([N, 2] each, crossEntropyPiece) into the cross-entropy over rows
 * whose label is not `ignoreIndex`: the mean (default) or the sum over those rows.
 */
export function crossEntropyFromPieces(pieces: readonly Tensor[], labels: Tensor, o: { ignoreIndex?: number; reduction?: 'mean' | 'sum' } = {}): Tensor {
  const ignoreIndex = o.ignoreIndex ?? -100;
  if (ignoreIndex >= 0) throw new F.GraphBuildError(`crossEntropy: ignoreIndex must be negative, got ${ignoreIndex}`);
  const { nll, weight } = pieceTerms(pieces, labels, ignoreIndex); // [N] each
  const total = F.reduceSum(F.mul(nll, weight), [0], false); // []
  if (o.reduction === 'sum') return total;
  return F.div(total, F.max2(F.reduceSum(weight, [0], false), 1));
}

/**
 * Each row's log-probability of its label from vocabulary pieces (crossEntropyPiece), 0 where the
 * label is `ignoreIndex`: [N], as torch's log_softmax(logits).gather(labels) masked.
 */
export function tokenLogProbsFromPieces(pieces: readonly Tensor[], labels: Tensor, ignoreIndex = -100): Tensor {
  if (ignoreIndex >= 0) throw new F.GraphBuildError(`tokenLogProbs: ignoreIndex must be negative, got ${ignoreIndex}`);
  const { nll, weight } = pieceTerms(pieces, labels, ignoreIndex);
  return F.neg(F.mul(nll, weight)); // [N]
}

/** Per-row negative log-likelihood [N] from the pieces, and the row weight [N] (1, or 0 where the label is ignored). */
function pieceTerms(pieces: readonly Tensor[], labels: Tensor, ignoreIndex: number): { nll: Tensor; weight: Tensor } {
  const g = labels.graph, n = labels.shape[0]!;
  let lse: Tensor, target: Tensor;
  if (pieces.length === 1) {
    [lse, target] = F.split(pieces[0]!, [1, 1], 1) as [Tensor, Tensor]; // [N, 1] each
  } else {
    const split = pieces.map((p) => F.split(p, [1, 1], 1) as [Tensor, Tensor]);
    const all = F.concat(split.map((s) => s[0]), 1); // [N, pieces]
    const shift = F.cast(F.cast(F.reduceMax(all, [1], true), 'int32'), all.dtype); // [N, 1], no gradient
    lse = F.add(F.log(F.reduceSum(F.exp(F.sub(all, shift)), [1], true)), shift); // [N, 1]
    target = split.map((s) => s[1]).reduce((a, b) => F.add(a, b)); // [N, 1]: only one piece holds each label
  }
  const weight = F.cast(F.greater(labels, F.scalar(g, 'int32', ignoreIndex)), lse.dtype); // [N]: labels are >= 0 or ignoreIndex
  return { nll: F.reshape(F.sub(lse, target), [n]), weight }; // [N] each
}

/**
 * Mean cross-entropy over the rows whose label is not `ignoreIndex`, as
 * torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100). logits [N, V], labels int32 [N].
 * Returns a scalar; 0 (not NaN, as PyTorch) when every label is ignored.
 *
 * Composed instead of ONNX SoftmaxCrossEntropyLoss, which has no WebGPU kernel, and with int32
 * labels because int64 comparisons fall back to the CPU there.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  if (ignoreIndex >= 0) throw new F.GraphBuildError(`crossEntropy: ignoreIndex must be negative, got ${ignoreIndex}`);
  return crossEntropyFromPieces([crossEntropyPiece(logits, labels)], labels, { ignoreIndex });
}

/** Rotary embedding (HF rotate_half layout) on [B, heads, T, hd]: x * cos + rotate_half(x) * sin. */
export function rotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const hd = x.shape[x.rank - 1];
  if (typeof hd !== 'number' || hd % 2) throw new F.GraphBuildError(`rotary: ${x} needs an even, static head size`);
  const [x1, x2] = F.split(x, [hd / 2, hd / 2], -1);
  return F.add(F.mul(x, cos), F.mul(F.concat([F.neg(x2!), x1!], -1), sin));
}

/** The LoRA branch of one projection: B [out, r], the scale alpha/r (or a function scaling [rows, r] per row). */
export interface LoraBranch {
  b: Tensor; // [out, r]
  scale: number | ((xa: Tensor) => Tensor);
}

/** x @ A^T: the shared down-projection of a LoRA branch. x [rows, in], a [r, in] -> [rows, r] */
export function loraDown(x: Tensor, a: Tensor): Tensor {
  return F.gemm(x, a, null, { transB: true });
}

/**
 * LoRA on a linear layer: base + scale * (x @ A^T) @ B^T, with base = x @ W^T (+ bias) already
 * computed and xa = loraDown(dropout(x), A). One Gemm (alpha, C = base): no [rows, out]
 * temporaries for the scale and the sum. base [rows, out], xa [rows, r] -> [rows, out]
 */
export function loraLinear(base: Tensor, xa: Tensor, lora: LoraBranch): Tensor {
  if (typeof lora.scale === 'number') return F.gemm(xa, lora.b, base, { transB: true, alpha: lora.scale });
  return F.gemm(lora.scale(xa), lora.b, base, { transB: true }); // per-row scale, applied on [rows, r]
}
