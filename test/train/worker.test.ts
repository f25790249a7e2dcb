// Training on a worker thread: the caller's event loop keeps running, and pause / resume / cancel
// take effect between steps.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TRAIN_DEFAULTS } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import { startTrainingWorker } from '../../src-main/train/worker.js';
import { mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

test('pause, resume and cancel a run on the training worker while the main thread stays responsive', async () => {
  const model = tinyCheckpoint();
  const work = tempDir();
  const data = writeJsonl(join(work, 'd.jsonl'), mathRows(32));
  const out = join(work, 'run');
  const cfg = { ...TRAIN_DEFAULTS, model, data, out, map: { prompt: 'query', completion: 'response' }, maxSteps: 200, checkpointEvery: 2, threads: 1 };
  const seen: TrainEvent[] = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  let pausedAt = -1;
  const run = startTrainingWorker(cfg, (e) => {
    seen.push(e);
    if (e.event === 'step' && e.step === 3) run.pause();
    if (e.event === 'paused') {
      pausedAt = e.step;
      setTimeout(() => run.resume(), 600);
    }
    if (e.event === 'step' && e.step === 6) run.cancel();
  });
  await run.done;
  clearInterval(timer);

  const kinds = seen.map((e) => e.event);
  // The 600 ms pause alone gives the 10 ms timer dozens of turns when the main thread is free.
  assert.ok(ticks > 20, `the main thread should keep ticking during training (ticks: ${ticks})`);
  // Control messages take effect at a step boundary; how many steps the worker finishes before
  // the message arrives depends on the machine's load, so only the order is asserted.
  assert.ok(pausedAt >= 3 && pausedAt < 200, `paused at step ${pausedAt}`);
  const pauseIdx = kinds.indexOf('paused'), contIdx = kinds.indexOf('continued');
  assert.ok(contIdx === pauseIdx + 1, 'no step runs while paused');
  const steps = seen.filter((e) => e.event === 'step').map((e) => (e as { step: number }).step);
  const last = steps.at(-1)!;
  assert.ok(last >= Math.max(6, pausedAt) && last < 200, `cancel stops the run at a step boundary (last step ${last})`);
  assert.deepEqual(steps, Array.from({ length: last }, (_, i) => i + 1));
  const done = seen.at(-1) as Extract<TrainEvent, { event: 'done' }>;
  assert.equal(done.event, 'done');
  assert.equal(done.status, 'cancelled');
  assert.ok(existsSync(join(out, 'checkpoints', `step-${String(last).padStart(8, '0')}`)), 'the last checkpoint is kept');
});

test('a failing run rejects `done` with the trainer\'s message', async () => {
  const work = tempDir();
  const run = startTrainingWorker({ ...TRAIN_DEFAULTS, model: join(work, 'nope'), data: join(work, 'x.jsonl'), out: join(work, 'o') }, () => {});
  await assert.rejects(run.done, /model folder not found/);
});
