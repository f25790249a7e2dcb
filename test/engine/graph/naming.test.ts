// Deterministic naming: the same build gives the same node and tensor names and the same ONNX
// bytes, so a cached model file can be reused and a diff of two models means a real change.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';

/** A small training graph touching scopes, checkpoints, constants, initializers and autodiff. */
function build(): Graph {
  const g = new Graph('step');
  const x = g.input('x', 'float32', ['batch', 8]);
  const w = g.initializer('w', 'float32', [8, 8], { kind: 'inline', bytes: new Uint8Array(8 * 8 * 4).fill(1) });
  const a = g.input('lora.a', 'float32', [8, 2]), b = g.input('lora.b', 'float32', [2, 8]);
  let h = x;
  for (let l = 0; l < 2; l++) {
    h = g.checkpoint(`layers.${l}`, () =>
      g.scope(`layers.${l}`, () => {
        const y = F.add(F.matmul(h, w), F.mul(F.matmul(F.matmul(h, a), b), 0.5)); // [batch, 8]
        return F.add(F.mul(F.sigmoid(y), y), h);
      }),
    );
  }
  const labels = g.input('labels', 'int64', ['batch']);
  const loss = F.softmaxCrossEntropyLoss(h, labels);
  const [da, db] = grad(loss, [a, b]);
  g.output(loss, 'loss');
  g.output(da!, 'grad/lora.a');
  g.output(db!, 'grad/lora.b');
  return g;
}

test('building the same graph twice serializes to identical bytes', () => {
  const first = serializeModel(build()), second = serializeModel(build());
  assert.ok(first.bytes.byteLength > 1000);
  assert.ok(Buffer.from(first.bytes).equals(Buffer.from(second.bytes)), 'two builds of one graph serialized differently');
});

test('names are unique, scoped, and backward nodes are named "<node>/grad/..."', () => {
  const g = build();
  const names = g.nodes.map((n) => n.name);
  assert.equal(new Set(names).size, names.length, 'node names repeat');
  const tensors = g.nodes.flatMap((n) => n.outputs.map((o) => o.name));
  assert.equal(new Set(tensors).size, tensors.length, 'tensor names repeat');
  assert.ok(names.includes('layers.0/MatMul') && names.includes('layers.1/MatMul'), 'forward nodes carry their scope');
  const forward = new Set(names.filter((n) => !n.includes('/grad/') && !n.includes('/recompute/')));
  for (const n of names.filter((x) => x.includes('/grad/'))) {
    const owner = n.slice(0, n.indexOf('/grad/'));
    assert.ok(forward.has(owner), `${n} names no forward node`);
  }
  assert.ok(names.some((n) => n.startsWith('layers.1/recompute/')), 'checkpointed layers are recomputed');
});
