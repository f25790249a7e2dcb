// 4-bit quantization (model/quant.ts) checked against hand-computed bytes and an independent
// reference: symmetric blocks, scale = absmax / 7, q = clamp(round(w / scale) + 8, 0, 15), two
// values per byte with the first in the low nibble (MatMulNBits' layout, zero point 8).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantizeInt4, int4Bytes, int4Columns, int4Rows, quantizeInt4 } from '../../src-main/model/quant.js';
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
  assert.throws(() => quantizeInt4(new Float32Array(40), 1, 40, 32), /not a multiple of the block size/);
});
