// src-main/electron/jobs.ts: the services' training jobs as (faked) Electron utility processes:
// a real run of the bundled demo model goes through one, in its own process: frozen (SIGSTOP) the
// moment it is started, as a step stuck in native code would hold it, it takes no step while the
// main process keeps answering, and it trains to the end once it runs again; a job killed mid-run
// marks its run failed and the back end keeps answering and can train again. A WebGPU run there
// does not start the placement probe (a Node process, which a packaged app cannot start from
// Electron): it says so in its device record and log, and trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installFakeElectron } from '../helpers/electron-loader.js';
import type { FinchEvent, RunConfig, RunSummary, StartDemoResult } from '../../src-shared/api.js';
import type { JobHandle } from '../../src-main/services/jobs.js';
import { lastEvents } from '../helpers/wait.js';

const { fake } = await installFakeElectron();
const home = mkdtempSync(join(tmpdir(), 'finch-jobs-'));
process.env.FINCH_HOME = home;
const { utilityAdapterList, utilityJobs } = await import('../../src-main/electron/jobs.js');
const { nodeArgsFor } = await import('../../src-main/engine/runtime/worker.js');
const { createServices } = await import('../../src-main/services/index.js');

const entry = new URL('../../src-main/services/job-host.ts', import.meta.url);
const utility = utilityJobs({ entry: fileURLToPath(entry), execArgv: nodeArgsFor(entry) });
/** Sees each job the moment its process is forked, before it has run any code. */
let onSpawn: ((job: JobHandle) => void) | null = null;
const probe = new URL('../../src-main/engine/runtime/adapter-probe.ts', import.meta.url);
const services = createServices({
  spawnJob: (kind, payload) => { const job = utility(kind, payload); onSpawn?.(job); return job; },
  // As the desktop app lists WebGPU adapters (electron/backend.ts): in a utility process.
  listAdapters: utilityAdapterList({ entry: fileURLToPath(probe), execArgv: nodeArgsFor(probe) }),
});
const events: FinchEvent[] = [];
services.bus.subscribe((e) => events.push(e));
const call = async <T>(name: string, ...args: unknown[]): Promise<T> => {
  const r = await services.dispatcher.dispatch(name, args);
  if (!r.ok) throw new Error(`${name}: ${r.error.message}`);
  return r.value as T;
};
const until = (cond: () => boolean, what: string) => new Promise<void>((resolve, reject) => {
  const limit = setTimeout(() => { clearInterval(poll); reject(new Error(`timed out after 240 s waiting for ${what}; the last events:\n  ${lastEvents(events)}`)); }, 240_000);
  const poll = setInterval(() => { if (cond()) { clearTimeout(limit); clearInterval(poll); resolve(); } }, 5);
});
const statusOf = (runId: string) => events.filter((e): e is Extract<FinchEvent, { type: 'run-status' }> => e.type === 'run-status' && e.runId === runId).at(-1)?.status;

const demo = await call<StartDemoResult>('startDemo', { start: false });
const quick = (steps: number): RunConfig => ({ ...demo.config, maxSteps: steps, samplePrompts: 0, evalEvery: 0, valFraction: 0, checkpointEvery: steps, threads: 1 });

test.after(() => {
  services.close();
  rmSync(home, { recursive: true, force: true });
});

test('a run trains in a utility process: frozen there, it takes no step while the main process answers', { timeout: 300_000 }, async () => {
  const stepsOf = (id: string) => events.filter((e) => e.type === 'run-step' && e.runId === id).length;
  let frozen = 0;
  onSpawn = (job) => { frozen = job.pid!; process.kill(frozen, 'SIGSTOP'); };
  try {
    const run = await call<RunSummary>('startRun', quick(4));
    await until(() => frozen !== 0, 'the training process');
    const job = fake.utilityProcesses.at(-1)!;
    assert.equal(job.serviceName, 'Finch training');
    assert.equal(job.modulePath, fileURLToPath(entry));
    assert.notEqual(frozen, process.pid);
    // Were the steps computed in this process, they would come now; the frozen one can send none.
    assert.equal((await call<RunSummary[]>('listRuns')).find((r) => r.id === run.id)?.id, run.id);
    assert.ok((await call<{ providers: unknown[] }>('appInfo')).providers.length > 0);
    assert.equal(stepsOf(run.id), 0);
    process.kill(frozen, 'SIGCONT');
    await until(() => ['completed', 'failed'].includes(statusOf(run.id) ?? ''), 'the run to end');
    assert.equal(statusOf(run.id), 'completed', lastEvents(events));
    assert.equal(stepsOf(run.id), 4);
    const done = await call<{ adapterPath: string | null }>('runDetails', run.id);
    assert.ok(done.adapterPath, 'the adapter was written');
  } finally {
    onSpawn = null;
    try { if (frozen) process.kill(frozen, 'SIGCONT'); } catch { /* it has ended */ }
  }
});

test('a job process that dies mid-run marks its run failed; the back end keeps answering and trains again', { timeout: 300_000 }, async () => {
  const run = await call<RunSummary>('startRun', quick(200));
  await until(() => events.some((e) => e.type === 'run-step' && e.runId === run.id), 'the first step');
  const job = fake.utilityProcesses.at(-1)!;
  process.kill(job.process.pid!, 'SIGKILL'); // what a native crash in ONNX Runtime looks like from outside
  await until(() => statusOf(run.id) === 'failed', 'the run to be marked failed');
  const failed = events.filter((e): e is Extract<FinchEvent, { type: 'run-status' }> => e.type === 'run-status' && e.runId === run.id).at(-1)!;
  assert.match(failed.error!.message, /ended unexpectedly/);
  const runs = await call<RunSummary[]>('listRuns');
  assert.equal(runs.find((r) => r.id === run.id)?.status, 'failed');
  const again = await call<RunSummary>('startRun', quick(1));
  await until(() => ['completed', 'failed'].includes(statusOf(again.id) ?? ''), 'the next run');
  assert.equal(statusOf(again.id), 'completed');
});

test('a WebGPU run without strict placement trains in a utility process, and says why it did not list CPU fallbacks (that takes a Node process)', { timeout: 300_000 }, async () => {
  const run = await call<RunSummary>('startRun', { ...quick(2), provider: 'webgpu', strictProvider: false });
  await until(() => ['completed', 'failed'].includes(statusOf(run.id) ?? ''), 'the WebGPU run to end');
  assert.equal(statusOf(run.id), 'completed', lastEvents(events));
  const device = events.find((e): e is Extract<FinchEvent, { type: 'run-device' }> => e.type === 'run-device' && e.runId === run.id)!;
  assert.equal(device.provider, 'webgpu');
  assert.equal(device.strict, false);
  assert.deepEqual(device.fallback_nodes, []);
  assert.match(device.fallback_unchecked ?? '', /^not listed inside the desktop app: listing them takes a Node process/);
  const logs = (await call<{ logs: { message: string }[] }>('runDetails', run.id)).logs.map((l) => l.message);
  assert.ok(logs.some((m) => m.startsWith('nodes that fall back to the CPU are not listed inside the desktop app')), logs.join('\n'));
});
