// Bad graphs fail while they are built, with a message that names the op and the shapes involved,
// not later inside ONNX Runtime; autodiff refuses what it cannot differentiate, naming the op.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AutodiffError, grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';

/** Asserts that `fn` throws `type` with a message matching every pattern. */
function throwsWith(fn: () => unknown, type: new (...a: never[]) => Error, ...patterns: RegExp[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected a ${type.name}, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('matmul with mismatched inner dimensions names the op and both shapes', () => {
  const g = new Graph('e');
  const a = g.input('a', 'float32', [2, 3]), b = g.input('b', 'float32', [4, 5]);
  throwsWith(() => F.matmul(a, b), F.GraphBuildError, /^MatMul: inner dimensions differ \(3 vs 4\)/, /a float32\[2, 3\]/, /b float32\[4, 5\]/);
});

test('matmul batch dimensions that do not broadcast', () => {
  const g = new Graph('e');
  const a = g.input('a', 'float32', [2, 3, 4]), b = g.input('b', 'float32', [3, 4, 5]);
  throwsWith(() => F.matmul(a, b), F.GraphBuildError, /^MatMul: batch dimensions \[2\] and \[3\] do not broadcast/, /a float32\[2, 3, 4\]/, /b float32\[3, 4, 5\]/);
});

test('elementwise broadcasting mismatch names the op and both shapes', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [2, 3, 4]), y = g.input('y', 'float32', [3]);
  throwsWith(() => F.add(x, y), F.GraphBuildError, /^Add: shapes \[2, 3, 4\] and \[3\] do not broadcast/);
  throwsWith(() => F.mul(y, x), F.GraphBuildError, /^Mul: shapes \[3\] and \[2, 3, 4\] do not broadcast/);
  throwsWith(() => F.where(F.greater(x, 0), x, g.input('z', 'float32', [2, 1, 3])), F.GraphBuildError, /^Where: shapes/);
});

test('dtype mismatch names the op and the dtypes', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [2]), y = g.input('y', 'float64', [2]);
  throwsWith(() => F.sub(x, y), F.GraphBuildError, /^Sub: dtype mismatch float32 vs float64/);
});

test('reshape with a different element count names the op, the count and the shapes', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [2, 3]);
  throwsWith(() => F.reshape(x, [4, 2]), F.GraphBuildError, /^Reshape: cannot reshape 6 elements to \[4, 2\]/, /x float32\[2, 3\]/);
});

test('other shape errors name the op', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [2, 3, 4]);
  throwsWith(() => F.transpose(x, [0, 0, 1]), F.GraphBuildError, /^Transpose: perm \[0,0,1\] is not a permutation of rank 3/);
  throwsWith(() => F.squeeze(x, [1]), F.GraphBuildError, /^Squeeze: axis 1 has size 3, not 1/);
  throwsWith(() => F.softmax(x, 3), F.GraphBuildError, /^Softmax: axis 3 out of range for rank 3/);
  throwsWith(() => F.concat([x, g.input('y', 'float32', [2, 5, 4])], 2), F.GraphBuildError, /^Concat: dimension 1 differs/);
  throwsWith(() => F.split(x, [1, 2], 2), F.GraphBuildError, /^Split: sizes \[1,2\] do not add up to 4 on axis 2/);
  throwsWith(() => F.gemm(g.input('a', 'float32', [2, 3]), g.input('b', 'float32', [4, 5])), F.GraphBuildError, /^Gemm: inner dimensions differ \(3 vs 4\)/);
});

test('an op without a rule fails in grad(), naming the op and the node', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [3]);
  const [y] = g.addNode('Erf', [x], [{ dtype: 'float32', shape: [3] }]);
  const loss = F.reduceSum(y!, [0], false);
  throwsWith(() => grad(loss, [x]), AutodiffError, /no gradient rule for op Erf \(node Erf\)/, /rules\.ts/);
});

test('a contrib op without a rule is named with its domain', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [3]);
  const [y] = g.addNode('FastGelu', [x], [{ dtype: 'float32', shape: [3] }], {}, 'com.microsoft');
  throwsWith(() => grad(F.reduceSum(y!, [0], false), [x]), AutodiffError, /no gradient rule for op com\.microsoft\.FastGelu/);
});

test('a non-differentiable op on the path names the op and the input that needs a gradient', () => {
  const g = new Graph('e');
  const q = g.initializer('q', 'uint4', [2, 4], { kind: 'inline', bytes: new Uint8Array(4) });
  const scale = g.input('scale', 'float32', [2, 1]);
  const w = F.dequantizeLinear(q, scale, null, 1, 4);
  const loss = F.reduceSum(F.mul(w, w), [0, 1], false);
  throwsWith(() => grad(loss, [scale]), AutodiffError, /op DequantizeLinear \(node DequantizeLinear\) is not differentiable/, /gradient of scale/);
});

test('a non-differentiable op off the path is fine', () => {
  const g = new Graph('e');
  const q = g.initializer('q', 'uint4', [2, 4], { kind: 'inline', bytes: new Uint8Array(4) });
  const w = F.dequantizeLinear(q, g.input('scale', 'float32', [2, 1]), null, 1, 4); // frozen weight
  const x = g.input('x', 'float32', [3, 4]);
  const [dx] = grad(F.reduceSum(F.matmul(x, F.transposeLast2(w)), [0, 1], false), [x]);
  assert.deepEqual(dx!.shape, [3, 4]);
});

test('an integer tensor as wrt is refused, naming it', () => {
  const g = new Graph('e');
  const ids = g.input('ids', 'int64', [3]);
  const table = g.input('table', 'float32', [5, 2]);
  const loss = F.reduceSum(F.gather(table, ids), [0, 1], false);
  throwsWith(() => grad(loss, [ids]), AutodiffError, /cannot differentiate with respect to ids: int64\[3\] \(not a float tensor\)/);
});

test('a non-scalar loss without a seed, and a loss independent of wrt, are refused', () => {
  const g = new Graph('e');
  const x = g.input('x', 'float32', [3]), y = g.input('y', 'float32', [3]);
  throwsWith(() => grad(F.mul(x, 2), [x]), AutodiffError, /loss Mul:0: float32\[3\] must be a scalar/);
  throwsWith(() => grad(F.reduceSum(y, [0], false), [x]), AutodiffError, /does not depend on any of x/);
});
