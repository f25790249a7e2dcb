// The device sum of gradient accumulation (train/grad-sum.ts) on WebGPU: keep * acc + weight * grad
// per LoRA matrix, chained over micro-batches, against the same float32 arithmetic on the host; and
// it frees what it replaces.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src-main/engine/graph/graph.js';
import * as F from '../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { DeviceDownloader } from '../../src-main/engine/runtime/download.js';
import { DeviceTensor } from '../../src-main/engine/runtime/session.js';
import { DeviceGradientSum } from '../../src-main/train/grad-sum.js';
import type { LoraParam } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { webGpuSession } from '../helpers/webgpu.js';

test('three weighted micro-batch gradients summed on the device equal the float32 sum on the host', async () => {
  const params = [{ name: 'a', shape: [3, 5] }, { name: 'b', shape: [7, 3] }] as unknown as LoraParam[];
  // A session that leaves given gradients on the device, as the gradient session does.
  const g = new Graph('grads');
  for (const p of params) g.output(F.identity(g.input(`g:${p.name}`, 'float32', p.shape)), `grad:${p.name}`);
  const grads = await webGpuSession(serializeModel(g), { outputsOnDevice: DeviceGradientSum.deviceOutputs(params) });
  const sum = await DeviceGradientSum.open(params, { provider: 'webgpu', disableCpuFallback: true });
  const rand = mulberry32(9);
  const weights = [3 / 10, 5 / 10, 2 / 10];
  const expected = new Map(params.map((p) => [p.name, new Float32Array(p.shape[0]! * p.shape[1]!)]));
  const before = DeviceTensor.live;
  for (const [i, w] of weights.entries()) {
    const host = Object.fromEntries(params.map((p) => [`g:${p.name}`, { dtype: 'float32' as const, dims: p.shape as number[], data: Float32Array.from({ length: expected.get(p.name)!.length }, () => rand() - 0.5) }]));
    const { device } = await grads.runKeeping(host);
    await sum.add(device, w);
    assert.equal(DeviceTensor.live, before + params.length, `after micro-batch ${i}: only the running sum is alive`);
    for (const p of params) {
      const e = expected.get(p.name)!, d = host[`g:${p.name}`]!.data;
      const wf = Math.fround(w);
      for (let k = 0; k < e.length; k++) e[k] = Math.fround((i === 0 ? 0 : e[k]!) + Math.fround(d[k]! * wf));
    }
  }
  const feeds = sum.feeds()!;
  const down = new DeviceDownloader('webgpu');
  const got = await down.download(params.map((p) => feeds[`grad:${p.name}`] as DeviceTensor));
  params.forEach((p, i) => {
    const e = expected.get(p.name)!, x = got[i]!.data as Float32Array;
    // Mul and Add rounded separately, or fused: within one float32 rounding of the host's.
    for (let k = 0; k < e.length; k++) assert.ok(Math.abs(x[k]! - e[k]!) <= 2 ** -23 * Math.abs(e[k]!) + 1e-12, `${p.name}[${k}]: ${x[k]} vs ${e[k]}`);
  });
  sum.clear();
  assert.equal(sum.feeds(), null);
  assert.equal(DeviceTensor.live, before);
  await down.release();
  await sum.release();
  await grads.release();
});
