import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session, type HostTensor } from '../../../src-main/engine/runtime/session.js';
import { SessionHost } from '../../../src-main/engine/runtime/worker.js';

const N = 768;
const DEPTH = 24;

/** A graph that takes a few hundred ms on 2 cores: h = tanh(h @ w), DEPTH times. */
function slowGraph() {
  const g = new Graph('slow');
  let h = g.input('x', 'float32', [N, N]); // [N, N]
  const w = g.input('w', 'float32', [N, N]);
  for (let i = 0; i < DEPTH; i++) h = F.tanh(F.matmul(h, w));
  g.output(h, 'y');
  return serializeModel(g);
}

function feeds(): Record<string, HostTensor> {
  const x = Float32Array.from({ length: N * N }, (_, i) => Math.sin(i));
  const w = Float32Array.from({ length: N * N }, (_, i) => Math.cos(i * 0.7) / Math.sqrt(N));
  return { x: { dtype: 'float32', dims: [N, N], data: x }, w: { dtype: 'float32', dims: [N, N], data: w } };
}

/** Counts 2 ms timer ticks while `fn` runs; returns the ticks and the elapsed ms. */
async function ticksDuring<T>(fn: () => Promise<T>): Promise<{ ticks: number; ms: number; value: T }> {
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 2);
  const t0 = performance.now();
  try {
    const value = await fn();
    return { ticks, ms: performance.now() - t0, value };
  } finally {
    clearInterval(timer);
  }
}

test('the caller\'s event loop keeps ticking while a long run executes in the worker; results equal an in-thread Session', async (t) => {
  const model = slowGraph();
  const local = await Session.create(model, { threads: 2 });
  const host = await SessionHost.start();
  try {
    const remote = await host.createSession(model, { threads: 2 });
    assert.deepEqual(remote.inputNames, ['x', 'w']);
    assert.deepEqual(remote.outputNames, ['y']);
    await remote.run(feeds()); // warm-up: first-run allocations

    const inWorker = await ticksDuring(() => remote.run(feeds()));
    const inThread = await ticksDuring(() => local.run(feeds()));
    t.diagnostic(`worker: ${inWorker.ms.toFixed(0)} ms, ${inWorker.ticks} ticks; in-thread: ${inThread.ms.toFixed(0)} ms, ${inThread.ticks} ticks`);
    assert.ok(inWorker.ms > 100, `the run must be long enough to measure (took ${inWorker.ms} ms)`);
    // A 2 ms timer fires at most ms/2 times, and never while the thread is blocked (in-thread: 0).
    // Demand a tenth of that: a loaded 2-core machine schedules timers late, not never.
    assert.ok(inWorker.ticks >= inWorker.ms / 20, `only ${inWorker.ticks} ticks in ${inWorker.ms.toFixed(0)} ms: the main thread was blocked`);

    const a = inWorker.value.y!;
    const b = inThread.value.y!;
    assert.deepEqual(a.dims, [N, N]);
    assert.equal(a.dtype, 'float32');
    let maxDiff = 0;
    for (let i = 0; i < a.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a.data[i] as number) - (b.data[i] as number)));
    assert.ok(maxDiff <= 1e-6, `worker and in-thread results differ by ${maxDiff}`);
    assert.ok(a.data.some((v) => v !== 0), 'the result is not all zeros');
  } finally {
    await host.close();
    await local.release();
  }
});

test('errors in the worker reject with ONNX Runtime\'s original message', async () => {
  const g = new Graph('small');
  const x = g.input('x', 'float32', [2, 3]);
  g.output(F.add(x, 1), 'y');
  const model = serializeModel(g);
  const bad = { x: { dtype: 'float32', dims: [3, 2], data: new Float32Array(6) } } satisfies Record<string, HostTensor>;
  const local = await Session.create(model);
  const expected = await local.run(bad).then(() => assert.fail('in-thread run should fail'), (e: Error) => e.message);
  const host = await SessionHost.start();
  try {
    const remote = await host.createSession(model);
    await assert.rejects(remote.run(bad), (e: Error) => e.message === expected);
    await assert.rejects(remote.run(bad, ['nope']), /nope/);
    await assert.rejects(host.createSession({ bytes: new Uint8Array([1, 2, 3]), externalData: [] }), /protobuf|parse|model/i);
    // The worker survives errors: a good run still works.
    const ok = await remote.run({ x: { dtype: 'float32', dims: [2, 3], data: new Float32Array(6).fill(2) } });
    assert.deepEqual([...ok.y!.data], [3, 3, 3, 3, 3, 3]);
    await remote.release();
    await assert.rejects(remote.run(bad), /no session/);
  } finally {
    await host.close();
    await local.release();
  }
  await assert.rejects(host.createSession(model), /closed/);
});

test('inputs are copied by default and moved with transfer: true', async () => {
  const g = new Graph('double');
  const x = g.input('x', 'float32', [4]);
  g.output(F.mul(x, 2), 'y');
  const host = await SessionHost.start();
  try {
    const s = await host.createSession(serializeModel(g));
    const data = Float32Array.from([1, 2, 3, 4]);
    const copied = await s.run({ x: { dtype: 'float32', dims: [4], data } });
    assert.deepEqual([...data], [1, 2, 3, 4]);
    assert.deepEqual([...copied.y!.data], [2, 4, 6, 8]);
    const moved = await s.run({ x: { dtype: 'float32', dims: [4], data } }, undefined, { transfer: true });
    assert.equal(data.length, 0, 'the caller\'s array is detached after a transfer');
    assert.deepEqual([...moved.y!.data], [2, 4, 6, 8]);
  } finally {
    await host.close();
  }
});
