// Jobs run in their own processes: a training process killed outright (as a native crash in ONNX
// Runtime would end it) leaves its run 'failed' with the reason while the app keeps answering, and
// resumeRun continues from the last checkpoint to the end. Pause holds a run between steps. A
// second run started meanwhile waits 'queued' (one training run at a time), and a run cancelled
// while queued never starts. The killed run is held at known steps (test/helpers/held-job.ts: paused
// after step 2, its process stopped after step 5), so it cannot finish first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FinchEvent, RunStatus } from '../../src-shared/api.js';
import { startApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';
import { until } from '../helpers/wait.js';

type StatusEvent = Extract<FinchEvent, { type: 'run-status' }>;
type LogEvent = Extract<FinchEvent, { type: 'run-log' }>;

test('a training process killed after step 5 of 8 fails its run, the app keeps answering, and the run resumes to the end', async () => {
  const jobs = heldJobs();
  const app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
  const { api } = app;
  try {
    const { config } = await api.startDemo({ start: false });
    const cfg = { ...config, maxSteps: 8, checkpointEvery: 4, samplePrompts: 0 };
    jobs.holdNext([2]);
    const stopped = jobs.blockNext({ step: 5 });
    const run = await api.startRun({ ...cfg, name: 'killed' });
    const queued = await api.startRun({ ...cfg, name: 'waits' });
    assert.equal(queued.status, 'queued', 'one training run at a time');
    const status = (id: string, s: RunStatus) => app.waitFor((e): e is StatusEvent => e.type === 'run-status' && e.runId === id && e.status === s, `run ${id} ${s}`);
    const pausedAt = (step: number) => app.waitFor((e): e is LogEvent => e.type === 'run-log' && e.runId === run.id && e.line.message === `paused at step ${step}`, `"paused at step ${step}" in the log`);
    const steps = () => app.events.filter((e) => e.type === 'run-step' && e.runId === run.id).map((e) => (e as { step: number }).step);

    // Held after step 2: paused, it takes no step until it is resumed.
    await pausedAt(2);
    assert.equal((await api.pauseRun(run.id)).status, 'paused');
    assert.deepEqual(steps(), [1, 2]);
    assert.equal((await api.resumeRun(run.id)).request, 'resume', 'running again once the job goes on');

    // Stopped after step 5, past the checkpoint of step 4: kill the process outright.
    await stopped.reached();
    const pid = app.services.runs.jobPid(run.id);
    assert.ok(pid && pid !== process.pid, 'the run trains in its own process');
    process.kill(pid, 'SIGKILL');
    const failed = await status(run.id, 'failed');
    assert.deepEqual(steps(), [1, 2, 3, 4, 5], 'resumed, the run went on; held, it stopped');
    assert.equal(failed.error?.code, 'job_failed');
    assert.match(failed.error!.message, /ended unexpectedly \(signal SIGKILL\)/);
    assert.match(failed.error!.hint ?? '', /resume/);
    // The app answers, and the queued run has taken the free slot.
    assert.equal((await api.runDetails(run.id)).status, 'failed');
    assert.ok((await api.appInfo()).providers.length > 0);
    await status(queued.id, 'running');
    await api.cancelRun(queued.id);
    await status(queued.id, 'cancelled');
    // Its status follows the trainer's 'done'; its job lets go of the slot a moment later.
    await until(() => app.services.runs.jobPid(queued.id) === undefined, 'the cancelled run\'s job to let go of the training slot');

    const resumed = await api.resumeRun(run.id);
    assert.equal(resumed.status, 'running', 'back through the queue, into the free slot at once');
    await status(run.id, 'completed');
    const d = await api.runDetails(run.id);
    assert.equal(d.step, 8);
    assert.equal(d.error, null);
    assert.deepEqual(d.metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6, 7, 8], 'each step once: the lost step 5 ran again after the checkpoint');
    assert.ok(d.logs.some((l) => /resumed from the checkpoint of step 4/.test(l.message)));

    // Cancelled while queued: never starts. Interrupted or cancelled runs can be resumed; a completed one cannot.
    const later = await api.startRun({ ...cfg, name: 'never' });
    const blocker = await api.startRun({ ...cfg, name: 'blocker' });
    assert.equal((await api.cancelRun(blocker.id)).status, 'cancelled');
    await assert.rejects(api.pauseRun(blocker.id), (e: { code: string }) => e.code === 'conflict');
    await assert.rejects(api.resumeRun(run.id), (e: { code: string }) => e.code === 'conflict');
    await api.cancelRun(later.id);
    await status(later.id, 'cancelled');
  } finally {
    await app.close();
  }
});

test('a run training when the app stops is interrupted after a restart, and resumes from its checkpoint', async () => {
  const jobs = heldJobs();
  const app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
  const { config } = await app.api.startDemo({ start: false });
  const stopped = jobs.blockNext({ step: 3 }); // past its checkpoint of step 2, so that it cannot complete before the app stops
  const run = await app.api.startRun({ ...config, name: 'interrupted', maxSteps: 4, checkpointEvery: 2, samplePrompts: 0 });
  await stopped.reached();
  await app.waitFor((e) => e.type === 'run-step' && e.runId === run.id && e.step === 3, 'step 3');
  assert.ok(app.events.some((e) => e.type === 'run-checkpoint' && e.runId === run.id && e.step === 2));
  await app.close(); // Finch quits mid-run: the job process goes with it

  const again = await startApp('dispatcher', app.home);
  try {
    const found = await again.api.runDetails(run.id);
    assert.equal(found.status, 'interrupted');
    assert.equal(found.step, 3);
    assert.ok(found.logs.some((l) => l.message === 'Finch stopped while this run was training; Resume continues from its checkpoint of step 2.'));
    await again.api.resumeRun(run.id);
    await again.waitFor((e): e is StatusEvent => e.type === 'run-status' && e.runId === run.id && e.status === 'completed', 'the resumed run to complete');
    const d = await again.api.runDetails(run.id);
    assert.deepEqual(d.metrics.map((m) => m.step), [1, 2, 3, 4]);
    assert.ok(d.logs.some((l) => /resumed from the checkpoint of step 2/.test(l.message)), d.logs.map((l) => l.message).join('\n'));
  } finally {
    await again.close();
  }
});
