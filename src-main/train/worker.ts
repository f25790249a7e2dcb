// A training run on its own worker thread. session.run blocks the thread it runs on, so the app's
// main process (and the browser-mode server) never trains on its own thread: it starts a run here,
// receives progress events, and sends pause / resume / cancel.
//
//   const run = startTrainingWorker(cfg, (e) => store(e));
//   run.pause(); run.resume(); run.cancel();
//   await run.done;            // resolves after the "done" event, rejects with the run's error
//
// This one file is both sides: on the worker (workerData marker) it runs the trainer; elsewhere it
// only exports the client.

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { startWorker } from '../engine/runtime/worker.js';
import type { TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import type { TrainControl } from './trainer.js';

const MARKER = 'finch.trainingWorker';

type ToWorker = { op: 'pause' } | { op: 'resume' } | { op: 'cancel' };
type FromWorker = { kind: 'event'; event: TrainEvent } | { kind: 'finished' } | { kind: 'failed'; name: string; message: string };

export interface TrainingHandle {
  pause(): void;
  resume(): void;
  /** Stops after the current step; the last checkpoint stays (done resolves with status 'cancelled'). */
  cancel(): void;
  done: Promise<void>;
}

export function startTrainingWorker(cfg: TrainConfig, onEvent: (e: TrainEvent) => void): TrainingHandle {
  const worker = startWorker(new URL(import.meta.url), { workerData: { marker: MARKER, cfg }, name: 'finch-training' });
  const done = new Promise<void>((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: FromWorker) => {
      if (m.kind === 'event') onEvent(m.event);
      else if (m.kind === 'finished') { settled = true; resolve(); void worker.terminate(); }
      else {
        settled = true;
        const err = new Error(m.message);
        err.name = m.name;
        reject(err);
        void worker.terminate();
      }
    });
    worker.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    worker.on('exit', (code) => { if (!settled) { settled = true; reject(new Error(`the training worker exited with code ${code}`)); } });
  });
  const send = (m: ToWorker) => worker.postMessage(m);
  return { pause: () => send({ op: 'pause' }), resume: () => send({ op: 'resume' }), cancel: () => send({ op: 'cancel' }), done };
}

// ---- the worker side ---------------------------------------------------------------------------

if (!isMainThread && (workerData as { marker?: string } | null)?.marker === MARKER) {
  const port = parentPort!;
  const control: TrainControl = { paused: false, cancelled: false };
  port.on('message', (m: ToWorker) => {
    if (m.op === 'pause') control.paused = true;
    else if (m.op === 'resume') control.paused = false;
    else control.cancelled = true;
  });
  const { train } = await import('./trainer.js');
  const { cfg } = workerData as { cfg: TrainConfig };
  try {
    await train(cfg, (event) => port.postMessage({ kind: 'event', event } satisfies FromWorker), control);
    port.postMessage({ kind: 'finished' } satisfies FromWorker);
  } catch (e) {
    const err = e as Error;
    port.postMessage({ kind: 'failed', name: err.name ?? 'Error', message: err.message ?? String(e) } satisfies FromWorker);
  }
}
