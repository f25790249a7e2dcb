// Device-resident tensors on WebGPU (lavapipe in CI): outputs kept on the device feed the next run
// of the same session and of another one, DeviceDownloader copies them to the host bit for bit,
// only host tensors count as host traffic, and disposing replaced tensors keeps memory flat.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { DeviceDownloader } from '../../../src-main/engine/runtime/download.js';
import { DeviceTensor, type Feed, type HostTensor, keepsOutputsOnDevice } from '../../../src-main/engine/runtime/session.js';
import { webGpuSession } from '../../helpers/webgpu.js';

/** x -> (x * 0.5 + 0.25 [kept], sum(x) [host]); the kept output is the next run's x. */
function stepModel(n: number) {
  const g = new Graph('device_step');
  const x = g.input('x', 'float32', [n]);
  g.output(F.add(F.mul(x, 0.5), 0.25), 'next');
  g.output(F.reduceSum(x, [0], false), 'sum');
  return serializeModel(g);
}

const host = (data: Float32Array): HostTensor => ({ dtype: 'float32', dims: [data.length], data });

test('kept outputs feed this and another session, download exactly, and only host tensors count as traffic', async () => {
  assert.equal(keepsOutputsOnDevice('webgpu'), true);
  assert.equal(keepsOutputsOnDevice('cpu'), false);
  const N = 1000;
  const model = stepModel(N);
  const a = await webGpuSession(model, { outputsOnDevice: ['next'] });
  const b = await webGpuSession(model, { outputsOnDevice: ['next'] });
  const down = new DeviceDownloader('webgpu');
  const start = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
  let x: Feed = host(start);
  const expected = Float32Array.from(start);
  for (let step = 0; step < 6; step++) {
    const s = step % 2 ? b : a; // alternating sessions: as the gradient and update sessions share the state
    const out = await s.runKeeping({ x });
    assert.deepEqual(Object.keys(out.device), ['next']);
    assert.ok(Math.abs((out.host.sum!.data as Float32Array)[0]! - expected.reduce((p, q) => p + q, 0)) < 1e-3);
    if (x instanceof DeviceTensor) x.dispose();
    x = out.device.next!;
    for (let i = 0; i < N; i++) expected[i] = Math.fround(Math.fround(expected[i]! * 0.5) + 0.25);
  }
  assert.ok(x instanceof DeviceTensor);
  assert.deepEqual(x.dims, [N]);
  const [copy] = await down.download([x]);
  assert.deepEqual(copy!.dims, [N]);
  // x * 0.5 is exact, so Mul then Add (or a fused multiply-add) gives the same bits on both sides.
  assert.deepEqual(copy!.data, expected);
  // Six runs: the first fed N floats from the host; each fetched one float (the sum).
  assert.equal(a.traffic.fed + b.traffic.fed, N * 4);
  assert.equal(a.traffic.fetched + b.traffic.fetched, 6 * 4);
  // run() refuses to hand back outputs it would have to keep.
  await assert.rejects(a.run({ x }), /stay on the device; use runKeeping/);
  x.dispose();
  assert.equal(x.disposed, true);
  await assert.rejects(a.runKeeping({ x }), /used after dispose/);
  await down.release();
  await a.release();
  await b.release();
});

test('disposing replaced device tensors keeps their count and the memory flat over many runs', async () => {
  // 4 MiB per kept tensor: on lavapipe device memory is process memory, so a tensor kept alive per
  // run would add 4 MiB of RSS each time (measured: +400 MB over 100 runs without dispose).
  const N = 1 << 20, RUNS = 60;
  const s = await webGpuSession(stepModel(N), { outputsOnDevice: ['next'] });
  const liveBefore = DeviceTensor.live;
  let x: Feed = host(new Float32Array(N));
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = await s.runKeeping({ x });
    if (x instanceof DeviceTensor) x.dispose();
    x = out.device.next!;
    assert.equal(DeviceTensor.live, liveBefore + 1, `run ${i}: one device tensor alive`);
    if (i === 10 || i === RUNS - 1) rss.push(process.memoryUsage().rss);
  }
  const grownMb = (rss[1]! - rss[0]!) / 2 ** 20;
  // A leak would be (RUNS - 11) x 4 MiB = 196 MiB; allow noise far below that.
  assert.ok(grownMb < 60, `RSS grew by ${grownMb.toFixed(0)} MiB over ${RUNS - 11} runs`);
  (x as DeviceTensor).dispose();
  assert.equal(DeviceTensor.live, liveBefore);
  await s.release();
});
