// Every entry of the VJP rule table (engine/autodiff/rules.ts) against central finite differences
// in float64 on ORT's CPU EP: shapes that broadcast ([2,3,4] with [4] and [3,1]), tensors used
// more than once (gradient accumulation), and each op's awkward cases (ignored labels, repeated
// gather indices, negative slice bounds). A rule added to the table without a check here fails
// "every rule has a check".
//
// Float32-only kernels: ORT's MatMulNBits has no float64 kernel, so its float32 gradient is
// compared with a float64 MatMul against the same dequantized weight (itself checked against
// finite differences). Cast is checked the same way, since a float32 round trip cannot be
// finite-differenced at eps 1e-6.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { AutodiffError, grad } from '../../../src-main/engine/autodiff/grad.js';
import { rules } from '../../../src-main/engine/autodiff/rules.js';
import { Graph, type Tensor } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { type Build, type CheckOptions, type CheckReport, Rng, gradcheck, gradcompare } from '../../helpers/gradcheck.js';

type Case = { label: string; run: () => Promise<CheckReport> };
const checks: Record<string, Case[]> = {};

// Every check runs twice: with static shapes, and with each dim of size 2 declared as the symbol
// "B", as training graphs declare batch and sequence dims (shapes then known only at run time).
const SYMBOLIC = { 2: 'B' } as const;

// Rules that are right land near 1e-10 here; 1e-8 (stricter than the helper's 1e-6) also catches
// small systematic slips such as a float64 constant where ORT uses a float32 attribute.
const TOL = 1e-8;

function check(op: string, label: string, build: Build, opts: CheckOptions & { staticOnly?: string } = {}) {
  (checks[op] ??= []).push({ label, run: () => gradcheck(op, build, { tol: TOL, ...opts, label }) });
  if (opts.staticOnly) return;
  (checks[op] ??= []).push({ label: `${label}, symbolic B`, run: () => gradcheck(op, build, { tol: TOL, symbolic: SYMBOLIC, ...opts, label: `${label}, symbolic B` }) });
}
function compare(op: string, label: string, build: Build, reference: Build, opts: CheckOptions = {}) {
  (checks[op] ??= []).push({ label, run: () => gradcompare(op, build, reference, { ...opts, label }) });
}

const A = [2, 3, 4]; // the main operand shape
const i64 = (g: Graph, shape: number[], v: number[]) => F.constant(g, 'int64', shape, v, 'idx');
const bools = (g: Graph, shape: number[], seed: number) => {
  const r = new Rng(seed);
  return F.constant(g, 'bool', shape, Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => (r.next() < 0.5 ? 1 : 0)), 'cond');
};

// --- elementwise ------------------------------------------------------------------------------

check('Identity', 'plain', (b) => F.identity(b.input('x', A)));
check('Identity', 'reused', (b) => {
  const x = b.input('x', A);
  return F.mul(F.identity(x), x);
});

check('Add', '[2,3,4] + [4]', (b) => F.add(b.input('x', A), b.input('y', [4])));
check('Add', '[3,1] + [2,3,4]', (b) => F.add(b.input('y', [3, 1]), b.input('x', A)));
check('Add', 'x + x', (b) => {
  const x = b.input('x', A);
  return F.add(x, x);
});
check('Add', 'scalar', (b) => F.add(b.input('x', A), 0.5));

check('Sub', '[2,3,4] - [3,1]', (b) => F.sub(b.input('x', A), b.input('y', [3, 1])));
check('Sub', '[4] - [2,3,4]', (b) => F.sub(b.input('y', [4]), b.input('x', A)));
check('Sub', 'x - x*y reuse', (b) => {
  const x = b.input('x', A);
  return F.sub(x, F.mul(x, b.input('y', [4])));
});

check('Mul', '[2,3,4] * [4]', (b) => F.mul(b.input('x', A), b.input('y', [4])));
check('Mul', '[3,1] * [2,3,4]', (b) => F.mul(b.input('y', [3, 1]), b.input('x', A)));
check('Mul', 'x * x', (b) => {
  const x = b.input('x', A);
  return F.mul(x, x);
});

check('Div', '[2,3,4] / [3,1]', (b) => F.div(b.input('x', A), b.input('y', [3, 1], 'positive')));
check('Div', '[4] / [2,3,4]', (b) => F.div(b.input('y', [4]), b.input('x', A, 'positive')));
check('Div', 'x*y / (x+2) reuse', (b) => {
  const x = b.input('x', A, 'positive');
  return F.div(F.mul(x, b.input('y', [4])), F.add(x, 2));
});

check('Pow', '[2,3,4] ^ [4]', (b) => F.pow(b.input('x', A, 'positive'), b.input('p', [4])));
check('Pow', 'x ^ 3 (constant)', (b) => F.pow(b.input('x', A), 3));
check('Pow', 'x ^ x', (b) => {
  const x = b.input('x', A, 'positive');
  return F.pow(x, x);
});

const unaryCases: [string, (x: Tensor) => Tensor, 'normal' | 'positive' | 'awayFromZero'][] = [
  ['Neg', F.neg, 'normal'],
  ['Sqrt', F.sqrt, 'positive'],
  ['Reciprocal', F.reciprocal, 'positive'],
  ['Exp', F.exp, 'normal'],
  ['Log', F.log, 'positive'],
  ['Sigmoid', F.sigmoid, 'normal'],
  ['Tanh', F.tanh, 'normal'],
  ['Relu', F.relu, 'awayFromZero'],
  ['Abs', F.abs, 'awayFromZero'],
  ['Sin', F.sin, 'normal'],
  ['Cos', F.cos, 'normal'],
];
for (const [op, fn, init] of unaryCases) {
  check(op, '[2,3,4]', (b) => fn(b.input('x', A, init)));
  check(op, 'reused: f(x) * (x + 1.5)', (b) => {
    const x = b.input('x', A, init);
    return F.mul(fn(x), F.add(x, 1.5));
  });
}

// Max/Min are not differentiable at ties; random normals keep inputs far apart relative to eps.
check('Max', '[2,3,4] vs [4]', (b) => F.max2(b.input('x', A), b.input('y', [4])));
check('Max', '[3,1] vs [2,3,4]', (b) => F.max2(b.input('y', [3, 1]), b.input('x', A)));
check('Max', 'scalar', (b) => F.max2(b.input('x', A), 0.3));
check('Min', '[2,3,4] vs [4]', (b) => F.min2(b.input('x', A), b.input('y', [4])));
check('Min', '[3,1] vs [2,3,4]', (b) => F.min2(b.input('y', [3, 1]), b.input('x', A)));
check('Min', 'reused with Max', (b) => {
  const x = b.input('x', A), y = b.input('y', [4]);
  return F.mul(F.min2(x, y), F.max2(x, y));
});

check('Where', 'cond [3,1], x [2,3,4], y [4]', (b) => F.where(bools(b.g, [3, 1], 7), b.input('x', A), b.input('y', [4])));
check('Where', 'cond [2,3,4], y [3,1], scalar', (b) => F.where(bools(b.g, A, 8), b.input('y', [3, 1]), 0.25));
check('Where', 'x on both sides', (b) => {
  const x = b.input('x', A);
  return F.where(bools(b.g, [4], 9), x, F.mul(x, x));
});

compare(
  'Cast',
  'float32 -> float64 -> float32',
  (b) => F.cast(F.mul(F.cast(b.input('x', A), 'float64'), F.cast(b.input('y', [4]), 'float64')), 'float32'),
  (b) => F.mul(b.input('x', A), b.input('y', [4])),
  { tol: 1e-6 },
);

// --- linear algebra -----------------------------------------------------------------------------

check('MatMul', '[2,3,4] @ [4,5] (2-D weight)', (b) => F.matmul(b.input('a', A), b.input('w', [4, 5])));
check('MatMul', '[2,3,4] @ [2,4,5]', (b) => F.matmul(b.input('a', A), b.input('w', [2, 4, 5])));
check('MatMul', '[3,4] @ [2,4,5] (broadcast a)', (b) => F.matmul(b.input('a', [3, 4]), b.input('w', [2, 4, 5])));
check('MatMul', '[2,1,3,4] @ [3,4,5] (broadcast batch)', (b) => F.matmul(b.input('a', [2, 1, 3, 4]), b.input('w', [3, 4, 5])));
check('MatMul', 'x @ x^T', (b) => {
  const x = b.input('x', A);
  return F.matmul(x, F.transposeLast2(x));
});

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    const label = `transA=${+transA} transB=${+transB}`;
    check('Gemm', `${label}, C [5], alpha 0.7, beta 1.3`, (b) => {
      const a = b.input('a', transA ? [4, 3] : [3, 4]), w = b.input('w', transB ? [5, 4] : [4, 5]);
      return F.gemm(a, w, b.input('c', [5]), { transA, transB, alpha: 0.7, beta: 1.3 });
    });
  }
}
check('Gemm', 'C [3,1]', (b) => F.gemm(b.input('a', [3, 4]), b.input('w', [4, 5]), b.input('c', [3, 1]), { beta: -0.5 }));
check('Gemm', 'no C, A reused as B^T', (b) => {
  const a = b.input('a', [3, 4]);
  return F.gemm(a, a, null, { transB: true });
});

// --- reductions and normalisers -----------------------------------------------------------------

for (const op of ['ReduceSum', 'ReduceMean', 'ReduceMax'] as const) {
  const fn = { ReduceSum: F.reduceSum, ReduceMean: F.reduceMean, ReduceMax: F.reduceMax }[op];
  check(op, 'axis 1 keepdims', (b) => fn(b.input('x', A), [1], true));
  check(op, 'axes [0,2] dropped', (b) => fn(b.input('x', A), [0, 2], false));
  check(op, 'axis -1 dropped, reused', (b) => {
    const x = b.input('x', A);
    return F.add(fn(F.mul(x, x), [-1], false), F.reduceSum(x, [2], false));
  });
  check(op, 'all axes', (b) => fn(b.input('x', A), [0, 1, 2], false));
}

for (const op of ['Softmax', 'LogSoftmax'] as const) {
  const fn = op === 'Softmax' ? F.softmax : F.logSoftmax;
  check(op, 'axis -1', (b) => fn(b.input('x', A), -1));
  check(op, 'axis 1', (b) => fn(b.input('x', A), 1));
  check(op, 'axis 0, reused', (b) => {
    const x = b.input('x', A);
    return F.mul(fn(x, 0), x);
  });
}

// --- shape ops ---------------------------------------------------------------------------------

check('Reshape', '[2,3,4] -> [6,4]', (b) => F.reshape(b.input('x', A), [6, 4]));
check('Reshape', '[2,3,4] -> [4,6], reused', (b) => {
  const x = b.input('x', A);
  return F.add(F.reshape(x, [4, 6]), F.reshape(F.mul(x, x), [4, 6]));
});
check('Transpose', 'perm [2,0,1]', (b) => F.transpose(b.input('x', A), [2, 0, 1]));
check('Transpose', 'perm [1,0,2] + broadcast', (b) => F.add(F.transpose(b.input('x', A), [1, 0, 2]), b.input('y', [2, 1])));
check('Unsqueeze', 'axes [0]', (b) => F.unsqueeze(b.input('x', A), [0]));
check('Unsqueeze', 'axes [1,-1]', (b) => F.unsqueeze(b.input('x', A), [1, -1]));
check('Squeeze', '[2,1,4] axis 1', (b) => F.squeeze(b.input('x', [2, 1, 4]), [1]));
check('Squeeze', '[1,3,1] axes [0,-1]', (b) => F.mul(F.squeeze(b.input('x', [1, 3, 1]), [0, -1]), b.input('y', [2, 3])));
check('Expand', '[3,1] -> [2,3,4]', (b) => F.expand(b.input('x', [3, 1]), A));
check('Expand', '[4] -> [3,4], reused', (b) => {
  const x = b.input('x', [4]);
  return F.mul(F.expand(x, [3, 4]), x);
});
check('Concat', '[x, y, x] axis 1', (b) => {
  const x = b.input('x', A);
  return F.concat([x, b.input('y', [2, 5, 4]), x], 1);
});
check('Concat', 'axis -1', (b) => F.concat([b.input('x', A), b.input('y', [2, 3, 1])], -1));
check('Split', '[1,3] axis 2, both outputs', (b) => F.split(b.input('x', A), [1, 3], 2));
check('Split', 'one output unused', (b) => F.split(b.input('x', A), [2, 1], 1)[1]!);
check('Split', 'outputs recombined', (b) => {
  const [p, q] = F.split(b.input('x', A), [2, 2], -1);
  return F.mul(p!, q!);
});
check('Slice', 'negative start and end [-3, -1) on axis 2', (b) => F.slice(b.input('x', A), [-3], [-1], [2]));
check('Slice', 'two axes, end past the dim', (b) => F.slice(b.input('x', A), [1, -2], [100, 3], [1, 0]), {
  staticOnly: 'F.slice cannot size [-2, 3) of a symbolic axis',
});
check('Slice', 'negative axis, reused', (b) => {
  const x = b.input('x', A);
  return F.add(F.slice(x, [0], [2], [-2]), F.slice(x, [-2], [Number.MAX_SAFE_INTEGER], [1]));
});
check('Slice', 'step -1 (reverse)', (b) => F.slice(b.input('x', A), [-1], [-Number.MAX_SAFE_INTEGER], [2], [-1]));
check('Slice', 'step -1 from 2 down to 0 exclusive', (b) => F.slice(b.input('x', A), [2], [0], [1], [-1]));
check('Slice', 'step -1, start before the beginning clamps to 0', (b) => F.slice(b.input('x', A), [-10], [-10], [2], [-1]));

check('Gather', 'repeated indices [[0,2,2],[4,0,2]]', (b) => F.gather(b.input('data', [5, 3]), i64(b.g, [2, 3], [0, 2, 2, 4, 0, 2])));
check('Gather', 'negative index, int32 indices', (b) =>
  F.gather(b.input('data', [5, 3]), F.constant(b.g, 'int32', [4], [-1, 1, 4, 1], 'idx')));
check('Gather', 'scalar index', (b) => F.gather(b.input('data', [5, 3]), i64(b.g, [], [3])));
check('Gather', 'fed indices, data reused', (b) => {
  const data = b.input('data', [5, 3]);
  const ids = b.feed('ids', 'int64', [4], BigInt64Array.from([1n, 1n, 3n, 0n]));
  return F.mul(F.gather(data, ids), F.reduceSum(data, [0], false));
});
check('Gather', 'axis 1 with repeats', (b) => F.gather(b.input('data', A), i64(b.g, [5], [2, 0, 2, -1, 1]), 1));
check('GatherElements', 'axis 1, repeats', (b) =>
  F.gatherElements(b.input('x', [3, 4]), i64(b.g, [3, 2], [0, 0, 3, 1, 2, 2]), 1));
check('GatherElements', 'axis 0', (b) => F.gatherElements(b.input('x', [3, 4]), i64(b.g, [2, 4], [2, 0, 1, 2, 0, 0, 2, 1]), 0));
check('Trilu', 'lower k=0', (b) => F.trilu(b.input('x', A), false));
check('Trilu', 'upper k=1', (b) => F.trilu(b.input('x', A), true, 1));
check('Trilu', 'lower k=-1, reused', (b) => {
  const x = b.input('x', A);
  return F.mul(F.trilu(x, false, -1), x);
});

// --- losses ------------------------------------------------------------------------------------

check('SoftmaxCrossEntropyLoss', 'int64 labels with ignored rows', (b) =>
  F.softmaxCrossEntropyLoss(b.input('logits', [6, 5]), b.feed('labels', 'int64', [6], BigInt64Array.from([1n, -100n, 4n, 0n, -100n, 4n]))));
check('SoftmaxCrossEntropyLoss', '2 rows (a symbolic N in the symbolic pass), one ignored', (b) =>
  F.softmaxCrossEntropyLoss(b.input('logits', [2, 5]), b.feed('labels', 'int64', [2], BigInt64Array.from([-100n, 3n]))));
check('SoftmaxCrossEntropyLoss', 'int32 labels, custom ignore index, reused logits', (b) => {
  const logits = b.input('logits', [4, 3]);
  const loss = F.softmaxCrossEntropyLoss(logits, b.feed('labels', 'int32', [4], Int32Array.from([2, 7, 0, 2])), 7);
  return F.add(loss, F.reduceSum(F.mul(logits, logits), [0, 1], false));
});

// --- 4-bit weights -----------------------------------------------------------------------------

/** A symmetric 4-bit weight W [N, K] in MatMulNBits layout, and its dequantized float values. */
function nbitsWeight(N: number, K: number, block: number, seed: number) {
  const r = new Rng(seed);
  const q = Array.from({ length: N * K }, () => r.int(16));
  const scales = Array.from({ length: (N * K) / block }, () => Math.fround(r.uniform(0.01, 0.1)));
  const packed = new Uint8Array((N * K) / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = q[2 * i]! | (q[2 * i + 1]! << 4); // low nibble first
  const deq = q.map((v, i) => (v - 8) * scales[Math.floor(i / block)]!); // [N, K] row-major
  return { packed, scales, deq };
}

{
  const N = 5, K = 64, block = 32;
  const w = nbitsWeight(N, K, block, 11);
  compare(
    'MatMulNBits',
    'float32 vs float64 MatMul on the dequantized weight',
    (b) => {
      const packed = b.g.initializer('w.packed', 'uint8', [N, K / block, block / 2], { kind: 'inline', bytes: w.packed });
      const scales = F.constant(b.g, 'float32', [N * (K / block)], w.scales, 'w.scales');
      const a = b.input('a', [2, 3, K]);
      return F.matMulNBits(F.mul(a, a), { packed, scales, zeroPoints: null, K, N, blockSize: block }); // reused a
    },
    (b) => {
      const wt = F.transposeLast2(F.constant(b.g, 'float64', [N, K], w.deq, 'w.deq')); // [K, N]
      const a = b.input('a', [2, 3, K]);
      return F.matmul(F.mul(a, a), wt);
    },
    { tol: 1e-5 },
  );
}

// Ties are where finite differences cannot look: check the subgradient directly.
test('ReduceMax shares the gradient between tied maxima', async () => {
  const g = new Graph('ties');
  const x = g.input('x', 'float64', [2, 3]);
  const [dx] = grad(F.reduceSum(F.reduceMax(x, [1], false), [0], false), [x]);
  g.output(dx!, 'dx');
  const s = await Session.create(serializeModel(g), { threads: 1 });
  const r = await s.run({ x: { dtype: 'float64', dims: [2, 3], data: Float64Array.from([1, 3, 3, 2, 2, 2]) } });
  await s.release();
  assert.deepEqual(Array.from(r.dx!.data as Float64Array), [0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]);
});

// --- the table ---------------------------------------------------------------------------------

/** Null rules: differentiating through the op must fail loudly, naming the op and the input. */
const notDifferentiable: Record<string, (g: Graph) => { loss: Tensor; wrt: Tensor }> = {
  DequantizeLinear: (g) => {
    const q = g.initializer('q', 'uint4', [2, 4], { kind: 'inline', bytes: new Uint8Array(4) });
    const scale = g.input('scale', 'float32', [2, 1]);
    const y = F.dequantizeLinear(q, scale, null, 1, 4);
    return { loss: F.reduceSum(y, [0, 1], false), wrt: scale };
  },
};

const reports: CheckReport[] = [];

test('every rule in the table has a check', () => {
  const table = Object.keys(rules).sort();
  const covered = [...Object.keys(checks), ...Object.keys(notDifferentiable)].sort();
  assert.deepEqual(covered, table, 'rules.ts and rules.test.ts list different ops: add a check for each new rule');
  for (const [op, rule] of Object.entries(rules)) {
    assert.equal(rule === null, op in notDifferentiable, `${op}: null rules are checked as not differentiable, others numerically`);
  }
});

for (const op of Object.keys(checks)) {
  test(`gradient of ${op}`, async () => {
    for (const c of checks[op]!) reports.push(await c.run());
  });
}

for (const [op, make] of Object.entries(notDifferentiable)) {
  test(`${op} is marked not differentiable`, () => {
    const g = new Graph('nd');
    const { loss, wrt } = make(g);
    assert.throws(() => grad(loss, [wrt]), (e: unknown) => e instanceof AutodiffError && new RegExp(`op ${op} .*not differentiable.*${wrt.name}`).test(e.message));
  });
}

after(() => {
  // Max relative error per op, for the record (npm test prints it).
  const byOp = new Map<string, number>();
  for (const r of reports) byOp.set(r.op, Math.max(byOp.get(r.op) ?? 0, r.maxRel));
  const lines = [...byOp].map(([op, e]) => `  ${op.padEnd(24)} ${e.toExponential(2)}`);
  console.log(`max relative gradient error per op (${reports.length} checks):\n${lines.join('\n')}`);
});
