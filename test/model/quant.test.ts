// 4-bit quantization (model/quant.ts) checked against hand-computed bytes and an independent
// reference: symmetric blocks, scale = absmax / 7, q = clamp(round(w / scale) + 8, 0, 15), two
// values per byte with the first in the low nibble (MatMulNBits' layout, zero point 8).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { dequantizeNBits } from '../../src-main/engine/graph/nbits.js';
import * as F from '../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { Session } from '../../src-main/engine/runtime/session.js';
import { dequantizeInt4, int4BlockPadded, int4Bytes, int4Columns, int4Rows, quantizeInt4 } from '../../src-main/model/quant.js';
import { mulberry32 } from '../../src-main/util/random.js';

test('one block by hand: scales, nibbles and their order', () => {
  // Block absmax 7 -> scale 1: values quantize to themselves + 8.
  const w = Float32Array.from([7, -7, 0, 1, -1, 3.4, -3.6, 2, ...new Array(24).fill(0)]);
  const q = quantizeInt4(w, 1, 32, 32);
  assert.deepEqual([...q.scales], [1]);
  // pairs (7, -7) -> (15, 1): 0x1f; (0, 1) -> (8, 9): 0x98; (-1, 3.4) -> (7, 11): 0xb7; (-3.6, 2) -> (4, 10): 0xa4
  assert.deepEqual([...q.packed.subarray(0, 4)], [0x1f, 0x98, 0xb7, 0xa4]);
  assert.deepEqual([...q.packed.subarray(4)], new Array(12).fill(0x88));
  assert.deepEqual([...dequantizeInt4(q).subarray(0, 8)], [7, -7, 0, 1, -1, 3, -4, 2]);
});

test('random weights: bytes equal an independent reference, error within half a step per block', () => {
  const rand = mulberry32(3);
  const N = 6, K = 128;
  for (const block of [32, 64]) {
    const w = Float32Array.from({ length: N * K }, (_, i) => (rand() * 2 - 1) * (1 + (i % 5)));
    const q = quantizeInt4(w, N, K, block);
    assert.equal(q.packed.byteLength + q.scales.byteLength, int4Bytes(N, K, block));
    const deq = dequantizeInt4(q);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < K / block; b++) {
        const vals = Array.from(w.subarray(n * K + b * block, n * K + (b + 1) * block));
        const scale = Math.fround(Math.max(...vals.map(Math.abs)) / 7);
        assert.equal(q.scales[n * (K / block) + b], scale, `scale of row ${n} block ${b}`);
        vals.forEach((v, j) => {
          const i = n * K + b * block + j;
          const code = Math.min(15, Math.max(0, Math.round(v / scale) + 8));
          const byte = q.packed[i >> 1]!;
          assert.equal(i & 1 ? byte >> 4 : byte & 15, code, `code of element ${i}`);
          assert.ok(Math.abs(deq[i]! - v) <= scale / 2 + 1e-6 * Math.abs(v), `element ${i}: ${deq[i]} vs ${v}`);
        });
      }
    }
  }
});

test('rows are views of the same bytes; block-aligned columns copy the same values', () => {
  const rand = mulberry32(9);
  const N = 4, K = 96, block = 32;
  const q = quantizeInt4(Float32Array.from({ length: N * K }, () => rand() - 0.5), N, K, block);
  const full = dequantizeInt4(q);
  const rows = int4Rows(q, 1, 2);
  assert.equal(rows.packed.buffer, q.packed.buffer);
  assert.deepEqual(dequantizeInt4(rows), full.subarray(K, 3 * K));
  const cols = int4Columns(q, 32, 64);
  const got = dequantizeInt4(cols);
  for (let n = 0; n < N; n++) assert.deepEqual(got.subarray(n * 64, (n + 1) * 64), full.subarray(n * K + 32, n * K + 96));
  assert.throws(() => int4Columns(q, 16, 32), /block boundary/);
  assert.throws(() => quantizeInt4(new Float32Array(41), 1, 41, 32), /must be even/);
});

// Qwen2-style widths: in_features not a multiple of the block (here 40 = 32 + 8; the tiny bench
// preset's 344 = 10 * 32 + 24). The last block of a row is short; ONNX Runtime's MatMulNBits
// (rows padded to whole blocks) and blocked DequantizeLinear (uint4 [N, K], ceil(K / block) scales)
// must both compute x @ dequantize(W)^T with it.
test('a width that is not a multiple of the block: a short last block, and ONNX Runtime agrees', async () => {
  const rand = mulberry32(4);
  const N = 3, K = 40, block = 32, M = 2;
  const w = Float32Array.from({ length: N * K }, () => rand() - 0.5);
  const q = quantizeInt4(w, N, K, block);
  assert.equal(q.scales.length, N * 2);
  assert.equal(q.packed.byteLength + q.scales.byteLength, int4Bytes(N, K, block));
  for (let n = 0; n < N; n++) {
    const tail = Array.from(w.subarray(n * K + 32, (n + 1) * K));
    assert.equal(q.scales[n * 2 + 1], Math.fround(Math.max(...tail.map(Math.abs)) / 7), `short block of row ${n}`);
  }
  const deq = dequantizeInt4(q);
  deq.forEach((v, i) => assert.ok(Math.abs(v - w[i]!) <= q.scales[Math.floor(i / K) * 2 + Number(i % K >= 32)]! / 2 + 1e-6, `element ${i}`));
  assert.deepEqual(dequantizeInt4(int4Columns(q, 32, 8)), Float32Array.from({ length: N * 8 }, (_, i) => deq[Math.floor(i / 8) * K + 32 + (i % 8)]!));
  const padded = int4BlockPadded(q);
  assert.equal(padded.byteLength, N * 2 * 16);

  const g = new Graph('ragged');
  const x = g.input('x', 'float32', [M, K]);
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const q4 = g.initializer('w.q4', 'uint8', [N, 2, block / 2], { kind: 'inline', bytes: padded });
  const scales = g.initializer('w.scales', 'float32', [N * 2], { kind: 'inline', bytes: bytes(q.scales) });
  g.output(F.matMulNBits(x, { packed: q4, scales, zeroPoints: null, K, N, blockSize: block }), 'nbits');
  g.output(F.gemm(x, dequantizeNBits(g, q4, scales, null, K, N, block), null, { transB: true }), 'uint8_view');
  const int4 = g.initializer('w.int4', 'uint4', [N, K], { kind: 'inline', bytes: q.packed });
  const zp = g.initializer('w.zp', 'uint4', [N, 2], { kind: 'inline', bytes: new Uint8Array(3).fill(0x88) });
  g.output(F.gemm(x, dequantizeNBits(g, int4, F.reshape(scales, [N, 2]), zp, K, N, block), null, { transB: true }), 'uint4');
  const xs = Float32Array.from({ length: M * K }, () => rand() - 0.5);
  const session = await Session.create(serializeModel(g), { threads: 1 });
  const out = await session.run({ x: { dtype: 'float32', dims: [M, K], data: xs } });
  await session.release();
  const want = Float32Array.from({ length: M * N }, (_, i) => {
    const m = Math.floor(i / N), n = i % N;
    let s = 0;
    for (let k = 0; k < K; k++) s += xs[m * K + k]! * deq[n * K + k]!;
    return s;
  });
  for (const name of ['nbits', 'uint8_view', 'uint4']) {
    const got = out[name]!.data as Float32Array;
    want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 1e-5, `${name}[${i}]: ${got[i]} vs ${v}`));
  }
});
