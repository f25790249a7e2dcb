// Pause and cancel through the API, honoured in every phase of a run's real job (services/runs.ts,
// job-host.ts): each test holds the job in one phase (test/helpers/held-job.ts stops its process
// as the phase begins), asks through the API while it is held, and lets it go: the run says
// "pausing…" (request 'pause') until the job pauses at its next boundary, inside that phase, and a
// cancel while paused ends it 'cancelled' before any later phase. A queued run can be paused and
// stays so until resumed; a pause sent the instant the demo starts is honoured.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FinchEvent, RunConfig, RunStatus } from '../../src-shared/api.js';
import { TRAIN_PHASES, type TrainPhase } from '../../src-shared/train-events.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';
import { until } from '../helpers/wait.js';

type StatusEvent = Extract<FinchEvent, { type: 'run-status' }>;
type PausedEvent = Extract<FinchEvent, { type: 'run-paused' }>;

const jobs = heldJobs();
let app: TestApp;
let cfg: RunConfig;
before(async () => {
  app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
  const { config } = await app.api.startDemo({ start: false });
  // Evaluation and a checkpoint after step 2: every phase happens.
  cfg = { ...config, maxSteps: 4, evalEvery: 2, valFraction: 0.05, checkpointEvery: 2, samplePrompts: 0, threads: 1 };
});
after(() => app.close());

const status = (id: string, s: RunStatus) => app.waitFor((e): e is StatusEvent => e.type === 'run-status' && e.runId === id && e.status === s, `run ${id} ${s}`);
const phasesOf = (id: string) => app.events.filter((e) => e.type === 'run-phase' && e.runId === id).map((e) => (e as { phase: TrainPhase }).phase);

for (const phase of ['starting', ...TRAIN_PHASES] as const) {
  test(`a pause asked while the job is ${phase} holds the run in that phase; a cancel while paused ends it there`, async (t) => {
    const block = jobs.blockNext(phase === 'starting' ? 'start' : { phase });
    t.after(() => block.release()); // a failed test leaves no held job to block the next run
    const run = await app.api.startRun({ ...cfg, name: `paused while ${phase}` });
    await block.reached();
    // The job stopped right after sending the phase: the service may not have read it yet.
    await until(() => phase === 'starting' || phasesOf(run.id).at(-1) === phase, `the service to see run ${run.id} ${phase}`);
    const asked = await app.api.pauseRun(run.id);
    assert.equal(asked.status, 'running', 'not paused until the job says so');
    assert.equal(asked.request, 'pause', 'the app shows "pausing…"');
    assert.equal((await app.api.runDetails(run.id)).phase, phase === 'starting' ? null : phase);
    block.release();
    const paused = await app.waitFor((e): e is PausedEvent => e.type === 'run-paused' && e.runId === run.id, `run ${run.id} to pause`);
    // Before loading, the job's first boundary is the start of loading.
    assert.equal(paused.phase, phase === 'starting' ? 'loading' : phase);
    await status(run.id, 'paused');
    const held = await app.api.runDetails(run.id);
    assert.equal(held.request, null);
    const phasesWhenPaused = phasesOf(run.id);
    assert.equal(phasesWhenPaused.at(-1) ?? 'starting', phase, 'no later phase began');

    const cancelling = await app.api.cancelRun(run.id);
    assert.equal(cancelling.request, 'cancel', 'the app shows "cancelling…"');
    const done = await status(run.id, 'cancelled');
    assert.equal(done.request, null);
    assert.deepEqual(phasesOf(run.id), phasesWhenPaused, 'nothing more ran');
    const d = await app.api.runDetails(run.id);
    const stepsBefore = phase === 'evaluating' || phase === 'checkpoint' ? 2 : 0;
    assert.equal(d.step, stepsBefore);
    assert.deepEqual(d.checkpoints.map((c) => c.step), stepsBefore ? [2] : [], 'the steps taken are kept');
    assert.equal(d.logs.filter((l) => l.message.startsWith('cancelled at step')).map((l) => l.message).join(), `cancelled at step ${stepsBefore}`);
  });
}

for (const phase of ['starting', 'quantizing', 'graphs', 'sessions'] as const) {
  test(`a cancel asked while the job is ${phase} ends the run before the next phase`, async (t) => {
    const block = jobs.blockNext(phase === 'starting' ? 'start' : { phase });
    t.after(() => block.release());
    const run = await app.api.startRun({ ...cfg, name: `cancelled while ${phase}` });
    await block.reached();
    assert.equal((await app.api.cancelRun(run.id)).request, 'cancel');
    block.release();
    await status(run.id, 'cancelled');
    assert.equal(phasesOf(run.id).at(-1) ?? 'starting', phase);
    assert.ok(!app.events.some((e) => e.type === 'run-ready' && e.runId === run.id), 'never ready');
  });
}

test('a queued run can be paused: it stays paused, not started, until resumed, then trains', async () => {
  const block = jobs.blockNext({ phase: 'graphs' });
  const first = await app.api.startRun({ ...cfg, name: 'holds the slot' });
  await block.reached();
  const second = await app.api.startRun({ ...cfg, name: 'waits', maxSteps: 2 });
  assert.equal(second.status, 'queued');
  const paused = await app.api.pauseRun(second.id);
  assert.equal(paused.status, 'paused', 'paused at once: it has no job yet');
  assert.equal(paused.request, null);
  const third = await app.api.startRun({ ...cfg, name: 'cancelled in the queue' });
  assert.equal((await app.api.cancelRun(third.id)).status, 'cancelled', 'a queued run is cancelled at once');
  assert.ok((await app.api.runDetails(third.id)).logs.some((l) => l.message === 'cancelled at step 0'));

  await app.api.cancelRun(first.id);
  const spawned = jobs.spawned.length;
  block.release();
  await status(first.id, 'cancelled');
  // The slot is free; the paused run does not take it.
  await app.api.listRuns();
  assert.equal((await app.api.runDetails(second.id)).status, 'paused');
  assert.equal(jobs.spawned.length, spawned, 'no job started for the paused run');
  assert.ok((await app.api.runDetails(second.id)).logs.some((l) => l.message === 'paused while queued: it starts only once resumed'));

  assert.equal((await app.api.resumeRun(second.id)).request, null);
  await status(second.id, 'completed');
  assert.equal((await app.api.runDetails(third.id)).step, 0);
  // Its job lets go of the slot once it has said all (the next test starts on a free slot).
  await until(() => app.services.runs.jobPid(second.id) === undefined, 'the completed run\'s job to end');
});

test('a pause sent the instant the demo starts is honoured, long before its 300 steps', async () => {
  const { run } = await app.api.startDemo({ start: true });
  assert.ok(run);
  const asked = await app.api.pauseRun(run.id);
  assert.equal(asked.status, 'running');
  assert.equal(asked.request, 'pause');
  await status(run.id, 'paused');
  const held = await app.api.runDetails(run.id);
  assert.ok(held.step < 300, `paused at step ${held.step}`);
  // Resumed, it trains on from there; cancelled, it stops.
  const continued = app.events.length;
  assert.equal((await app.api.resumeRun(run.id)).request, 'resume', 'the app shows "resuming…"');
  await app.waitFor((e) => app.events.indexOf(e) >= continued && e.type === 'run-status' && e.runId === run.id && e.status === 'running', 'the run to go on');
  await app.api.cancelRun(run.id);
  const done = await status(run.id, 'cancelled');
  assert.equal(done.error, null);
});
