// Scheduling helpers. ONNX Runtime runs a node as soon as its inputs exist, and runs nodes that
// depend on constants only (a dequantized frozen weight, a recomputed activation fed by graph
// inputs) as early as it likes, keeping their outputs alive until their consumer runs. Finch orders
// such a node by giving it a real data dependence on the tensor it must wait for: a barrier.
//
// The barrier must not change its tensor whatever the awaited tensor holds. Arithmetic ties such
// as "t + (x - x)" or "t + 0 * x" are NaN for an infinite x and would turn all of t into NaN. Here
// the barrier is Where(e < e, t, t) for one element e of the awaited tensor: e < e is false for
// every e (infinities, and NaN, whose comparisons are all false) and both branches are t, so the
// output is t bit for bit; no arithmetic touches e's value.

import { type DType, numel } from './dtype.js';
import type { Tensor } from './graph.js';
import * as F from './ops.js';

/** One element of x (its first, flattened): [1]; x itself when it is already [1]. */
export function firstElement(x: Tensor): Tensor {
  if (x.rank === 1 && x.shape[0] === 1) return x;
  const flat = F.reshape(x, [x.shape.every((d) => typeof d === 'number') ? numel(x.shape) : 'numel']);
  return F.slice(flat, [0], [1], [0]); // [1]
}

/** Dtypes a barrier can order (ORT's Where kernels). */
export function canBarrier(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'float64' || dtype === 'int64' || dtype === 'int32';
}

/**
 * t itself, value for value, but computed only once `after` exists; t unchanged (no barrier) for
 * dtypes canBarrier refuses.
 */
export function barrier(t: Tensor, after: Tensor): Tensor {
  if (!canBarrier(t.dtype) || t.rank === 0) return t; // rank 0: a [1] condition would make t [1]
  const first = firstElement(after);
  const e = first.dtype === 'float32' ? first : F.cast(first, 'float32'); // Less has float32 kernels on every provider
  return F.where(F.less(e, e), t, t); // e < e: always false
}
