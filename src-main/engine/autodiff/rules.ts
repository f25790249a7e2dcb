// The vector-Jacobian rule table: one short entry per ONNX op. A rule gets the node's inputs x,
// outputs y and output gradients dy, and returns one gradient per input (undefined where none is
// needed). Rules may return gradients in the *output's* broadcast shape: grad.ts sums them back to
// each input's shape. `null` marks an op as deliberately not differentiable.

import { type DType, type Shape, isStatic } from '../graph/dtype.js';
import { type Graph, type Node, Tensor, attr } from '../graph/graph.js';
import { dequantizeNBits } from '../graph/nbits.js';
import * as F from '../graph/ops.js';

export interface VjpContext {
  node: Node;
  g: Graph;
  x: (Tensor | null)[];
  y: Tensor[];
  dy: Tensor[];
  needs: boolean[];
}

export type VjpRule = (c: VjpContext) => (Tensor | null | undefined)[];

// --- helpers -----------------------------------------------------------------------------------

/** Reads the values of a constant int64/int32 input (axes, perms, shapes). */
export function constInts(g: Graph, t: Tensor | null): number[] {
  if (!t) return [];
  const init = g.initializers.get(t.name);
  if (!init || init.data.kind !== 'inline') throw new Error(`${t.name} must be a constant for its gradient rule`);
  const b = init.data.bytes;
  if (t.dtype === 'int64') {
    const v = new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    return Array.from(v, Number);
  }
  if (t.dtype === 'int32') return Array.from(new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  throw new Error(`${t.name}: expected integer constant`);
}

const attrInt = (n: Node, name: string, dflt: number): number => {
  const a = n.attrs[name];
  return a && a.type === 'int' ? a.value : dflt;
};
const attrFloat = (n: Node, name: string, dflt: number): number => {
  const a = n.attrs[name];
  return a && a.type === 'float' ? a.value : dflt;
};
const X = (c: VjpContext, i: number): Tensor => c.x[i]!;

/** Gradient of a matmul operand when the other side was broadcast: 2-D weights fold the batch into rows. */
function matmulGradB(a: Tensor, dy: Tensor, b: Tensor): Tensor {
  if (b.rank === 2 && a.rank > 2) {
    const k = a.shape[a.rank - 1]!, n = dy.shape[dy.rank - 1]!;
    const rows = a.shape.slice(0, -1).every((d) => typeof d === 'number')
      ? a.shape.slice(0, -1).reduce((p: number, q) => p * (q as number), 1)
      : 'rows';
    return F.gemm(F.reshape(a, [rows, k]), F.reshape(dy, [rows, n]), null, { transA: true }); // [K, N]
  }
  return F.matmul(F.transposeLast2(a), dy);
}

/**
 * Broadcasts `t` to the (possibly symbolic) shape of `like`: a constant target when every symbolic
 * dim of `like` is already t's (kept by broadcasting a 1), else the shape read at run time.
 */
function expandLike(t: Tensor, like: Tensor): Tensor {
  if (isStatic(like.shape)) return F.expand(t, like.shape);
  const lead = like.rank - t.rank;
  const target = like.shape.map((d, i) => (typeof d === 'number' ? d : i >= lead && t.shape[i - lead] === d ? 1 : null));
  if (lead >= 0 && target.every((d) => d !== null)) {
    const g = t.graph;
    return g.addNode('Expand', [t, F.int64s(g, target as number[])], [{ dtype: t.dtype, shape: like.shape }])[0]!;
  }
  return t.graph.addNode('Expand', [t, F.shapeOf(like)], [{ dtype: t.dtype, shape: like.shape }])[0]!;
}

/** Expands a reduced gradient (reduced over `axes`, keepdims or not) back over x's shape. */
function expandReduced(dy: Tensor, x: Tensor, axes: number[], keepdims: boolean): Tensor {
  const ax = axes.length ? axes.map((a) => (a < 0 ? a + x.rank : a)) : x.shape.map((_, i) => i);
  const kept = keepdims ? dy : F.unsqueeze(dy, [...ax].sort((p, q) => p - q));
  return expandLike(kept, x);
}

/** How many elements of x each output of a reduction over `axes` averages: a constant, or read at run time. */
function reducedCount(x: Tensor, y: Tensor, axes: number[]): Tensor | number {
  const dims: Shape = (axes.length ? axes : x.shape.map((_, i) => i)).map((a) => x.shape[a < 0 ? a + x.rank : a]!);
  if (isStatic(dims)) return dims.reduce((p, q) => p * q, 1);
  const size = (t: Tensor) => F.cast(t.graph.addNode('Size', [t], [{ dtype: 'int64', shape: [] }])[0]!, x.dtype);
  return F.div(size(x), size(y));
}

/**
 * zeros(data) with dy's rows added at idx along axis 0, through ScatterElements: ORT's CPU
 * ScatterND(reduction=add) loses updates when it runs on several threads with repeated indices
 * (measured: different results run to run), ScatterElements(add) is exact. Static shapes only
 * (null otherwise). data [V, ...rest], idx [...q], dy [...q, ...rest]
 */
function rowScatterAdd(data: Tensor, idx: Tensor, dy: Tensor): Tensor | null {
  if (!isStatic(data.shape) || !isStatic(idx.shape)) return null;
  const [V, ...rest] = data.shape as number[];
  const n = (idx.shape as number[]).reduce((p, q) => p * q, 1), m = rest.reduce((p, q) => p * q, 1);
  const rows = F.expand(F.reshape(F.cast(idx, 'int64'), [n, 1]), [n, m]); // [n, m] row index per element
  const summed = F.scatterElements(F.full(data.graph, data.dtype, [V!, m], 0), rows, F.reshape(dy, [n, m]), 0, 'add'); // [V, m]
  return F.reshape(summed, data.shape);
}

const ones = (like: Tensor) => F.scalar(like.graph, like.dtype, 1);

// --- the table ---------------------------------------------------------------------------------

export const rules: Record<string, VjpRule | null> = {
  Identity: ({ dy }) => [dy[0]],
  Add: ({ dy }) => [dy[0], dy[0]],
  Sub: ({ dy }) => [dy[0], F.neg(dy[0]!)],
  Mul: (c) => [F.mul(c.dy[0]!, X(c, 1)), F.mul(c.dy[0]!, X(c, 0))],
  Div: (c) => [F.div(c.dy[0]!, X(c, 1)), c.needs[1] ? F.neg(F.div(F.mul(c.dy[0]!, c.y[0]!), X(c, 1))) : undefined],
  Pow: (c) => [
    F.mul(c.dy[0]!, F.mul(X(c, 1), F.pow(X(c, 0), F.sub(X(c, 1), 1)))),
    c.needs[1] ? F.mul(c.dy[0]!, F.mul(c.y[0]!, F.log(X(c, 0)))) : undefined,
  ],
  Neg: ({ dy }) => [F.neg(dy[0]!)],
  Sqrt: (c) => [F.div(F.mul(c.dy[0]!, 0.5), c.y[0]!)],
  Reciprocal: (c) => [F.neg(F.mul(c.dy[0]!, F.mul(c.y[0]!, c.y[0]!)))],
  Exp: (c) => [F.mul(c.dy[0]!, c.y[0]!)],
  Log: (c) => [F.div(c.dy[0]!, X(c, 0))],
  Sigmoid: (c) => [F.mul(c.dy[0]!, F.mul(c.y[0]!, F.sub(ones(c.y[0]!), c.y[0]!)))],
  Tanh: (c) => [F.mul(c.dy[0]!, F.sub(ones(c.y[0]!), F.mul(c.y[0]!, c.y[0]!)))],
  Relu: (c) => [F.where(F.greater(X(c, 0), 0), c.dy[0]!, 0)],
  Abs: (c) => [F.mul(c.dy[0]!, F.sign(X(c, 0)))],
  Sin: (c) => [F.mul(c.dy[0]!, F.cos(X(c, 0)))],
  Cos: (c) => [F.neg(F.mul(c.dy[0]!, F.sin(X(c, 0))))],
  Max: (c) => {
    const first = F.greaterOrEqual(X(c, 0), X(c, 1));
    return [F.where(first, c.dy[0]!, 0), F.where(first, 0, c.dy[0]!)];
  },
  Min: (c) => {
    const first = F.greaterOrEqual(X(c, 1), X(c, 0));
    return [F.where(first, c.dy[0]!, 0), F.where(first, 0, c.dy[0]!)];
  },
  Where: (c) => [undefined, F.where(X(c, 0), c.dy[0]!, 0), F.where(X(c, 0), 0, c.dy[0]!)],
  Cast: (c) => [F.cast(c.dy[0]!, X(c, 0).dtype as DType)],

  MatMul: (c) => {
    const [a, b] = [X(c, 0), X(c, 1)];
    return [c.needs[0] ? F.matmul(c.dy[0]!, F.transposeLast2(b)) : undefined, c.needs[1] ? matmulGradB(a, c.dy[0]!, b) : undefined];
  },
  Gemm: (c) => {
    const n = c.node, dy = c.dy[0]!, [a, b] = [X(c, 0), X(c, 1)];
    const alpha = attrFloat(n, 'alpha', 1), beta = attrFloat(n, 'beta', 1);
    const tA = attrInt(n, 'transA', 0) === 1, tB = attrInt(n, 'transB', 0) === 1;
    const da = !c.needs[0] ? undefined
      : tA ? F.gemm(b, dy, null, { transA: tB, transB: true, alpha }) // A^T: dA = op(B) dY^T
      : F.gemm(dy, b, null, { transB: !tB, alpha }); // dA = dY op(B)^T
    const db = !c.needs[1] ? undefined
      : tB ? F.gemm(dy, a, null, { transA: true, transB: tA, alpha }) // B^T: dB = dY^T op(A)
      : F.gemm(a, dy, null, { transA: !tA, alpha }); // dB = op(A)^T dY
    return [da, db, c.x[2] ? F.mul(dy, Math.fround(beta)) : undefined]; // ORT applies beta as a float32 attribute
  },

  ReduceSum: (c) => [expandReduced(c.dy[0]!, X(c, 0), constInts(c.g, c.x[1] ?? null), attrInt(c.node, 'keepdims', 1) === 1)],
  ReduceMean: (c) => {
    const x = X(c, 0), axes = constInts(c.g, c.x[1] ?? null), count = reducedCount(x, c.y[0]!, axes);
    const dy = typeof count === 'number' ? F.mul(c.dy[0]!, 1 / count) : F.div(c.dy[0]!, count);
    return [expandReduced(dy, x, axes, attrInt(c.node, 'keepdims', 1) === 1)];
  },
  ReduceMax: (c) => {
    const x = X(c, 0), axes = constInts(c.g, c.x[1] ?? null), keep = attrInt(c.node, 'keepdims', 1) === 1;
    const ax = (axes.length ? axes : x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + x.rank : a)).sort((p, q) => p - q);
    const yk = keep ? c.y[0]! : F.unsqueeze(c.y[0]!, ax);
    const dyk = keep ? c.dy[0]! : F.unsqueeze(c.dy[0]!, ax);
    // Tied maxima share the gradient evenly (as torch.amax does); giving each the whole of it
    // would multiply the gradient by the number of ties.
    const hit = F.cast(F.equal(x, yk), x.dtype);
    return [F.mul(hit, F.div(dyk, F.reduceSum(hit, ax, true)))];
  },
  Softmax: (c) => {
    const y = c.y[0]!, axis = attrInt(c.node, 'axis', -1);
    return [F.mul(y, F.sub(c.dy[0]!, F.reduceSum(F.mul(c.dy[0]!, y), [axis], true)))];
  },
  LogSoftmax: (c) => {
    const axis = attrInt(c.node, 'axis', -1);
    return [F.sub(c.dy[0]!, F.mul(F.exp(c.y[0]!), F.reduceSum(c.dy[0]!, [axis], true)))];
  },

  Reshape: (c) => [F.reshapeLike(c.dy[0]!, X(c, 0))],
  Transpose: (c) => {
    const a = c.node.attrs.perm;
    const perm = a && a.type === 'ints' ? a.value : X(c, 0).shape.map((_, i) => X(c, 0).rank - 1 - i);
    const inv: number[] = [];
    perm.forEach((p, i) => (inv[p] = i));
    return [F.transpose(c.dy[0]!, inv)];
  },
  Unsqueeze: (c) => [F.reshapeLike(c.dy[0]!, X(c, 0))],
  Squeeze: (c) => [F.reshapeLike(c.dy[0]!, X(c, 0))],
  Expand: ({ dy }) => [dy[0]], // grad.ts sums over the expanded axes
  Concat: (c) => {
    const axis = attrInt(c.node, 'axis', 0);
    const sizes = c.x.map((t) => t!.shape[axis < 0 ? axis + t!.rank : axis]!);
    if (sizes.some((s) => typeof s !== 'number')) throw new Error(`Concat gradient needs static sizes on axis ${axis}`);
    return F.split(c.dy[0]!, sizes as number[], axis);
  },
  Split: (c) => [F.concat(c.dy, attrInt(c.node, 'axis', 0))],
  Slice: (c) => {
    const x = X(c, 0), starts = constInts(c.g, c.x[1]!), ends = constInts(c.g, c.x[2]!);
    const axes = c.x[3] ? constInts(c.g, c.x[3]) : starts.map((_, i) => i);
    const steps = c.x[4] ? constInts(c.g, c.x[4]) : axes.map(() => 1);
    // dx is dy zero-padded back to x's shape; a step -1 axis is first flipped back into x's order.
    const before = x.shape.map(() => 0), after = x.shape.map(() => 0), flip: number[] = [];
    axes.forEach((a0, i) => {
      const a = a0 < 0 ? a0 + x.rank : a0, d = x.shape[a] as number, len = c.y[0]!.shape[a] as number;
      const s0 = starts[i]! < 0 ? starts[i]! + d : starts[i]!;
      if (steps[i] === 1) {
        const s = Math.min(Math.max(s0, 0), d);
        before[a] = s;
        after[a] = d - s - len;
      } else if (steps[i] === -1) {
        const s = Math.min(Math.max(s0, 0), d - 1); // y[j] = x[s - j], j < len
        before[a] = s - len + 1;
        after[a] = d - 1 - s;
        flip.push(a);
      } else throw new Error(`Slice gradient supports steps 1 and -1, not ${steps[i]}`);
    });
    const dy = flip.length ? F.slice(c.dy[0]!, flip.map(() => -1), flip.map(() => -Number.MAX_SAFE_INTEGER), flip, flip.map(() => -1)) : c.dy[0]!;
    return [F.pad(dy, before, after)];
  },
  Gather: (c) => {
    // Scatter-add dy's rows into zeros (repeated indices add up); another axis moves to the front first.
    const data = X(c, 0), idx = X(c, 1), dy = c.dy[0]!;
    const a = attrInt(c.node, 'axis', 0), r = data.rank, q = idx.rank;
    const ids = F.unsqueeze(F.cast(idx, 'int64'), [-1]); // [...idx, 1]
    if (a === 0) return [rowScatterAdd(data, idx, dy) ?? F.scatterND(F.zerosLike(data), ids, dy, 'add'), undefined];
    const range = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, i) => lo + i);
    const front = [a, ...range(0, a), ...range(a + 1, r)]; // data axes with `a` first
    const dyFront = F.transpose(dy, [...range(a, a + q), ...range(0, a), ...range(a + q, r - 1 + q)]); // [...idx, data without a]
    const frontShape = front.map((p) => data.shape[p]!);
    const zeros = isStatic(frontShape)
      ? F.full(c.g, data.dtype, frontShape, 0)
      : c.g.addNode('ConstantOfShape', [F.gather(F.shapeOf(data), F.int64s(c.g, front, 'perm'))], [{ dtype: data.dtype, shape: frontShape }], {
          value: attr.t({ dtype: data.dtype, shape: [1], bytes: F.bytesOf(data.dtype, [0]) }),
        })[0]!; // sized at run time
    const back = front.map((_, i) => front.indexOf(i));
    return [F.transpose(F.scatterND(zeros, ids, dyFront, 'add'), back), undefined];
  },
  GatherElements: (c) => [F.scatterElements(F.zerosLike(X(c, 0)), X(c, 1), c.dy[0]!, attrInt(c.node, 'axis', 0), 'add'), undefined],
  Trilu: (c) => [F.trilu(c.dy[0]!, attrInt(c.node, 'upper', 1) === 1, constInts(c.g, c.x[1] ?? null)[0] ?? 0), undefined],

  SoftmaxCrossEntropyLoss: (c) => {
    // d logits = (softmax - onehot(label)) * valid / count * dLoss  (reduction "mean")
    const logits = X(c, 0), labels = X(c, 1);
    const reduction = c.node.attrs.reduction;
    if (c.x[2] || (reduction && !(reduction.type === 'string' && reduction.value === 'mean'))) {
      throw new Error(`SoftmaxCrossEntropyLoss gradient (node ${c.node.name}): only reduction "mean" without class weights is supported`);
    }
    const [nRows, nClasses] = logits.shape as number[];
    const ignore = attrInt(c.node, 'ignore_index', -100);
    const labels64 = F.cast(labels, 'int64');
    const valid = F.cast(F.not(F.equal(labels64, F.scalar(c.g, 'int64', ignore))), logits.dtype); // [N]
    const count = F.max2(F.reduceSum(valid, [0], false), 1);
    const classes = F.constant(c.g, 'int64', [1, nClasses!], Array.from({ length: nClasses! }, (_, i) => i), 'classes');
    const onehot = F.cast(F.equal(F.unsqueeze(labels64, [1]), classes), logits.dtype); // [N, C]
    const weight = F.unsqueeze(F.mul(F.div(valid, count), c.dy[0]!), [1]); // [N, 1]
    void nRows;
    return [F.mul(F.sub(F.softmax(logits, 1), onehot), weight), undefined, undefined];
  },

  // Y = A @ dequant(W)^T with W [N, K] frozen in 4 bits: dA = dY @ dequant(W). The weight is
  // dequantized afresh here rather than kept from the forward, so its float copy lives only for
  // this one product; the dequantization waits for dY (graph/ordering.ts) so that ONNX Runtime
  // cannot run it (constants only) ahead of time and hold its output.
  MatMulNBits: (c) => {
    if (!c.needs[0]) return [undefined];
    const K = attrInt(c.node, 'K', 0), N = attrInt(c.node, 'N', 0), block = attrInt(c.node, 'block_size', 32);
    const dy = c.dy[0]!;
    const w = dequantizeNBits(c.g, X(c, 1), X(c, 2), c.x[3] ?? null, K, N, block, dy); // [N, K]
    return [F.matmul(dy, w)];
  },

  // Frozen-weight and integer ops: no gradient flows through them.
  DequantizeLinear: null,
};
