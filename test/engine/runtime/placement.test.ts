import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { nodePlacement, nodesOffProvider, parsePlacementLog } from '../../../src-main/engine/runtime/placement.js';
import { INSTALL_HINT } from '../../helpers/webgpu.js';

function smallGraph() {
  const g = new Graph('small');
  const x = g.input('x', 'float32', [4, 8]);
  const w = g.input('w', 'float32', [8, 8]);
  const y = F.softmax(F.add(F.matmul(x, w), 1), -1); // [4, 8]
  g.output(F.mul(y, 2), 'y');
  return g;
}

test('on CPU every node is placed on the CPU provider, and the count is the graph\'s', async () => {
  const g = smallGraph();
  const p = await nodePlacement(serializeModel(g), 'cpu', { optimization: 'disabled' });
  // Unoptimized, ORT runs exactly the builder's nodes (MatMul, Add, Softmax, Mul, the output Identity).
  assert.deepEqual(p, { CPUExecutionProvider: { count: g.nodes.length, nodes: null } });
  assert.deepEqual(nodesOffProvider(p, 'cpu'), {});
  const optimized = await nodePlacement(serializeModel(g), 'cpu');
  assert.ok(optimized.CPUExecutionProvider!.count <= g.nodes.length, 'optimization never adds compute nodes on CPU');
});

test('a session that cannot be created rejects with ONNX Runtime\'s reason', async () => {
  const g = new Graph('bad');
  const x = g.input('x', 'float32', [2]);
  const [y] = g.addNode('NoSuchOperator', [x], [{ dtype: 'float32', shape: [2] }]);
  g.output(y!, 'y');
  await assert.rejects(nodePlacement(serializeModel(g), 'cpu'), /creating the session on cpu failed: .*NoSuchOperator/);
});

test('the parser reads split placements with node names (format of ORT 1.30 session_state.cc)', () => {
  const pre = '2026-01-01 10:00:00.000000000 [V:onnxruntime:, session_state.cc:1380 VerifyEachNodeIsAssignedToAnEp]';
  const log = [
    'unrelated line',
    `${pre.replace(':1380', ':1377')} Node placements`,
    `${pre}  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 2`,
    `${pre}   MatMul (layers.0/attn/MatMul)`,
    `${pre}   Softmax (layers.0/attn/Softmax)`,
    `${pre}  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1`,
    `${pre}   BitShift (nf4/BitShift_2)`,
    '2026-01-01 10:00:00.1 [V:onnxruntime:, session_state.cc:1 Other] something else',
  ].join('\n');
  const p = parsePlacementLog(log);
  assert.deepEqual(p, {
    WebGpuExecutionProvider: { count: 2, nodes: [{ op: 'MatMul', name: 'layers.0/attn/MatMul' }, { op: 'Softmax', name: 'layers.0/attn/Softmax' }] },
    CPUExecutionProvider: { count: 1, nodes: [{ op: 'BitShift', name: 'nf4/BitShift_2' }] },
  });
  assert.deepEqual(Object.keys(nodesOffProvider(p, 'webgpu')), ['CPUExecutionProvider']);
  assert.throws(() => parsePlacementLog('no placements here'), /no "Node placements"/);
});

// Needs a WebGPU adapter (Mesa's lavapipe where there is no GPU): like every WebGPU test, a
// missing adapter fails it, with the way to install one (test/helpers/webgpu.ts).
test('on WebGPU, an op without a WebGPU kernel falls back to CPU and is named', async () => {
  const g = new Graph('mixed');
  const x = g.input('x', 'float32', [4, 8]);
  const w = g.input('w', 'float32', [8, 8]);
  const b = g.input('b', 'uint8', [16]);
  g.output(F.matmul(x, w), 'y');
  const [shifted] = g.addNode('BitShift', [b, F.constant(g, 'uint8', [1], [4])], [{ dtype: 'uint8', shape: [16] }], { direction: { type: 'string', value: 'RIGHT' } });
  g.output(shifted!, 'hi');
  const model = serializeModel(g);
  try {
    await (await Session.create(model, { provider: 'webgpu' })).release();
  } catch (err) {
    assert.fail(`no WebGPU session: ${(err as Error).message.slice(0, 300)}\n${INSTALL_HINT}`);
  }
  const p = await nodePlacement(model, 'webgpu');
  const off = nodesOffProvider(p, 'webgpu');
  assert.ok(p.WebGpuExecutionProvider, `some nodes run on WebGPU: ${JSON.stringify(p)}`);
  assert.ok(p.WebGpuExecutionProvider.nodes?.some((n) => n.op === 'MatMul'), 'MatMul runs on WebGPU');
  assert.ok(off.CPUExecutionProvider?.nodes?.some((n) => n.op === 'BitShift'), `BitShift falls back to CPU: ${JSON.stringify(p)}`);
});
