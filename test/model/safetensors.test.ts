// safetensors read/write: round trips for every dtype, conversions checked bit for bit against
// PyTorch (test/oracle/oracle_safetensors.py, an independent reader/writer), sharded indexes,
// chunked streaming of large tensors, and every error case naming the file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, truncateSync, writeFileSync, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  Checkpoint,
  SafetensorsError,
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorToWrite,
} from '../../src-main/model/safetensors.js';
import { runPythonScript, tempDir } from './model-helpers.js';
import { Rng } from '../../src-main/util/random.js';

const dir = tempDir();

/** Values that exercise rounding: normals of many scales, ties, subnormals, overflow, specials. */
function trickyValues(): Float32Array {
  const r = new Rng(7);
  const v: number[] = [];
  for (let i = 0; i < 2000; i++) v.push(r.normal() * 10 ** (r.int(12) - 6));
  // Exact ties for bf16 (low 16 bits 0x8000) and f16 (low 13 bits 0x1000), both parities.
  const u = new Uint32Array(1), f = new Float32Array(u.buffer);
  for (const bits of [0x3f808000, 0x3f818000, 0x3f801000, 0x3f803000, 0xbf808000, 0x477fe000, 0x477ff000, 0x387fc000]) {
    u[0] = bits;
    v.push(f[0]!);
  }
  // f16 subnormals and their rounding edge, f16 overflow, f32 extremes, zeros, infinities.
  v.push(5.96e-8, 2.98e-8, 2.99e-8, 1e-7, 6.1e-5, 6.09e-5, 65504, 65519, 65520, 1e6, -1e6, 3.4e38, 1e-40, 0, -0, Infinity, -Infinity);
  return Float32Array.from(v);
}

test('F32 round trip, header padded to 8, names sorted, offsets contiguous (checked by python)', () => {
  const file = join(dir, 'rt.safetensors');
  const a = trickyValues();
  const b = Float32Array.from({ length: 6 }, (_, i) => i - 2.5);
  writeSafetensors(file, [
    { name: 'z.last', dtype: 'F32', shape: [a.length], data: a },
    { name: 'a.first', dtype: 'F32', shape: [2, 3], data: b },
    { name: 'm.empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  ], { format: 'pt', note: 'finch test' });
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0, 'header length is a multiple of 8');
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  assert.deepEqual(Object.keys(header), ['__metadata__', 'a.first', 'm.empty', 'z.last']);
  assert.deepEqual(header.__metadata__, { format: 'pt', note: 'finch test' });

  const ck = Checkpoint.open(file);
  assert.deepEqual(ck.names(), ['a.first', 'm.empty', 'z.last']);
  assert.deepEqual(ck.metadata, { format: 'pt', note: 'finch test' });
  assert.deepEqual(ck.info('a.first').shape, [2, 3]);
  assert.deepEqual(ck.readTensor('a.first'), b);
  assert.deepEqual(ck.readTensor('z.last'), a);
  assert.equal(ck.readTensor('m.empty').length, 0);
  ck.close();
});

test('align: every tensor starts at a multiple of it in the file, zero padding entries leave no holes', () => {
  const file = join(dir, 'aligned.safetensors');
  const odd = Uint8Array.from({ length: 5 }, (_, i) => i + 1);
  const f = Float32Array.of(1.5, -2, 3);
  writeSafetensors(file, [
    { name: 'a.bytes', dtype: 'U8', shape: [5], data: odd },
    { name: 'b.floats', dtype: 'F32', shape: [3], data: f },
    { name: 'c.more', dtype: 'U8', shape: [4096 + 3], data: new Uint8Array(4099).fill(7) },
  ], { note: 'aligned' }, { align: 4096 });
  assert.throws(() => writeSafetensors(file, [], undefined, { align: 12 }), /alignment 12 is not a positive multiple of 8/);
  const ck = Checkpoint.open(file);
  for (const name of ['a.bytes', 'b.floats', 'c.more']) assert.equal(ck.info(name).begin % 4096, 0, name);
  assert.deepEqual(ck.readRaw('a.bytes'), odd);
  assert.deepEqual(ck.readTensor('b.floats'), f);
  // The data section is covered end to end: tensors and zero padding entries, in file order.
  const all = ck.names().map((n) => ck.info(n)).sort((x, y) => x.begin - y.begin);
  assert.equal(all[0]!.begin % 4096, 0, 'the data section starts aligned');
  for (let i = 1; i < all.length; i++) assert.equal(all[i]!.begin, all[i - 1]!.end, `${all[i]!.name} follows ${all[i - 1]!.name}`);
  assert.equal(all.at(-1)!.end, statSync(file).size);
  const pads = all.filter((t) => t.name.startsWith('__padding__.'));
  assert.equal(pads.length, 2);
  for (const p of pads) assert.ok(ck.readRaw(p.name).every((b) => b === 0));
  ck.close();
  assert.throws(() => writeSafetensors(file, [{ name: '__padding__.0', dtype: 'U8', shape: [1], data: odd.subarray(0, 1) }]), /invalid tensor name/);
});

test('BF16/F16/F64/I64 conversions match PyTorch bit for bit (python also checks the layout)', () => {
  const a = trickyValues();
  const src = join(dir, 'conv-in.safetensors');
  const out = join(dir, 'conv-out.safetensors');
  // The oracle re-checks the layout with its own parser: alignment, sorting, contiguity, coverage.
  writeSafetensors(src, [
    { name: 'x', dtype: 'F32', shape: [a.length], data: a },
    { name: 'b.small', dtype: 'F32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
    { name: 'a.empty', dtype: 'F32', shape: [0], data: [] },
  ]);
  runPythonScript('oracle_safetensors.py', ['convert', src, out]);
  const ck = Checkpoint.open(out);

  // Writing: Finch's float32 -> bf16 / f16 rounding gives torch's bits.
  for (const [suffix, conv] of [['bf16', f32ToBf16Bits], ['f16', f32ToF16Bits]] as const) {
    const raw = ck.readRaw(`x.${suffix}`);
    const torchBits = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
    let bad = 0;
    const examples: string[] = [];
    for (let i = 0; i < a.length; i++) {
      const mine = conv(a[i]!);
      if (mine !== torchBits[i]) {
        bad++;
        if (examples.length < 5) examples.push(`${a[i]} -> 0x${mine.toString(16)} vs torch 0x${torchBits[i]!.toString(16)}`);
      }
    }
    assert.equal(bad, 0, `${suffix}: ${bad} values round differently from torch: ${examples.join('; ')}`);
  }
  // Reading: bf16/f16/f64/i64 files decode to torch's values.
  assert.deepEqual(ck.readTensor('x.bf16'), ck.readTensor('x.bf16_f32'));
  assert.deepEqual(ck.readTensor('x.f16'), ck.readTensor('x.f16_f32'));
  assert.deepEqual(ck.readTensor('x.f64'), a);
  const i64 = ck.readTensor('x.i64');
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const expect = Number.isFinite(x) && Math.abs(x) < 2 ** 62 ? Math.fround(Math.trunc(x)) + 0 : 0; // + 0: no -0 in int64
    assert.equal(i64[i], expect, `i64[${i}] of ${x}`);
  }
  ck.close();

  // NaN survives both conversions as a NaN.
  assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))), 'bf16 NaN');
  assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))), 'f16 NaN');
});

test('writes every dtype from numbers, raw bits and raw bytes; reads them back', () => {
  const file = join(dir, 'dtypes.safetensors');
  const vals = [1.5, -2, 0.25, 3];
  const tensors: TensorToWrite[] = [
    { name: 'f64', dtype: 'F64', shape: [4], data: vals },
    { name: 'bf16', dtype: 'BF16', shape: [2, 2], data: Float32Array.from(vals) },
    { name: 'bf16raw', dtype: 'BF16', shape: [4], data: Uint16Array.from(vals, f32ToBf16Bits) },
    { name: 'f16', dtype: 'F16', shape: [4], data: () => vals },
    { name: 'i64', dtype: 'I64', shape: [3], data: BigInt64Array.from([5n, -7n, 1n << 40n]) },
    { name: 'i32', dtype: 'I32', shape: [2], data: Int32Array.from([-3, 9]) },
    { name: 'u8', dtype: 'U8', shape: [3], data: Uint8Array.from([0, 7, 255]) },
    { name: 'f32bytes', dtype: 'F32', shape: [2], data: new Uint8Array(Float32Array.from([0.5, 8]).buffer) },
  ];
  writeSafetensors(file, tensors);
  const ck = Checkpoint.open(file);
  assert.deepEqual([...ck.readTensor('f64')], vals);
  assert.deepEqual([...ck.readTensor('bf16')], vals);
  assert.deepEqual([...ck.readTensor('bf16raw')], vals);
  assert.deepEqual([...ck.readTensor('f16')], vals);
  assert.deepEqual([...ck.readTensor('i64')], [5, -7, 2 ** 40]);
  assert.deepEqual([...ck.readTensor('i32')], [-3, 9]);
  assert.deepEqual([...ck.readTensor('u8')], [0, 7, 255]);
  assert.deepEqual([...ck.readTensor('f32bytes')], [0.5, 8]);
  assert.equal(ck.info('i64').dtype, 'I64');
  assert.equal(ck.info('bf16').end - ck.info('bf16').begin, 8);
  ck.close();
});

test('a tensor larger than the conversion chunk streams correctly (bf16 and f16)', () => {
  const file = join(dir, 'big.safetensors');
  const n = (1 << 23) + 12345; // > 16 MiB of 2-byte values: several chunks plus a remainder
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = (i * 2654435761) >>> 17 & 0x7bff; // finite bf16/f16 patterns
  writeSafetensors(file, [
    { name: 'b', dtype: 'BF16', shape: [n], data: bits },
    { name: 'h', dtype: 'F16', shape: [n], data: bits },
  ]);
  const ck = Checkpoint.open(file);
  const b = ck.readTensor('b');
  const h = ck.readTensor('h');
  for (const i of [0, 1, (1 << 23) - 1, 1 << 23, n - 1]) {
    assert.equal(b[i], bf16BitsToF32(bits[i]!), `bf16[${i}]`);
    assert.equal(h[i], f16BitsToF32(bits[i]!), `f16[${i}]`);
  }
  let mismatch = 0;
  for (let i = 0; i < n; i += 997) if (b[i] !== bf16BitsToF32(bits[i]!)) mismatch++;
  assert.equal(mismatch, 0);
  ck.close();
});

test('sharded checkpoint via index.json; python reads the same values', () => {
  const d = join(dir, 'sharded');
  const t = (name: string, n: number, seed: number): TensorToWrite => {
    const r = new Rng(seed);
    return { name, dtype: 'BF16', shape: [n, 3], data: Float32Array.from({ length: n * 3 }, () => r.normal()) };
  };
  const names = writeShardedSafetensors(d, [[t('model.a', 4, 1), t('model.b', 5, 2)], [t('model.c', 6, 3)]], { metadata: { format: 'pt' } });
  assert.deepEqual(names, ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  const index = JSON.parse(readFileSync(join(d, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(index.metadata.total_size, (12 + 15 + 18) * 2);
  assert.deepEqual(index.weight_map, { 'model.a': names[0], 'model.b': names[0], 'model.c': names[1] });

  const ck = Checkpoint.open(d);
  assert.deepEqual(ck.names(), ['model.a', 'model.b', 'model.c']);
  assert.ok(ck.info('model.c').file.endsWith(names[1]!));
  runPythonScript('oracle_safetensors.py', ['stats', d, join(d, 'stats.json')]);
  const stats = JSON.parse(readFileSync(join(d, 'stats.json'), 'utf8')) as Record<string, { sum: number; first: number[]; shape: number[] }>;
  for (const name of ck.names()) {
    const v = ck.readTensor(name);
    assert.deepEqual(ck.info(name).shape, stats[name]!.shape);
    assert.deepEqual([...v.slice(0, 4)], stats[name]!.first, name);
    const sum = v.reduce((a, x) => a + x, 0);
    assert.ok(Math.abs(sum - stats[name]!.sum) < 1e-9, `${name}: sum ${sum} vs ${stats[name]!.sum}`);
  }
  ck.close();
  // The index file itself can be opened too.
  assert.deepEqual(Checkpoint.open(join(d, 'model.safetensors.index.json')).names(), ['model.a', 'model.b', 'model.c']);
});

test('writes are atomic: no tmp files left, failed writes leave the old file intact', () => {
  const d = join(dir, 'atomic');
  mkdirSync(d);
  const file = join(d, 'w.safetensors');
  writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2], data: [1, 2] }]);
  const before = readFileSync(file);
  assert.throws(
    () => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2], data: () => { throw new Error('boom'); } }]),
    /boom/,
  );
  assert.deepEqual(readFileSync(file), before);
  assert.deepEqual(readdirSync(d), ['w.safetensors']);
  assert.throws(() => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [3], data: [1, 2] }]), /tensor a has 2 values, shape \[3\] needs 3/);
  assert.throws(() => writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [1], data: [1] }, { name: 'a', dtype: 'F32', shape: [1], data: [1] }]), /duplicate tensor name a/);
  assert.throws(() => writeSafetensors(file, [{ name: 'a', dtype: 'BF16', shape: [2], data: new Uint8Array(3) }]), /3 raw bytes/);
});

test('errors name the file: missing, truncated, bad header, out of range, bad index', () => {
  const good = join(dir, 'good.safetensors');
  writeSafetensors(good, [{ name: 'w', dtype: 'F32', shape: [16], data: new Float32Array(16) }]);
  const size = statSync(good).size;

  const missing = join(dir, 'nope.safetensors');
  assert.throws(() => Checkpoint.open(missing), (e: Error) => e instanceof SafetensorsError && e.message.includes(missing));

  const trunc = join(dir, 'trunc.safetensors');
  copyFileSync(good, trunc);
  truncateSync(trunc, size - 4);
  assert.throws(() => Checkpoint.open(trunc), new RegExp(`${trunc}: tensor w is out of range .*truncated`));
  const tiny = join(dir, 'tiny.safetensors');
  writeFileSync(tiny, Buffer.alloc(5));
  assert.throws(() => Checkpoint.open(tiny), new RegExp(`${tiny}: truncated safetensors file`));
  const shortHeader = join(dir, 'short-header.safetensors');
  copyFileSync(good, shortHeader);
  truncateSync(shortHeader, 20);
  assert.throws(() => Checkpoint.open(shortHeader), new RegExp(`${shortHeader}: truncated safetensors file \\(header says`));

  const badJson = join(dir, 'badjson.safetensors');
  const bytes = readFileSync(good);
  bytes[9] = '!'.charCodeAt(0); // corrupt the JSON right after its opening brace
  writeFileSync(badJson, bytes);
  assert.throws(() => Checkpoint.open(badJson), new RegExp(`${badJson}: bad safetensors header JSON`));

  const huge = join(dir, 'huge.safetensors');
  const hb = Buffer.alloc(16);
  hb.writeBigUInt64LE(1n << 40n);
  writeFileSync(huge, hb);
  assert.throws(() => Checkpoint.open(huge), new RegExp(`${huge}: header length .* implausible`));

  const wrongSize = join(dir, 'wrongsize.safetensors');
  const h = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }).padEnd(48, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(wrongSize, Buffer.concat([len, h, Buffer.alloc(12)]));
  assert.throws(() => Checkpoint.open(wrongSize), /tensor w spans 12 bytes but F32\[4\] needs 16/);

  const ck = Checkpoint.open(good);
  assert.throws(() => ck.readTensor('missing.weight'), new RegExp(`${good}: no tensor named missing.weight`));
  ck.close();

  // Folders: nothing to open; index pointing at a missing shard; index naming a tensor a shard lacks.
  const empty = join(dir, 'empty-model');
  mkdirSync(empty);
  assert.throws(() => Checkpoint.open(empty), /no model.safetensors or model.safetensors.index.json/);
  const idxDir = join(dir, 'bad-index');
  mkdirSync(idxDir);
  writeFileSync(join(idxDir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'model-00001-of-00002.safetensors' } }));
  assert.throws(() => Checkpoint.open(idxDir), /shard model-00001-of-00002.safetensors is listed in weight_map but missing/);
  copyFileSync(good, join(idxDir, 'model-00001-of-00002.safetensors'));
  writeFileSync(join(idxDir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'model-00001-of-00002.safetensors', v: 'model-00001-of-00002.safetensors' } }));
  assert.throws(() => Checkpoint.open(idxDir), /tensor v is mapped to model-00001-of-00002.safetensors, which does not contain it/);
  writeFileSync(join(idxDir, 'model.safetensors.index.json'), '{"weight_map": ');
  assert.throws(() => Checkpoint.open(idxDir), /model.safetensors.index.json: invalid JSON/);
});

test('headers that lie are refused before any buffer is sized from them; openAsync reads what open reads', async () => {
  const file = (name: string, header: string, data: number) => {
    const json = Buffer.from(header);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const p = join(dir, name);
    writeFileSync(p, Buffer.concat([len, json, Buffer.alloc(data)]));
    return p;
  };
  const cases: [string, string, RegExp][] = [
    ['1tb.safetensors', '{"w": {"dtype": "F32", "shape": [250000000000], "data_offsets": [0, 1000000000000]}}', /tensor w is out of range \(ends at data byte 1000000000000, data section has 16\)/],
    ['unsafe.safetensors', '{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 18014398509481985]}}', /tensor w has bad data_offsets/],
    ['shape.safetensors', '{"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 16]}}', /spans 16 bytes but F32\[1099511627776, 1099511627776\] needs 4835703278458516698824704/],
    ['reversed.safetensors', '{"w": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}', /tensor w spans -16 bytes/],
    ['metadata.safetensors', '{"__metadata__": [1, 2]}', /__metadata__ must be an object of strings/],
    ['deep.safetensors', `{"__metadata__": ${'['.repeat(200)}${']'.repeat(200)}}`, /nested deeper than 64 levels/],
  ];
  for (const [name, header, message] of cases) {
    const p = file(name, header, 16);
    assert.throws(() => Checkpoint.open(p), (e: Error) => e instanceof SafetensorsError && message.test(e.message), name);
    await assert.rejects(Checkpoint.openAsync(p), (e: Error) => e instanceof SafetensorsError && message.test(e.message), name);
  }
  const good = join(dir, 'async.safetensors');
  writeSafetensors(good, [{ name: 'a', dtype: 'F16', shape: [2, 3], data: new Float32Array(6) }, { name: 'b', dtype: 'BF16', shape: [5], data: new Float32Array(5) }]);
  const [s, a] = [Checkpoint.open(good), await Checkpoint.openAsync(good)];
  assert.deepEqual(a.tensors(), s.tensors());
  s.close();
  a.close();
});

test('a weights file that is a FIFO or a link to /dev/zero is refused at once', { skip: process.platform === 'win32' }, async () => {
  const fifo = join(dir, 'fifo.safetensors');
  execFileSync('mkfifo', [fifo]);
  assert.throws(() => Checkpoint.open(fifo), /fifo\.safetensors is a FIFO \(named pipe\), not a regular file/);
  await assert.rejects(Checkpoint.openAsync(fifo), /is a FIFO/);
  const zero = join(dir, 'zero-model');
  mkdirSync(zero);
  symlinkSync('/dev/zero', join(zero, 'model.safetensors'));
  assert.throws(() => Checkpoint.open(zero), /model\.safetensors is a character device/);
});
