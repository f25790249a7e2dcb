// Stopping the app (or `finch serve`) never loses a run's status (services/runs.ts shutdown): the
// job is held in a phase (test/helpers/held-job.ts stops its process there), the app closes, and
// after a restart a run cut short while training is 'interrupted' and resumes, while a run whose
// trainer had finished stays 'completed' whatever was still going on: the moment between its
// 'done' and its job's end, the demo's comparison, an export. A kill in the middle of a checkpoint
// write leaves the previous checkpoint as the resume point and no temporary folder after resume.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FinchEvent, RunConfig, RunStatus } from '../../src-shared/api.js';
import { failure, startApp, type TestApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';
import { tempDir } from '../helpers/fixtures.js';

type StatusEvent = Extract<FinchEvent, { type: 'run-status' }>;
const status = (app: TestApp, id: string, s: RunStatus) =>
  app.waitFor((e): e is StatusEvent => e.type === 'run-status' && e.runId === id && e.status === s, `run ${id} ${s}`);

const home = tempDir('finch-stop-');

/** Services over the shared FINCH_HOME with held jobs, and the demo's config for short runs. */
async function open(): Promise<{ app: TestApp; jobs: ReturnType<typeof heldJobs>; cfg: RunConfig }> {
  const jobs = heldJobs();
  const app = await startApp('dispatcher', home, { spawnJob: jobs.spawn });
  const { config } = await app.api.startDemo({ start: false });
  return { app, jobs, cfg: { ...config, maxSteps: 4, checkpointEvery: 2, samplePrompts: 0, threads: 1 } };
}

/** The run's status and log after the app is started again. */
async function afterRestart(id: string) {
  const again = await startApp('dispatcher', home);
  try {
    return await again.api.runDetails(id);
  } finally {
    await again.close();
  }
}

// checkpoint: the step of the last whole checkpoint when it stopped (one every 2 steps; the first is being written in 'checkpoint').
const STOPS = [
  { what: 'starting', at: 'start' as const, phase: 'starting', checkpoint: null },
  { what: 'quantizing', at: { phase: 'quantizing' }, phase: 'quantizing', checkpoint: null },
  { what: 'building graphs', at: { phase: 'graphs' }, phase: 'graphs', checkpoint: null },
  { what: 'training (after step 3)', at: { step: 3 }, phase: 'training', checkpoint: 2 },
  { what: 'writing a checkpoint', at: { phase: 'checkpoint' }, phase: 'checkpoint', checkpoint: null },
];

/** The event the app makes of the message a job is held at. */
function heldAt(e: FinchEvent, runId: string, at: { phase: string } | { step: number }): boolean {
  if (e.type === 'run-phase') return e.runId === runId && 'phase' in at && e.phase === at.phase;
  if (e.type === 'run-step') return e.runId === runId && 'step' in at && e.step === at.step;
  return false;
}

for (const stop of STOPS) {
  test(`the app stopped while a run is ${stop.what}: after a restart the run is interrupted, with a line saying where Resume starts`, async () => {
    const { app, jobs, cfg } = await open();
    const block = jobs.blockNext(stop.at);
    const run = await app.api.startRun({ ...cfg, name: `stopped while ${stop.what}` });
    await block.reached();
    // The job holds right after sending that message: the app has it before it closes.
    const at = stop.at;
    if (at !== 'start') await app.waitFor((e) => heldAt(e, run.id, at), `run ${run.id}'s ${JSON.stringify(at)} to reach the app`);
    await app.close();
    const d = await afterRestart(run.id);
    assert.equal(d.status, 'interrupted');
    const resumes = stop.checkpoint ? `Resume continues from its checkpoint of step ${stop.checkpoint}.` : 'it had no checkpoint yet: Resume trains it again from the start.';
    assert.ok(d.logs.some((l) => l.message === `Finch stopped while this run was ${stop.phase}; ${resumes}`), d.logs.map((l) => l.message).join('\n'));
  });
}

test('the app stopped between the trainer\'s "done" and its job\'s end: the run stays completed', async () => {
  const { app, jobs, cfg } = await open();
  const block = jobs.blockNext({ event: 'done' });
  const run = await app.api.startRun({ ...cfg, name: 'done, job still there' });
  await block.reached();
  await status(app, run.id, 'completed');
  assert.ok(app.services.runs.jobPid(run.id), 'its job is still there');
  await app.close();
  const d = await afterRestart(run.id);
  assert.equal(d.status, 'completed');
  assert.ok(d.adapterPath);
});

test('the app stopped during the demo\'s comparison: the demo run stays completed', async () => {
  const { app, jobs } = await open();
  const compare = jobs.blockNext({ message: 'batch-progress' }, 'generate');
  const { run } = await app.api.startDemo({ steps: 4 });
  await status(app, run!.id, 'completed');
  await compare.reached();
  await app.close();
  const d = await afterRestart(run!.id);
  assert.equal(d.status, 'completed');
  assert.equal(d.demo, null, 'the comparison never finished');
});

test('the app stopped during an export: the run stays completed, and the half-written export is removed', async () => {
  const { app, jobs, cfg } = await open();
  const run = await app.api.startRun({ ...cfg, name: 'exported' });
  await status(app, run.id, 'completed');
  const writing = jobs.blockNext({ message: 'export-progress' }, 'export');
  const parent = tempDir(), dest = join(parent, 'merged');
  const exporting = failure(app.api.exportMerged({ modelId: cfg.modelId, source: { kind: 'run', runId: run.id }, dest }));
  await writing.reached();
  assert.equal(readdirSync(parent).filter((n) => n.startsWith('.merged.merge-tmp-')).length, 1, 'the export has begun writing (beside its destination)');
  await app.close();
  assert.equal((await exporting).code, 'job_failed');
  assert.deepEqual(readdirSync(parent), [], 'nothing half-written left');
  assert.equal((await afterRestart(run.id)).status, 'completed');
});

test('a job killed while it puts a checkpoint in place: the run resumes from the previous checkpoint, with no temporary folder left', async () => {
  const { app, jobs, cfg } = await open();
  try {
    jobs.killNextAtCheckpoint(4);
    const run = await app.api.startRun({ ...cfg, name: 'killed mid-checkpoint', maxSteps: 6 });
    const failed = await status(app, run.id, 'failed');
    assert.match(failed.error?.message ?? '', /ended unexpectedly \(signal SIGKILL\)/);
    const root = join(run.dir, 'checkpoints');
    const unfinished = readdirSync(root).filter((n) => n.startsWith('.tmp-step-00000004-'));
    assert.equal(unfinished.length, 1, 'the kill left the finished but unrenamed checkpoint of step 4');
    assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('step-')), ['step-00000002']);

    await app.api.resumeRun(run.id);
    await status(app, run.id, 'completed');
    const d = await app.api.runDetails(run.id);
    assert.ok(d.logs.some((l) => l.message === 'resumed from the checkpoint of step 2'));
    assert.ok(d.logs.some((l) => l.message === `removed ${unfinished[0]}, a checkpoint a stopped process had not finished writing`));
    assert.deepEqual(d.metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(readdirSync(root).sort(), ['step-00000004', 'step-00000006']);
  } finally {
    await app.close();
  }
});

test('a run interrupted while writing a checkpoint resumes to the end', async () => {
  const { app, cfg } = await open();
  try {
    const interrupted = (await app.api.listRuns()).find((r) => r.name === 'stopped while writing a checkpoint')!;
    assert.equal(interrupted.status, 'interrupted');
    await app.api.resumeRun(interrupted.id);
    await status(app, interrupted.id, 'completed');
    const d = await app.api.runDetails(interrupted.id);
    assert.deepEqual(d.metrics.map((m) => m.step), [1, 2, 3, 4]);
    assert.equal(d.totalSteps, cfg.maxSteps);
  } finally {
    await app.close();
  }
});
