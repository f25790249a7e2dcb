// src-main/electron/jobs.ts: the services' training jobs as (faked) Electron utility processes:
// a real run of the bundled demo model goes through one, in its own process, while the main
// process's event loop keeps turning during every step; a job killed mid-run marks its run
// failed and the back end keeps answering and can train again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installFakeElectron } from '../helpers/electron-loader.js';
import type { FinchEvent, RunConfig, RunSummary, StartDemoResult } from '../../src-shared/api.js';

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
  const limit = setTimeout(() => { clearInterval(poll); reject(new Error(`timed out waiting for ${what}`)); }, 240_000);
  const poll = setInterval(() => { if (cond()) { clearTimeout(limit); clearInterval(poll); resolve(); } }, 5);
});
const statusOf = (runId: string) => events.filter((e): e is Extract<FinchEvent, { type: 'run-status' }> => e.type === 'run-status' && e.runId === runId).at(-1)?.status;

const demo = await call<StartDemoResult>('startDemo', { start: false });
const quick = (steps: number): RunConfig => ({ ...demo.config, maxSteps: steps, samplePrompts: 0, evalEvery: 0, valFraction: 0, checkpointEvery: steps, threads: 1 });

test.after(() => {
  services.close();
  rmSync(home, { recursive: true, force: true });
});

test('a run trains in a utility process while the main event loop keeps turning during its steps', { timeout: 300_000 }, async () => {
  // Ticks of a 5 ms timer in this (main) process, stamped at each step event: were the steps
  // computed here, no tick could fall between two step events.
  let ticks = 0;
  const ticker = setInterval(() => { ticks++; }, 5);
  const ticksAtStep: number[] = [];
  const off = services.bus.subscribe((e) => { if (e.type === 'run-step') ticksAtStep.push(ticks); });
  try {
    const run = await call<RunSummary>('startRun', quick(4));
    await until(() => ['completed', 'failed'].includes(statusOf(run.id) ?? ''), 'the run to end');
    assert.equal(statusOf(run.id), 'completed', JSON.stringify(events.filter((e) => e.type === 'run-status' || e.type === 'run-log').slice(-5)));
    const job = fake.utilityProcesses.at(-1)!;
    assert.equal(job.serviceName, 'Finch training');
    assert.equal(job.modulePath, fileURLToPath(entry));
    assert.equal(ticksAtStep.length, 4);
    for (let i = 1; i < ticksAtStep.length; i++) assert.ok(ticksAtStep[i]! > ticksAtStep[i - 1]!, `no main-loop tick during step ${i + 1}`);
    const done = await call<{ adapterPath: string | null }>('runDetails', run.id);
    assert.ok(done.adapterPath, 'the adapter was written');
  } finally {
    clearInterval(ticker);
    off();
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
