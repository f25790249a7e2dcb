// WebGPU parity: the one-graph training step of tiny-block.ts (forward, backward, clipped AdamW)
// runs with every node on the WebGPU execution provider (no CPU fallback allowed) and gives the
// CPU provider's numbers, step after step, with the updated state fed back on each side.
// Without a GPU this runs on Mesa 25's lavapipe (Vulkan on the CPU); Debian 12's own Mesa 22 is
// rejected by Dawn. There is no skip: CI installs the driver, so a missing adapter fails.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import * as nn from '../../../src-main/engine/nn/layers.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../../src-main/engine/runtime/session.js';
import { webGpuSession } from '../../helpers/webgpu.js';
import { Comparison } from '../../helpers/torch.js';
import { TOLERANCE } from './harness.js';
import { PARAMS, buildTinyStep, carryState, initialFeeds, setStep, tinyData } from './tiny-block.js';

const STEPS = 5;
test(`training step on WebGPU (no CPU fallback) matches the CPU over ${STEPS} steps`, async () => {
  const data = tinyData(7, STEPS);
  const { graph, opt } = buildTinyStep(data);
  const model = serializeModel(graph);
  const gpu = await webGpuSession(model);
  const cpu = await Session.create(model, { provider: 'cpu', threads: 2 });

  const cmp = new Comparison(TOLERANCE);
  const feedsCpu = initialFeeds(data), feedsGpu = initialFeeds(data);
  const names = Object.keys(PARAMS);
  const losses: number[] = [];
  for (let t = 0; t < STEPS; t++) {
    setStep(feedsCpu, data, t);
    setStep(feedsGpu, data, t);
    const a = await cpu.run(feedsCpu);
    const b = await gpu.run(feedsGpu);
    const value = (o: Record<string, HostTensor>, k: string) => o[k]!.data as Float32Array;
    cmp.check(`loss`, value(b, 'loss'), value(a, 'loss'));
    cmp.check(`grad norm`, value(b, opt.gradNorm), value(a, opt.gradNorm));
    opt.slots.forEach((s, i) => {
      // After step 1, m is 0.1 x the clipped gradient: this compares the backward directly.
      cmp.check(`param ${names[i]}`, value(b, s.param.output), value(a, s.param.output));
      cmp.check(`adam m ${names[i]}`, value(b, s.m.output), value(a, s.m.output));
      cmp.check(`adam v ${names[i]}`, value(b, s.v.output), value(a, s.v.output));
    });
    losses.push(value(a, 'loss')[0]!);
    carryState(feedsCpu, a, opt);
    carryState(feedsGpu, b, opt);
  }
  await cpu.release();
  await gpu.release();
  assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
  console.log(`CPU losses ${losses.map((l) => l.toFixed(5)).join(' ')}`);
  console.log(cmp.summary().split('\n').slice(0, 8).join('\n'));
});

test('the no-fallback guard refuses a node without a WebGPU kernel (LogSoftmax)', async () => {
  // Keeps the parity test honest: if the session option stopped working, everything would "pass".
  const g = new Graph('guard');
  g.output(F.logSoftmax(g.input('x', 'float32', [2, 3]), -1), 'y');
  await assert.rejects(webGpuSession(serializeModel(g)), /assigned to the default CPU EP/);
});

test('cross-entropy with every label ignored is 0, not NaN, on CPU and WebGPU', async () => {
  const g = new Graph('ce_all_ignored');
  const logits = g.input('logits', 'float32', [3, 5]);
  const labels = g.input('labels', 'int32', [3]);
  g.output(nn.crossEntropy(logits, labels), 'loss');
  const model = serializeModel(g);
  const feeds: Record<string, HostTensor> = {
    logits: { dtype: 'float32', dims: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => Math.sin(i)) },
    labels: { dtype: 'int32', dims: [3], data: Int32Array.of(-100, -100, -100) },
  };
  for (const s of [await Session.create(model, { provider: 'cpu' }), await webGpuSession(model)]) {
    assert.equal((await s.run(feeds)).loss!.data[0], 0, `provider ${s.provider}`);
    await s.release();
  }
});
