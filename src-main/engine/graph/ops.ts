// Op constructors. Each one checks its inputs and infers the output dtype and shape, so a wrong
// graph fails here, naming the op and the shapes, instead of deep inside ONNX Runtime.
// Static parameters (axes, perms, shapes) are JS arrays; they become int64 constants as opset 21 wants.

import { type DType, type Dim, type Shape, isFloat, numel, shapeToString } from './dtype.js';
import { type AttrValue, type ConstantData, type Graph, Tensor, attr } from './graph.js';
import { f32ToF16Bits } from '../../util/float16.js';

export class GraphBuildError extends Error {
  override name = 'GraphBuildError';
}

function fail(op: string, msg: string, ...ts: Tensor[]): never {
  const args = ts.map((t) => `${t.name} ${t.dtype}${shapeToString(t.shape)}`).join(', ');
  throw new GraphBuildError(`${op}: ${msg}${args ? ` (inputs: ${args})` : ''}`);
}

const graphOf = (...xs: (Tensor | number | null | undefined)[]): Graph => {
  for (const x of xs) if (x instanceof Tensor) return x.graph;
  throw new GraphBuildError('op called without any tensor input');
};

function sameDtype(op: string, ...ts: Tensor[]): DType {
  const d = ts[0]!.dtype;
  for (const t of ts) if (t.dtype !== d) fail(op, `dtype mismatch ${ts.map((x) => x.dtype).join(' vs ')}`, ...ts);
  return d;
}

const normAxis = (op: string, axis: number, rank: number): number => {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphBuildError(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
};

/** Concatenates a symbolic size: "T" + "past" -> "past+T" style strings; numbers add. */
const addDims = (a: Dim, b: Dim): Dim => (typeof a === 'number' && typeof b === 'number' ? a + b : `${a}+${b}`);

// ---------------------------------------------------------------------------------------------
// Constants

export function bytesOf(dtype: DType, values: ArrayLike<number> | ArrayLike<bigint>): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'float32': return new Uint8Array(Float32Array.from(values as ArrayLike<number>).buffer);
    case 'float64': return new Uint8Array(Float64Array.from(values as ArrayLike<number>).buffer);
    case 'int32': return new Uint8Array(Int32Array.from(values as ArrayLike<number>).buffer);
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt((values as ArrayLike<number | bigint>)[i]!);
      return new Uint8Array(a.buffer);
    }
    case 'uint8': case 'bool': return Uint8Array.from(values as ArrayLike<number>);
    case 'int8': return new Uint8Array(Int8Array.from(values as ArrayLike<number>).buffer);
    case 'float16': return new Uint8Array(Uint16Array.from(Array.from(values as ArrayLike<number>, f32ToF16Bits)).buffer);
    default: throw new GraphBuildError(`constant: dtype ${dtype} needs raw bytes`);
  }
}

export function constant(g: Graph, dtype: DType, shape: readonly number[], values: ArrayLike<number> | ArrayLike<bigint>, base = 'const'): Tensor {
  if (numel(shape) !== values.length) throw new GraphBuildError(`constant: ${values.length} values for shape ${shapeToString(shape)}`);
  return g.constant({ dtype, shape, bytes: bytesOf(dtype, values) }, base);
}

export const scalar = (g: Graph, dtype: DType, v: number): Tensor => constant(g, dtype, [], [v], 'scalar');
export const int64s = (g: Graph, values: readonly number[], base = 'shape'): Tensor => constant(g, 'int64', [values.length], values, base);

/** A number operand becomes a scalar constant of the other operand's dtype. */
const lift = (x: Tensor | number, like: Tensor): Tensor => (x instanceof Tensor ? x : scalar(like.graph, like.dtype, x));

// ---------------------------------------------------------------------------------------------
// Broadcasting

export function broadcastShapes(op: string, a: Shape, b: Shape): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw new GraphBuildError(`${op}: shapes ${shapeToString(a)} and ${shapeToString(b)} do not broadcast`);
  }
  return out;
}

function elementwise(op: string, a: Tensor | number, b: Tensor | number, outDtype?: DType): Tensor {
  const g = graphOf(a, b);
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = lift(b, ta);
  const dt = sameDtype(op, ta, tb);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  return g.addNode(op, [ta, tb], [{ dtype: outDtype ?? dt, shape }])[0]!;
}

export const add = (a: Tensor | number, b: Tensor | number) => elementwise('Add', a, b);
export const sub = (a: Tensor | number, b: Tensor | number) => elementwise('Sub', a, b);
export const mul = (a: Tensor | number, b: Tensor | number) => elementwise('Mul', a, b);
export const div = (a: Tensor | number, b: Tensor | number) => elementwise('Div', a, b);
export const pow = (a: Tensor | number, b: Tensor | number) => elementwise('Pow', a, b);
export const max2 = (a: Tensor | number, b: Tensor | number) => elementwise('Max', a, b);
export const min2 = (a: Tensor | number, b: Tensor | number) => elementwise('Min', a, b);
export const equal = (a: Tensor | number, b: Tensor | number) => elementwise('Equal', a, b, 'bool');
export const less = (a: Tensor | number, b: Tensor | number) => elementwise('Less', a, b, 'bool');
export const greater = (a: Tensor | number, b: Tensor | number) => elementwise('Greater', a, b, 'bool');
export const greaterOrEqual = (a: Tensor | number, b: Tensor | number) => elementwise('GreaterOrEqual', a, b, 'bool');
export const and = (a: Tensor, b: Tensor) => elementwise('And', a, b, 'bool');

function unary(op: string, x: Tensor, attrs: Record<string, AttrValue> = {}, floatOnly = true): Tensor {
  if (floatOnly && !isFloat(x.dtype)) fail(op, 'needs a float tensor', x);
  return x.graph.addNode(op, [x], [{ dtype: x.dtype, shape: x.shape }], attrs)[0]!;
}

export const neg = (x: Tensor) => unary('Neg', x, {}, false);
export const sqrt = (x: Tensor) => unary('Sqrt', x);
export const reciprocal = (x: Tensor) => unary('Reciprocal', x);
export const exp = (x: Tensor) => unary('Exp', x);
export const log = (x: Tensor) => unary('Log', x);
export const sigmoid = (x: Tensor) => unary('Sigmoid', x);
export const tanh = (x: Tensor) => unary('Tanh', x);
export const abs = (x: Tensor) => unary('Abs', x, {}, false);
export const relu = (x: Tensor) => unary('Relu', x);
export const sin = (x: Tensor) => unary('Sin', x);
export const cos = (x: Tensor) => unary('Cos', x);
export const identity = (x: Tensor) => unary('Identity', x, {}, false);
export const sign = (x: Tensor) => unary('Sign', x, {}, false);
export const not = (x: Tensor) => {
  if (x.dtype !== 'bool') fail('Not', 'needs a bool tensor', x);
  return unary('Not', x, {}, false);
};

export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (cond.dtype !== 'bool') fail('Where', 'condition must be bool', cond);
  const ta = a instanceof Tensor ? a : lift(a, b as Tensor);
  const tb = lift(b, ta);
  const dt = sameDtype('Where', ta, tb);
  const shape = broadcastShapes('Where', broadcastShapes('Where', cond.shape, ta.shape), tb.shape);
  return cond.graph.addNode('Where', [cond, ta, tb], [{ dtype: dt, shape }])[0]!;
}

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  const codes: Partial<Record<DType, number>> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16 };
  if (codes[to] === undefined) fail('Cast', `cannot cast to ${to}`, x);
  return x.graph.addNode('Cast', [x], [{ dtype: to, shape: x.shape }], { to: attr.i(codes[to]!) })[0]!;
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

export function matmul(a: Tensor, b: Tensor): Tensor {
  const dt = sameDtype('MatMul', a, b);
  if (a.rank < 2 || b.rank < 2) fail('MatMul', 'Finch uses MatMul on rank >= 2 only', a, b);
  const k1 = a.shape[a.rank - 1]!, k2 = b.shape[b.rank - 2]!;
  if (k1 !== k2) fail('MatMul', `inner dimensions differ (${k1} vs ${k2})`, a, b);
  const [ba, bb] = [a.shape.slice(0, -2), b.shape.slice(0, -2)];
  let batch: Dim[] = [];
  try {
    batch = broadcastShapes('MatMul', ba, bb);
  } catch {
    fail('MatMul', `batch dimensions ${shapeToString(ba)} and ${shapeToString(bb)} do not broadcast`, a, b);
  }
  return a.graph.addNode('MatMul', [a, b], [{ dtype: dt, shape: [...batch, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!] }])[0]!;
}

export interface GemmOptions { transA?: boolean; transB?: boolean; alpha?: number; beta?: number }

/** Y = alpha * op(A) @ op(B) + beta * C, 2-D only. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null = null, o: GemmOptions = {}): Tensor {
  const dt = sameDtype('Gemm', a, b, ...(c ? [c] : []));
  if (a.rank !== 2 || b.rank !== 2) fail('Gemm', 'A and B must be 2-D', a, b);
  const [m, k1] = o.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [k2, n] = o.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (k1 !== k2) fail('Gemm', `inner dimensions differ (${k1} vs ${k2})`, a, b);
  if (c) broadcastShapes('Gemm', [m, n], c.shape);
  const attrs: Record<string, AttrValue> = {};
  if (o.transA) attrs.transA = attr.i(1);
  if (o.transB) attrs.transB = attr.i(1);
  if (o.alpha !== undefined && o.alpha !== 1) attrs.alpha = attr.f(o.alpha);
  if (o.beta !== undefined && o.beta !== 1) attrs.beta = attr.f(o.beta);
  return a.graph.addNode('Gemm', c ? [a, b, c] : [a, b], [{ dtype: dt, shape: [m, n] }], attrs)[0]!;
}

/** Swaps the last two axes. */
export function transposeLast2(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return transpose(x, perm);
}

// ---------------------------------------------------------------------------------------------
// Reductions and normalisers

function reduce(op: string, x: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  const ax = [...new Set(axes.map((a) => normAxis(op, a, x.rank)))].sort((p, q) => p - q);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  return x.graph.addNode(op, [x, int64s(x.graph, ax, 'axes')], [{ dtype: x.dtype, shape }], { keepdims: attr.i(keepdims ? 1 : 0) })[0]!;
}

export const reduceSum = (x: Tensor, axes: readonly number[], keepdims = true) => reduce('ReduceSum', x, axes, keepdims);
export const reduceMean = (x: Tensor, axes: readonly number[], keepdims = true) => reduce('ReduceMean', x, axes, keepdims);
export const reduceMax = (x: Tensor, axes: readonly number[], keepdims = true) => reduce('ReduceMax', x, axes, keepdims);

export function softmax(x: Tensor, axis = -1): Tensor {
  return unary('Softmax', x, { axis: attr.i(normAxis('Softmax', axis, x.rank)) });
}
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return unary('LogSoftmax', x, { axis: attr.i(normAxis('LogSoftmax', axis, x.rank)) });
}

// ---------------------------------------------------------------------------------------------
// Shape manipulation

/**
 * Reshape to `shape`. A symbolic target dim equal to the input's dim at the same axis is encoded
 * as 0 (copy); at most one other unknown becomes -1. Numbers are checked against the element count.
 */
export function reshape(x: Tensor, shape: readonly Dim[]): Tensor {
  const spec: number[] = [];
  let inferred = 0;
  shape.forEach((d, i) => {
    if (typeof d === 'number') spec.push(d);
    else if (i < x.rank && x.shape[i] === d) spec.push(0);
    else {
      inferred++;
      spec.push(-1);
    }
  });
  if (inferred > 1) fail('Reshape', `target ${shapeToString(shape)} has more than one unknown dimension`, x);
  if (shape.every((d) => typeof d === 'number') && x.shape.every((d) => typeof d === 'number') && numel(shape) !== numel(x.shape)) {
    fail('Reshape', `cannot reshape ${numel(x.shape)} elements to ${shapeToString(shape)}`, x);
  }
  if (spec.includes(0) && spec.includes(-1)) {
    /* allowed by ONNX: 0 copies, -1 infers */
  }
  return x.graph.addNode('Reshape', [x, int64s(x.graph, spec)], [{ dtype: x.dtype, shape }])[0]!;
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    fail('Transpose', `perm [${perm}] is not a permutation of rank ${x.rank}`, x);
  }
  return x.graph.addNode('Transpose', [x], [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }], { perm: attr.ints(perm) })[0]!;
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const outRank = x.rank + axes.length;
  const ax = axes.map((a) => normAxis('Unsqueeze', a, outRank)).sort((p, q) => p - q);
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < outRank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]!);
  return x.graph.addNode('Unsqueeze', [x, int64s(x.graph, ax, 'axes')], [{ dtype: x.dtype, shape }])[0]!;
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const ax = axes.map((a) => normAxis('Squeeze', a, x.rank));
  for (const a of ax) if (x.shape[a] !== 1) fail('Squeeze', `axis ${a} has size ${x.shape[a]}, not 1`, x);
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.addNode('Squeeze', [x, int64s(x.graph, ax, 'axes')], [{ dtype: x.dtype, shape }])[0]!;
}

/** Expand to `shape` by broadcasting (numpy rules). */
export function expand(x: Tensor, shape: readonly Dim[]): Tensor {
  const out = broadcastShapes('Expand', x.shape, shape);
  if (out.some((d) => typeof d !== 'number')) fail('Expand', `needs a static target, got ${shapeToString(shape)}`, x);
  return x.graph.addNode('Expand', [x, int64s(x.graph, out as number[])], [{ dtype: x.dtype, shape: out }])[0]!;
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new GraphBuildError('Concat: no inputs');
  const dt = sameDtype('Concat', ...xs);
  const r = xs[0]!.rank;
  const a = normAxis('Concat', axis, r);
  let total: Dim = 0;
  for (const t of xs) {
    if (t.rank !== r) fail('Concat', 'ranks differ', ...xs);
    t.shape.forEach((d, i) => {
      if (i !== a && d !== xs[0]!.shape[i]) fail('Concat', `dimension ${i} differs`, ...xs);
    });
    total = total === 0 ? t.shape[a]! : addDims(total, t.shape[a]!);
  }
  const shape = [...xs[0]!.shape];
  shape[a] = total;
  return xs[0]!.graph.addNode('Concat', xs, [{ dtype: dt, shape }], { axis: attr.i(a) })[0]!;
}

export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const a = normAxis('Split', axis, x.rank);
  const d = x.shape[a]!;
  if (typeof d === 'number' && sizes.reduce((p, q) => p + q, 0) !== d) {
    fail('Split', `sizes [${sizes}] do not add up to ${d} on axis ${a}`, x);
  }
  const outs = sizes.map((s) => {
    const shape = [...x.shape];
    shape[a] = s;
    return { dtype: x.dtype, shape };
  });
  return x.graph.addNode('Split', [x, int64s(x.graph, sizes, 'split')], outs, { axis: attr.i(a) });
}

/** Static slice: `starts`/`ends` per listed axis (steps 1 unless given). Ends are clamped like numpy. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Tensor {
  const shape = [...x.shape];
  axes.forEach((ax0, i) => {
    const ax = normAxis('Slice', ax0, x.rank);
    const d = x.shape[ax]!;
    const step = steps?.[i] ?? 1;
    if (step !== 1 && step !== -1) fail('Slice', 'only steps of 1 or -1 are supported', x);
    if (typeof d !== 'number') {
      // Symbolic axis: a prefix [0, n) or a suffix [-n, end) has a known size.
      if (step === 1 && starts[i] === 0) shape[ax] = ends[i]! >= Number.MAX_SAFE_INTEGER ? d : ends[i]!;
      else if (step === 1 && starts[i]! < 0 && ends[i]! >= Number.MAX_SAFE_INTEGER) shape[ax] = -starts[i]!;
      else fail('Slice', `axis ${ax} is symbolic (${d}); only a prefix [0, n) or suffix [-n, end) is supported`, x);
      return;
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    if (step === 1) {
      const s = clamp(starts[i]! < 0 ? starts[i]! + d : starts[i]!, 0, d);
      const e = clamp(ends[i]! < 0 ? ends[i]! + d : ends[i]!, 0, d);
      shape[ax] = Math.max(0, e - s);
    } else {
      const s = clamp(starts[i]! < 0 ? starts[i]! + d : starts[i]!, 0, d - 1); // ONNX: [0, d-1] when stepping back
      const e = clamp(ends[i]! < 0 ? ends[i]! + d : ends[i]!, -1, d - 1);
      shape[ax] = Math.max(0, s - e);
    }
  });
  const g = x.graph;
  const ins = [x, int64s(g, starts, 'starts'), int64s(g, ends, 'ends'), int64s(g, axes, 'axes')];
  if (steps) ins.push(int64s(g, steps, 'steps'));
  return g.addNode('Slice', ins, [{ dtype: x.dtype, shape }])[0]!;
}

/** Zero padding: `before[i]`/`after[i]` elements on axis i. */
export function pad(x: Tensor, before: readonly number[], after: readonly number[]): Tensor {
  if (before.length !== x.rank || after.length !== x.rank) fail('Pad', `needs ${x.rank} pads per side`, x);
  const shape = x.shape.map((d, i) => {
    if (before[i] === 0 && after[i] === 0) return d;
    if (typeof d !== 'number') fail('Pad', `cannot pad symbolic axis ${i}`, x);
    return d + before[i]! + after[i]!;
  });
  return x.graph.addNode('Pad', [x, int64s(x.graph, [...before, ...after], 'pads')], [{ dtype: x.dtype, shape }])[0]!;
}

/** The runtime shape of x as an int64 vector (for reshaping gradients of symbolic tensors). */
export function shapeOf(x: Tensor): Tensor {
  return x.graph.addNode('Shape', [x], [{ dtype: 'int64', shape: [x.rank] }])[0]!;
}

/** Reshape `x` to the (possibly symbolic) shape of `like`. */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  if (like.shape.every((d) => typeof d === 'number')) return reshape(x, like.shape);
  return x.graph.addNode('Reshape', [x, shapeOf(like)], [{ dtype: x.dtype, shape: like.shape }])[0]!;
}

export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') fail('Gather', 'indices must be int32 or int64', data, indices);
  const a = normAxis('Gather', axis, data.rank);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return data.graph.addNode('Gather', [data, indices], [{ dtype: data.dtype, shape }], { axis: attr.i(a) })[0]!;
}

export function gatherElements(data: Tensor, indices: Tensor, axis: number): Tensor {
  if (indices.rank !== data.rank) fail('GatherElements', 'indices must have the rank of data', data, indices);
  const a = normAxis('GatherElements', axis, data.rank);
  return data.graph.addNode('GatherElements', [data, indices], [{ dtype: data.dtype, shape: indices.shape }], { axis: attr.i(a) })[0]!;
}

/** ScatterND; reduction 'add' sums duplicate indices (the gradient of Gather). */
export function scatterND(data: Tensor, indices: Tensor, updates: Tensor, reduction: 'none' | 'add' = 'none'): Tensor {
  if (indices.dtype !== 'int64') fail('ScatterND', 'indices must be int64', indices);
  const attrs: Record<string, AttrValue> = reduction === 'none' ? {} : { reduction: attr.s(reduction) };
  return data.graph.addNode('ScatterND', [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], attrs)[0]!;
}

export function scatterElements(data: Tensor, indices: Tensor, updates: Tensor, axis: number, reduction: 'none' | 'add' = 'none'): Tensor {
  const attrs: Record<string, AttrValue> = { axis: attr.i(normAxis('ScatterElements', axis, data.rank)) };
  if (reduction !== 'none') attrs.reduction = attr.s(reduction);
  return data.graph.addNode('ScatterElements', [data, indices, updates], [{ dtype: data.dtype, shape: data.shape }], attrs)[0]!;
}

/** Lower (upper=false) or upper triangle with diagonal offset k. */
export function trilu(x: Tensor, upper: boolean, k = 0): Tensor {
  if (x.rank < 2) fail('Trilu', 'needs rank >= 2', x);
  return x.graph.addNode('Trilu', [x, scalar(x.graph, 'int64', k)], [{ dtype: x.dtype, shape: x.shape }], { upper: attr.i(upper ? 1 : 0) })[0]!;
}

/** A tensor of `shape` filled with `value`. */
export function full(g: Graph, dtype: DType, shape: readonly number[], value: number): Tensor {
  const v: ConstantData = { dtype, shape: [1], bytes: bytesOf(dtype, [value]) };
  return g.addNode('ConstantOfShape', [int64s(g, shape)], [{ dtype, shape }], { value: attr.t(v) })[0]!;
}

/** Zeros of x's shape; a symbolic shape is read at run time (ConstantOfShape of Shape(x)). */
export function zerosLike(x: Tensor): Tensor {
  if (x.shape.every((d) => typeof d === 'number')) return full(x.graph, x.dtype, x.shape as number[], 0);
  const v: ConstantData = { dtype: x.dtype, shape: [1], bytes: bytesOf(x.dtype, [0]) };
  return x.graph.addNode('ConstantOfShape', [shapeOf(x)], [{ dtype: x.dtype, shape: x.shape }], { value: attr.t(v) })[0]!;
}

/** Mean softmax cross-entropy over rows whose label is not `ignoreIndex` (ONNX SoftmaxCrossEntropyLoss). */
export function softmaxCrossEntropyLoss(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  if (logits.rank !== 2 || labels.rank !== 1) fail('SoftmaxCrossEntropyLoss', 'expects logits [N, C] and labels [N]', logits, labels);
  if (logits.shape[0] !== labels.shape[0]) fail('SoftmaxCrossEntropyLoss', 'N differs', logits, labels);
  if (labels.dtype !== 'int64' && labels.dtype !== 'int32') fail('SoftmaxCrossEntropyLoss', 'labels must be integers', labels);
  return logits.graph.addNode('SoftmaxCrossEntropyLoss', [logits, labels], [{ dtype: logits.dtype, shape: [] }], {
    reduction: attr.s('mean'),
    ignore_index: attr.i(ignoreIndex),
  })[0]!;
}

// ---------------------------------------------------------------------------------------------
// 4-bit weights

export interface NBitsWeight {
  /** uint8 [N, ceil(K/block), block/2]: two 4-bit values per byte, low nibble first, rows padded to whole blocks. */
  packed: Tensor;
  /** float [N * ceil(K/block)] */
  scales: Tensor;
  /** uint8 [N * ceil(K/block / 2)] packed zero points, or null for the symmetric default (8). */
  zeroPoints: Tensor | null;
  K: number;
  N: number;
  blockSize: number;
}

/** Y[..., N] = A[..., K] @ dequant(W)^T, W stored [N, K] in 4-bit blocks (com.microsoft MatMulNBits). */
export function matMulNBits(a: Tensor, w: NBitsWeight, accuracyLevel = 0): Tensor {
  if (a.shape[a.rank - 1] !== w.K) fail('MatMulNBits', `A's last dim must be K=${w.K}`, a);
  const ins = [a, w.packed, w.scales, w.zeroPoints];
  return a.graph.addNode('MatMulNBits', ins, [{ dtype: a.dtype, shape: [...a.shape.slice(0, -1), w.N] }], {
    K: attr.i(w.K),
    N: attr.i(w.N),
    bits: attr.i(4),
    block_size: attr.i(w.blockSize),
    accuracy_level: attr.i(accuracyLevel),
  }, 'com.microsoft')[0]!;
}

/** Blocked DequantizeLinear (opset 21): y = (x - zero_point) * scale per block along `axis`. */
export function dequantizeLinear(x: Tensor, scale: Tensor, zeroPoint: Tensor | null, axis: number, blockSize: number): Tensor {
  const ins = zeroPoint ? [x, scale, zeroPoint] : [x, scale];
  return x.graph.addNode('DequantizeLinear', ins, [{ dtype: scale.dtype, shape: x.shape }], {
    axis: attr.i(normAxis('DequantizeLinear', axis, x.rank)),
    block_size: attr.i(blockSize),
  })[0]!;
}
