// The GGUF container and ggml encodings, read back by node-llama-cpp's own GGUF parser; the
// Q8_0 / Q4_0 block layouts decoded by hand; the rotary row permutation checked against RoPE
// itself; bad output paths leave nothing behind.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readGgufFileInfo } from 'node-llama-cpp';
import { permuteRotary } from '../../../src-main/model/gguf/architecture.js';
import { bool, f32, f32s, GgufError, i32s, str, strings, u32, writeGguf, type GgufTensor, type GgufValue } from '../../../src-main/model/gguf/format.js';
import { encodeQ4_0, encodeQ8_0, encodeTensor } from '../../../src-main/model/gguf/quantize.js';
import { f16BitsToF32 } from '../../../src-main/model/safetensors.js';
import { Rng } from '../../../src-main/util/random.js';
import { tempDir } from '../model-helpers.js';

const root = tempDir('finch-gguf-format-');

function randomTensor(n: number, seed: number, std = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * std);
}

function readBytes(file: string, at: number, n: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const b = new Uint8Array(n);
    readSync(fd, b, 0, n, at);
    return b;
  } finally {
    closeSync(fd);
  }
}

test('metadata of every kind and tensors read back by node-llama-cpp: names, ne order, types, aligned offsets, bytes', async () => {
  const md = new Map<string, GgufValue>([
    ['general.architecture', str('llama')],
    ['general.name', str('tëst ✓')],
    ['x.count', u32(7)],
    ['x.eps', f32(1e-5)],
    ['x.flag', bool(true)],
    ['x.tokens', strings(['a', 'b c', '<|x|>'])],
    ['x.types', i32s([1, 3, -2])],
    ['x.scores', f32s([0.5, -1.25])],
  ]);
  const a = randomTensor(3 * 64, 1), b = randomTensor(5, 2), c = randomTensor(2 * 32, 3);
  const tensors: GgufTensor[] = [
    { name: 'a.weight', shape: [3, 64], type: 'F16', data: () => encodeTensor('F16', a) },
    { name: 'b.bias', shape: [5], type: 'F32', data: () => encodeTensor('F32', b) },
    { name: 'c.weight', shape: [2, 32], type: 'Q8_0', data: () => encodeTensor('Q8_0', c) },
  ];
  const file = join(root, 'kinds.gguf');
  writeGguf(file, md, tensors);
  const info = await readGgufFileInfo(file, { readTensorInfo: true, logWarnings: false });
  assert.equal(info.version, 3);
  const m = info.metadata as unknown as Record<string, Record<string, unknown>>;
  assert.equal(m.general!.name, 'tëst ✓');
  assert.equal(m.x!.count, 7);
  assert.ok(Math.abs((m.x!.eps as number) - 1e-5) < 1e-10);
  assert.equal(m.x!.flag, true);
  assert.deepEqual(m.x!.tokens, ['a', 'b c', '<|x|>']);
  assert.deepEqual([...(m.x!.types as number[])], [1, 3, -2]);
  assert.deepEqual([...(m.x!.scores as number[])], [0.5, -1.25]);
  const ti = info.fullTensorInfo!;
  assert.deepEqual(ti.map((t) => t.name), ['a.weight', 'b.bias', 'c.weight']);
  assert.deepEqual(ti.map((t) => t.dimensions.map(Number)), [[64, 3], [5], [32, 2]]); // innermost first
  assert.deepEqual(ti.map((t) => t.ggmlType), [1, 0, 8]);
  for (const t of ti) assert.equal(Number(t.offset) % 32, 0, `${t.name} offset aligned`);
  // The data section starts at the end of the padded header; the last tensor, padded, ends the file.
  const encoded = tensors.map((t) => t.data());
  const { size } = statSync(file);
  const start = size - Math.ceil((Number(ti[2]!.offset) + encoded[2]!.length) / 32) * 32;
  assert.equal(start % 32, 0);
  ti.forEach((t, i) => assert.deepEqual(readBytes(file, start + Number(t.offset), encoded[i]!.length), encoded[i], t.name));
});

test('Q8_0: 34-byte blocks of f16 scale + int8, scale absmax/127, error within half a step', () => {
  const x = randomTensor(4 * 32, 4, 0.3);
  x[5] = 0; // zeros stay exact
  const q = encodeQ8_0(x);
  assert.equal(q.length, 4 * 34);
  const v = new DataView(q.buffer);
  for (let b = 0; b < 4; b++) {
    const d = f16BitsToF32(v.getUint16(b * 34, true));
    const amax = Math.max(...x.subarray(b * 32, b * 32 + 32).map(Math.abs));
    assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 1e-3, 'scale');
    for (let j = 0; j < 32; j++) {
      const qv = v.getInt8(b * 34 + 2 + j);
      assert.ok(Math.abs(qv * d - x[b * 32 + j]!) <= d * 0.5 + 1e-3 * amax, `block ${b} value ${j}`);
    }
  }
  assert.equal(v.getInt8(2 + 5), 0);
});

test('Q4_0: 18-byte blocks, value j in the low nibble and j+16 in the high nibble, the largest magnitude exact', () => {
  const x = randomTensor(2 * 32, 5, 0.3);
  x[20] = -1.5; // block 0's largest magnitude, negative: d = -1.5 / -8 > 0, q = 0
  const q = encodeQ4_0(x);
  assert.equal(q.length, 2 * 18);
  const v = new DataView(q.buffer);
  for (let b = 0; b < 2; b++) {
    const d = f16BitsToF32(v.getUint16(b * 18, true));
    for (let j = 0; j < 32; j++) {
      const byte = q[b * 18 + 2 + (j % 16)]!;
      const nib = j < 16 ? byte & 15 : byte >> 4;
      const back = (nib - 8) * d;
      assert.ok(Math.abs(back - x[b * 32 + j]!) <= Math.abs(d) * 0.5 + 1e-3, `block ${b} value ${j}: ${back} vs ${x[b * 32 + j]}`);
    }
  }
  assert.ok(Math.abs(f16BitsToF32(v.getUint16(0, true)) - 1.5 / 8) < 1e-3);
  assert.equal(q[2 + 4]! >> 4, 0); // value 20 = high nibble of byte 4
});

test('permuteRotary turns HF half rotation into llama.cpp pair rotation: same scores q.k at every position', () => {
  const heads = 2, hd = 8, cols = 3;
  const w = randomTensor(heads * hd * cols, 6);
  const x = randomTensor(cols, 7);
  const project = (m: Float32Array) => Array.from({ length: heads * hd }, (_, r) => m.subarray(r * cols, (r + 1) * cols).reduce((s, v, k) => s + v * x[k]!, 0));
  const theta = (i: number, pos: number) => pos * Math.pow(10000, (-2 * i) / hd);
  const halfRot = (q: number[], pos: number) => q.map((_, r) => {
    const h = Math.floor(r / hd), i = r % hd, half = hd / 2, k = i % half, base = h * hd;
    const [c, s] = [Math.cos(theta(k, pos)), Math.sin(theta(k, pos))];
    return i < half ? q[base + i]! * c - q[base + i + half]! * s : q[base + i]! * c + q[base + i - half]! * s;
  });
  const pairRot = (q: number[], pos: number) => q.map((_, r) => {
    const h = Math.floor(r / hd), i = r % hd, k = i >> 1, base = h * hd;
    const [c, s] = [Math.cos(theta(k, pos)), Math.sin(theta(k, pos))];
    return i % 2 === 0 ? q[base + i]! * c - q[base + i + 1]! * s : q[base + i]! * c + q[base + i - 1]! * s;
  });
  const hf = halfRot(project(w), 5);
  const cpp = pairRot(project(permuteRotary(w, heads, cols)), 5);
  // Same multiset per head, and the permutation maps HF row j*hd/2+i to 2i+j.
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) assert.ok(Math.abs(hf[h * hd + j * (hd / 2) + i]! - cpp[h * hd + 2 * i + j]!) < 1e-9);
    }
  }
});

test('an output folder that does not exist, or a failure mid-write, leaves no file and no temporary', () => {
  const md = new Map<string, GgufValue>([['general.architecture', str('llama')]]);
  const t: GgufTensor = { name: 'a', shape: [4], type: 'F32', data: () => encodeTensor('F32', new Float32Array(4)) };
  assert.throws(() => writeGguf(join(root, 'nope', 'x.gguf'), md, [t]), (e: Error) => e instanceof GgufError && /folder .*nope does not exist/.test(e.message));
  const dir = join(root, 'fail');
  mkdirSync(dir);
  const bad: GgufTensor = { name: 'b', shape: [4], type: 'F32', data: () => { throw new Error('disk gone'); } };
  assert.throws(() => writeGguf(join(dir, 'x.gguf'), md, [t, bad]), /disk gone/);
  assert.deepEqual(readdirSync(dir), []);
  assert.throws(() => writeGguf(join(dir, 'y.gguf'), md, [{ name: 'q', shape: [2, 20], type: 'Q8_0', data: () => new Uint8Array(0) }]), /rows of 20 values cannot be stored as Q8_0/);
  assert.ok(!existsSync(join(dir, 'y.gguf')));
});
