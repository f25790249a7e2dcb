// The ONNX writer (engine/onnx/writer.ts): what it writes decodes to the graph that was built
// (opset, nodes, attributes, initializers inline or external), large initializers go to one
// external blob at 64-byte aligned offsets, a model written to a folder loads from its path,
// and initializers kept in files must live inside the model folder.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { ModelProto } from '../../../src-main/engine/onnx/proto.js';
import { IR_VERSION, OPSET, type SerializedModel, serializeModel, writeModelFile } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { tempDir } from '../../helpers/fixtures.js';

const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

/** y = x @ W + b with W [4, 3] (48 bytes) and b [3] (12 bytes). */
function build(name = 'affine') {
  const g = new Graph(name);
  const x = g.input('x', 'float32', ['n', 4]);
  const w = g.initializer('w', 'float32', [4, 3], { kind: 'inline', bytes: f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) });
  const b = g.initializer('b', 'float32', [3], { kind: 'inline', bytes: f32([0.5, -1, 2]) });
  g.output(F.add(F.matmul(x, w), b), 'y');
  return g;
}
const X = Float32Array.from([1, 0, -1, 2, 0.5, 0.25, 0, -2]); // [2, 4]
const W = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], B = [0.5, -1, 2];
const XW = [0, 1].flatMap((r) => [0, 1, 2].map((c) => [0, 1, 2, 3].reduce((s, k) => s + X[r * 4 + k]! * W[k * 3 + c]!, 0))); // exact in float32
const Y = XW.map((v, i) => v + B[i % 3]!);

/** y for input X, through a session on `model`. */
async function runOn(model: string | SerializedModel): Promise<number[]> {
  const s = await Session.create(model, { threads: 1 });
  const y = (await s.run({ x: { dtype: 'float32', dims: [2, 4], data: X } })).y!.data as Float32Array;
  await s.release();
  return [...y];
}

test('the written proto holds the graph: versions, inputs with symbolic dims, nodes, initializers, outputs', () => {
  const m = ModelProto.decode(serializeModel(build()).bytes) as unknown as {
    irVersion: number; opsetImport: { domain: string; version: number }[];
    graph: { node: { opType: string }[]; initializer: { name: string; dims: number[]; rawData: Uint8Array }[]; input: { name: string; type: { tensorType: { shape: { dim: { dimValue?: number; dimParam?: string }[] } } } }[]; output: { name: string }[] };
  };
  assert.equal(Number(m.irVersion), IR_VERSION);
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', OPSET], ['com.microsoft', 1]]);
  assert.deepEqual(m.graph.node.map((n) => n.opType), ['MatMul', 'Add', 'Identity']);
  assert.deepEqual(m.graph.input[0]!.type.tensorType.shape.dim.map((d) => d.dimParam || Number(d.dimValue)), ['n', 4]);
  const w = m.graph.initializer.find((i) => i.name === 'w')!;
  assert.deepEqual(w.dims.map(Number), [4, 3]);
  assert.deepEqual([...new Float32Array(new Uint8Array(w.rawData).buffer)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(m.graph.output.map((o) => o.name), ['y']);
});

test('initializers at or over the threshold go to one external blob, 64-byte aligned, and the model still computes', async () => {
  const model = serializeModel(build(), { externalThreshold: 12 });
  assert.equal(model.externalData.length, 1);
  const blob = model.externalData[0]!;
  assert.equal(blob.path, 'affine.onnx.data');
  const m = ModelProto.decode(model.bytes) as unknown as { graph: { initializer: { name: string; dataLocation?: number; externalData: { key: string; value: string }[] }[] } };
  const where = Object.fromEntries(m.graph.initializer.filter((i) => i.externalData?.length).map((i) => [i.name, Object.fromEntries(i.externalData.map((e) => [e.key, e.value]))]));
  assert.deepEqual(Object.keys(where).sort(), ['b', 'w']);
  for (const [name, e] of Object.entries(where)) {
    assert.equal(Number(e.offset) % 64, 0, `${name} offset ${e.offset}`);
    assert.equal(e.location, blob.path);
  }
  assert.deepEqual([...new Float32Array(blob.data.slice(Number(where.b!.offset), Number(where.b!.offset) + 12).buffer)], [0.5, -1, 2]);
  assert.deepEqual(await runOn(model), Y);
});

test('writeModelFile writes <name>.onnx and its data file with no temporary files left, and loads from the path', async () => {
  const dir = tempDir();
  const path = writeModelFile(build('on_disk'), dir, { externalThreshold: 12 });
  assert.equal(path, join(dir, 'on_disk.onnx'));
  assert.deepEqual(readdirSync(dir).sort(), ['on_disk.onnx', 'on_disk.onnx.data']);
  // On disk every external tensor starts at a 64 KiB boundary, where ONNX Runtime maps it instead of copying.
  const m = ModelProto.decode(readFileSync(path)) as unknown as { graph: { initializer: { name: string; externalData: { key: string; value: string }[] }[] } };
  const offsets = m.graph.initializer.filter((i) => i.externalData?.length).map((i) => Number(i.externalData.find((e) => e.key === 'offset')?.value ?? 0));
  assert.ok(offsets.length > 0);
  for (const o of offsets) assert.equal(o % 65536, 0, `offset ${o}`);
  assert.deepEqual(await runOn(path), Y);
});

test('file-backed initializers: read in place inside the model folder, refused outside it, copied in when serialized in memory', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'weights.bin'), Buffer.concat([Buffer.alloc(16), Buffer.from(f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))]));
  const make = (path: string) => {
    const g = new Graph('filed');
    const x = g.input('x', 'float32', [2, 4]);
    const w = g.initializer('w', 'float32', [4, 3], { kind: 'file', path, offset: 16, length: 48 });
    g.output(F.matmul(x, w), 'y');
    return g;
  };
  assert.deepEqual(await runOn(writeModelFile(make(join(dir, 'weights.bin')), dir)), XW);
  const elsewhere = tempDir();
  assert.throws(() => writeModelFile(make(join(dir, 'weights.bin')), elsewhere), /must be inside the model folder/);
  assert.ok(!existsSync(join(elsewhere, 'filed.onnx')));
  // In memory (placement probes, small graphs) the bytes are read from the file into the model.
  assert.deepEqual(await runOn(serializeModel(make(join(dir, 'weights.bin')))), XW);
});
