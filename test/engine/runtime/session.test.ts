// The one onnxruntime-node wrapper (engine/runtime/session.ts): every feedable dtype crosses the
// JS boundary both ways with its values, fetches pick outputs, options reach ORT, and 4-bit or
// unknown dtypes are refused with a message before ORT sees them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DType } from '../../../src-main/engine/graph/dtype.js';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { type HostArray, Session, availableProviders, toOrt } from '../../../src-main/engine/runtime/session.js';

const CASES: [DType, HostArray][] = [
  ['float32', Float32Array.of(1.5, -0, Infinity, 3e-39)],
  ['float64', Float64Array.of(Math.PI, -1e300, 5e-324, NaN)],
  ['int64', BigInt64Array.of(-(2n ** 63n), 2n ** 53n + 1n, 0n, 7n)],
  ['int32', Int32Array.of(-(2 ** 31), 2 ** 31 - 1, 0, 5)],
  ['int8', Int8Array.of(-128, 127, 0, -1)],
  ['uint8', Uint8Array.of(0, 255, 1, 128)],
  ['float16', Uint16Array.of(0x3c00, 0xfbff, 0x0001, 0x7c00)], // 1, -65504, smallest subnormal, +inf (bits)
];

test('each feedable dtype goes in and comes back out unchanged (Identity), with its dims', async () => {
  const g = new Graph('identity');
  for (const [dtype] of CASES) g.output(F.identity(g.input(`in_${dtype}`, dtype, [2, 2])), `out_${dtype}`);
  const s = await Session.create(serializeModel(g), { threads: 1 });
  assert.deepEqual([...s.inputNames].sort(), CASES.map(([d]) => `in_${d}`).sort());
  const out = await s.run(Object.fromEntries(CASES.map(([dtype, data]) => [`in_${dtype}`, { dtype, dims: [2, 2], data }])));
  for (const [dtype, data] of CASES) {
    const o = out[`out_${dtype}`]!;
    assert.equal(o.dtype, dtype);
    assert.deepEqual(o.dims, [2, 2]);
    assert.ok(Object.is(o.data.constructor, data.constructor), `${dtype}: ${o.data.constructor.name}`);
    assert.deepEqual(new Uint8Array(o.data.buffer, o.data.byteOffset, o.data.byteLength), new Uint8Array(data.buffer), `${dtype} bytes`);
  }
  // Fetches: only the named outputs come back.
  const some = await s.run(Object.fromEntries(CASES.map(([dtype, data]) => [`in_${dtype}`, { dtype, dims: [2, 2], data }])), ['out_int8']);
  assert.deepEqual(Object.keys(some), ['out_int8']);
  await s.release();
});

test('4-bit and unknown dtypes are refused before ONNX Runtime sees them', () => {
  assert.throws(() => toOrt({ dtype: 'uint4', dims: [2], data: Uint8Array.of(0x21) }), /cannot feed a uint4 tensor/);
  assert.throws(() => toOrt({ dtype: 'int4', dims: [2], data: Uint8Array.of(0x21) }), /cannot feed a int4 tensor/);
});

test('options reach ORT: the CPU provider is always listed, and a session on an absent provider fails', async () => {
  assert.ok(availableProviders().some((p) => p.name === 'cpu'));
  const g = new Graph('tiny');
  g.output(F.add(g.input('x', 'float32', [1]), 1), 'y');
  const s = await Session.create(serializeModel(g), { threads: 1, optimization: 'disabled', cpuMemArena: true });
  assert.equal(s.provider, 'cpu');
  assert.deepEqual([...((await s.run({ x: { dtype: 'float32', dims: [1], data: Float32Array.of(2) } })).y!.data as Float32Array)], [3]);
  await s.release();
  if (!availableProviders().some((p) => p.name === 'coreml')) {
    await assert.rejects(Session.create(serializeModel(g), { provider: 'coreml' }));
  }
});
