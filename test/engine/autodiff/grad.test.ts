// The bookkeeping of grad.ts that the per-rule checks do not isolate: no dead backward nodes
// (ONNX Runtime runs every node, used or not), zeros for an input the loss ignores, symbolic shapes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';

test('every backward node feeds a returned gradient', () => {
  const g = new Graph('dead');
  const x = g.input('x', 'float32', [3, 4]);
  const w = g.initializer('w', 'float32', [4, 4], { kind: 'inline', bytes: new Uint8Array(64) }); // frozen
  const y = F.mul(F.tanh(F.matmul(x, w)), F.constant(g, 'float32', [4], [1, 2, 3, 4]));
  const loss = F.reduceMean(F.mul(y, y), [0, 1], false);
  const forwardEnd = g.nodes.length;
  const [dx] = grad(loss, [x]);
  const live = new Set([dx!.name]);
  for (const n of [...g.nodes.slice(forwardEnd)].reverse()) {
    assert.ok(n.outputs.some((o) => live.has(o.name)), `backward node ${n.name} (${n.op}) feeds no gradient`);
    for (const t of n.inputs) if (t) live.add(t.name);
  }
});

test('an input the loss does not use gets a zero gradient; symbolic shapes run', async () => {
  const g = new Graph('zeros');
  const x = g.input('x', 'float32', ['batch', 3]), unused = g.input('unused', 'float32', ['batch', 2]);
  const loss = F.reduceMean(F.mul(x, x), [0, 1], false); // mean over a symbolic batch
  const [dx, du] = grad(loss, [x, unused]);
  g.output(dx!, 'dx');
  g.output(du!, 'du');
  const s = await Session.create(serializeModel(g), { threads: 1 });
  const r = await s.run({
    x: { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    unused: { dtype: 'float32', dims: [2, 2], data: new Float32Array(4).fill(7) },
  });
  await s.release();
  assert.deepEqual(Array.from(r.dx!.data as Float32Array, (v) => Math.round(v * 1e6) / 1e6), [1, 2, 3, 4, 5, 6].map((v) => Math.round((2 * v / 6) * 1e6) / 1e6));
  assert.deepEqual(r.du!.dims, [2, 2]);
  assert.deepEqual(Array.from(r.du!.data as Float32Array), [0, 0, 0, 0]);
});
