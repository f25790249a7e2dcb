// src-main/electron/jobs.ts: the services' training jobs as (faked) Electron utility processes:
// a real run of the bundled demo model goes through one, in its own process, and the main process
// keeps answering while that process is frozen mid-run (SIGSTOP: a step stuck in native code); a
// job killed mid-run marks its run failed and the back end keeps answering and can train again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installFakeElectron } from '../helpers/electron-loader.js';
import type { FinchEvent, RunConfig, RunSummary, StartDemoResult } from '../../src-shared/api.js';
import { lastEvents } from '../helpers/app.js';

const { fake } = await installFakeElectron();
const home = mkdtempSync(join(tmpdir(), 'finch-jobs-'));
process.env.FINCH_HOME = home;
const { utilityJobs } = await import('../../src-main/electron/jobs.js');
const { nodeArgsFor } = await import('../../src-main/engine/runtime/worker.js');
const { createServices } = await import('../../src-main/services/index.js');

const entry = new URL('../../src-main/services/job-host.ts', import.meta.url);
const services = createServices({ spawnJob: utilityJobs({ entry: fileURLToPath(entry), execArgv: nodeArgsFor(entry) }) });
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

test('a run trains in a utility process, and the main process answers while that process is frozen mid-run', { timeout: 300_000 }, async () => {
  const stepsOf = (id: string) => events.filter((e) => e.type === 'run-step' && e.runId === id).length;
  const run = await call<RunSummary>('startRun', quick(4));
  await until(() => stepsOf(run.id) > 0, 'the first step');
  const job = fake.utilityProcesses.at(-1)!;
  assert.equal(job.serviceName, 'Finch training');
  assert.equal(job.modulePath, fileURLToPath(entry));
  const pid = job.process.pid!;
  assert.notEqual(pid, process.pid);
  // Frozen wherever it is, as a long step in native code would hold it: were the steps computed in
  // this process, it could not answer until they were done.
  process.kill(pid, 'SIGSTOP');
  try {
    const runs = await call<RunSummary[]>('listRuns');
    assert.equal(runs.find((r) => r.id === run.id)?.status, 'running');
    assert.ok((await call<{ providers: unknown[] }>('appInfo')).providers.length > 0);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await until(() => ['completed', 'failed'].includes(statusOf(run.id) ?? ''), 'the run to end');
  assert.equal(statusOf(run.id), 'completed', lastEvents(events));
  assert.equal(stepsOf(run.id), 4);
  const done = await call<{ adapterPath: string | null }>('runDetails', run.id);
  assert.ok(done.adapterPath, 'the adapter was written');
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
