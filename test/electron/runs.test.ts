// src-main/electron/runs.ts with a faked electron module, driven by back-end events through the
// real dispatcher: the system stays awake exactly while a run trains, a notification says when a
// run completes or fails, and quitting with a run training asks, then cancels the run (which
// checkpoints it) and quits only once it has stopped; a paused run (checkpointed by its pause) is
// left as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installFakeElectron } from '../helpers/electron-loader.js';
import type { ApiCalls, FinchEvent, RunStatus } from '../../src-shared/api.js';

const { app, BrowserWindow, fake } = await installFakeElectron();
const { RunWatch } = await import('../../src-main/electron/runs.js');
const { createDispatcher } = await import('../../src-main/services/dispatch.js');

const listeners = new Set<(e: FinchEvent) => void>();
const emit = (e: FinchEvent) => { for (const l of listeners) l(e); };
const status = (runId: string, s: RunStatus, message?: string): FinchEvent =>
  ({ type: 'run-status', runId, status: s, error: message ? { code: 'job_failed', message, hint: null } : null });
const cancelled: string[] = [];
/** cancelRun as the services do it: the job stops after its step, checkpoints, then reports 'cancelled'. */
const services = {
  runDetails: async (id: string) => ({ name: `run ${id}` }),
  cancelRun: async (id: string) => {
    cancelled.push(id);
    setTimeout(() => emit(status(id, 'cancelled')), 30);
    return { id };
  },
} as unknown as ApiCalls;
const dispatcher = createDispatcher(services, { subscribe: (l) => { listeners.add(l); return () => listeners.delete(l); } });
const win = new BrowserWindow({});
const watch = new RunWatch(dispatcher, () => win as never);
watch.installQuitGuard();
const settle = () => new Promise((r) => setTimeout(r, 20));

test('the system is kept awake exactly while a run trains', () => {
  assert.equal(watch.keepingAwake, false);
  emit(status('a', 'running'));
  assert.equal(watch.keepingAwake, true);
  assert.deepEqual([...fake.powerBlockers.values()], ['prevent-app-suspension']);
  emit(status('b', 'running'));
  assert.equal(fake.powerBlockers.size, 1, 'one blocker for any number of runs');
  emit(status('a', 'paused'));
  assert.equal(watch.keepingAwake, true, 'b still trains');
  emit(status('b', 'completed'));
  assert.equal(watch.keepingAwake, false, 'a is paused: nothing trains');
  assert.equal(fake.powerBlockers.size, 0);
  emit(status('a', 'cancelled'));
});

test('a notification says when a run completes or fails, with its name', async () => {
  fake.notifications.length = 0;
  emit({ type: 'run-done', runId: 'r1', status: 'completed', adapter: '/runs/r1/adapter', steps: 300, loss: 0.5, eval_loss: null });
  emit(status('r2', 'failed', 'the training process crashed (exit code 134)'));
  emit({ type: 'run-done', runId: 'r3', status: 'cancelled', adapter: '/runs/r3/checkpoints/step-00000010', steps: 10, loss: 1, eval_loss: null });
  await settle();
  assert.deepEqual(fake.notifications, [
    { title: 'Finch: "run r1" finished', body: 'Adapter saved to /runs/r1/adapter' },
    { title: 'Finch: "run r2" failed', body: 'the training process crashed (exit code 134)' },
  ]);
});

test('quitting with no run in progress quits at once', () => {
  const before = fake.quitCount;
  app.quit();
  assert.equal(fake.quitCount, before + 1);
  assert.equal(fake.messageBoxes.length, 0);
});

test('quitting while a run trains asks; "Keep training" keeps the app and the run', async () => {
  emit(status('t1', 'running'));
  const before = fake.quitCount;
  fake.messageBoxResponses.push(1);
  app.quit();
  await settle();
  assert.equal(fake.messageBoxes.length, 1);
  assert.match(String(fake.messageBoxes[0]!.message), /A run is training/);
  assert.deepEqual(fake.messageBoxes[0]!.buttons, ['Save a checkpoint and quit', 'Keep training']);
  assert.equal(fake.quitCount, before, 'still running');
  assert.deepEqual(cancelled, []);
  assert.deepEqual(watch.activeRuns(), ['t1']);
});

test('"Save a checkpoint and quit" cancels every training run and quits once they have stopped; a paused run stays paused', async () => {
  emit(status('t2', 'running'));
  emit(status('p1', 'paused')); // its pause wrote a checkpoint: nothing to save
  const before = fake.quitCount;
  fake.messageBoxResponses.push(0);
  app.quit();
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(cancelled.sort(), ['t1', 't2']);
  assert.equal(fake.quitCount, before, 'waits for the checkpoints');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(watch.activeRuns(), []);
  assert.equal(fake.quitCount, before + 1);
  assert.equal(watch.keepingAwake, false);
});
