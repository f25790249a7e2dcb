// The lowering pass (onnx/lower.ts): a uint4 MatMulNBits becomes DequantizeLinear + Gemm in a copy
// of the graph, computes A @ W^T for W the dequantized weight, and an infinity in one row of A
// (or of the incoming gradient) leaves every other row finite and exact: the zero that orders the
// dequantization after A stays zero (graph/ordering.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { lowerForOrt } from '../../../src-main/engine/onnx/lower.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';

const M = 3, K = 64, N = 5, BLOCK = 32;

/** W [N, K] in uint4 with zero point 8 and per-block scales, plus its float values, written out by hand. */
function weight() {
  const q = Array.from({ length: N * K }, (_, i) => (i * 7 + 3) % 16);
  const scales = Float32Array.from({ length: (N * K) / BLOCK }, (_, b) => 0.01 * (b + 1));
  const packed = new Uint8Array((N * K) / 2);
  for (let i = 0; i < packed.length; i++) packed[i] = q[2 * i]! | (q[2 * i + 1]! << 4); // low nibble first
  const w = q.map((v, i) => (v - 8) * scales[Math.floor(i / BLOCK)]!);
  return { packed, scales, w };
}

function build() {
  const { packed, scales, w } = weight();
  const g = new Graph('nbits');
  const a = g.input('a', 'float32', [M, K]);
  const dy = g.input('dy', 'float32', [M, N]);
  const nb = {
    packed: g.initializer('w.int4', 'uint4', [N, K], { kind: 'inline', bytes: packed }),
    scales: g.initializer('w.scales', 'float32', [N, K / BLOCK], { kind: 'inline', bytes: new Uint8Array(scales.buffer) }),
    zeroPoints: g.initializer('w.zp', 'uint4', [N, K / BLOCK], { kind: 'inline', bytes: new Uint8Array((N * K) / BLOCK / 2).fill(0x88) }),
    K, N, blockSize: BLOCK,
  };
  const y = F.matMulNBits(a, nb);
  const [da] = grad(y, [a], { seed: dy });
  g.output(y, 'y');
  g.output(da!, 'da');
  return { g, w };
}

const A = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 0.5);
const DY = Float32Array.from({ length: M * N }, (_, i) => Math.cos(i));

test('the pass replaces uint4 MatMulNBits in a copy and leaves the built graph as it was', () => {
  const { g } = build();
  const before = g.nodes.map((n) => n.op);
  const lowered = lowerForOrt(g);
  assert.notEqual(lowered, g);
  assert.deepEqual(g.nodes.map((n) => n.op), before);
  assert.ok(!lowered.nodes.some((n) => n.op === 'MatMulNBits'));
  assert.equal(lowered.nodes.filter((n) => n.op === 'Gemm').length, 1);
  assert.deepEqual(lowered.outputs.map((t) => t.name), ['y', 'da']);
  assert.deepEqual(lowered.inputs.map((t) => t.name), ['a', 'dy']);
  const plain = new Graph('plain');
  plain.output(F.add(plain.input('x', 'float32', [2]), 1), 'y');
  assert.equal(lowerForOrt(plain), plain, 'a graph without uint4 MatMulNBits is not copied');
});

test('an infinity in one row of A or dY leaves the other rows finite and equal to the float64 product', async () => {
  const { g, w } = build();
  const s = await Session.create(serializeModel(g), { threads: 1 });
  for (const [where, bad] of [['A', Infinity], ['A', -Infinity], ['dY', Infinity], ['none', 0]] as const) {
    const a = A.slice(), dy = DY.slice();
    if (where === 'A') { a[0] = bad; a[1] = -bad; } // row 0 only, including the element the zero reads
    if (where === 'dY') { dy[0] = bad; dy[1] = -bad; }
    const out = await s.run({ a: { dtype: 'float32', dims: [M, K], data: a }, dy: { dtype: 'float32', dims: [M, N], data: dy } });
    const y = out.y!.data as Float32Array, da = out.da!.data as Float32Array;
    for (let m = where === 'none' ? 0 : 1; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let ref = 0;
        for (let k = 0; k < K; k++) ref += a[m * K + k]! * w[n * K + k]!;
        const got = y[m * N + n]!;
        assert.ok(Number.isFinite(got) && Math.abs(got - ref) <= 1e-5 * (1 + Math.abs(ref)), `${where}=${bad}: y[${m},${n}] = ${got}, expected ${ref}`);
      }
      for (let k = 0; k < K; k++) {
        let ref = 0;
        for (let n = 0; n < N; n++) ref += dy[m * N + n]! * w[n * K + k]!;
        const got = da[m * K + k]!;
        assert.ok(Number.isFinite(got) && Math.abs(got - ref) <= 1e-5 * (1 + Math.abs(ref)), `${where}=${bad}: dA[${m},${k}] = ${got}, expected ${ref}`);
      }
    }
  }
  await s.release();
});
