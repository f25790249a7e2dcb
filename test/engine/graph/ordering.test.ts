// The barrier (graph/ordering.ts) returns its tensor unchanged, bit for bit, for every value of
// the tensor it waits for, infinities and NaN included, and never changes the ordered tensor's shape.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import { barrier, firstElement } from '../../../src-main/engine/graph/ordering.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';

const SPECIAL = [Infinity, -Infinity, NaN, 3e38, -0];

test('a barrier returns its tensor bit for bit whatever the awaited tensor holds', async () => {
  const g = new Graph('barrier');
  const t = g.input('t', 'float32', [2, 3]), ids = g.input('ids', 'int64', [3]), after = g.input('after', 'float32', ['n', 2]);
  g.output(barrier(t, after), 't2');
  g.output(barrier(ids, after), 'ids2');
  const ordered = g.nodes.filter((n) => n.op === 'Where');
  assert.equal(ordered.length, 2);
  const s = await Session.create(serializeModel(g), { threads: 1 });
  const tv = Float32Array.of(1, -2.5, Infinity, 7e-30, NaN, -0), iv = BigInt64Array.of(5n, -1n, 9007199254740993n);
  for (const a of SPECIAL) {
    const out = await s.run({
      t: { dtype: 'float32', dims: [2, 3], data: tv }, ids: { dtype: 'int64', dims: [3], data: iv },
      after: { dtype: 'float32', dims: [2, 2], data: Float32Array.of(a, 1, 2, 3) }, // the first element is the one read
    });
    assert.deepEqual(new Uint8Array((out.t2!.data as Float32Array).buffer), new Uint8Array(tv.buffer), `float barrier after ${a}`);
    assert.deepEqual([...(out.ids2!.data as BigInt64Array)], [...iv], `int64 barrier after ${a}`);
  }
  await s.release();
});

test('the awaited element broadcasts without changing the shape of the ordered tensor', () => {
  const g = new Graph('shapes');
  const t = g.input('t', 'float32', [4]), big = g.input('big', 'float32', ['b', 3, 5]), m = g.input('m', 'float32', [2, 3]);
  assert.deepEqual(barrier(t, big).shape, [4]);
  assert.deepEqual(barrier(m, big).shape, [2, 3]);
  assert.deepEqual(barrier(big, m).shape, ['b', 3, 5]);
  assert.deepEqual(firstElement(big).shape, [1]);
});
