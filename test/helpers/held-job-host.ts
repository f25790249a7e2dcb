// The services' job host (src-main/services/job-host.ts) with test hooks, so that a test holds a
// real job at a known point instead of racing it (started by heldJobs(), held-job.ts; a Node child
// process only: it wraps process.send).
//
//  - FINCH_TEST_HOLD_AFTER_STEPS="2,5": the training run pauses right after those steps, exactly as
//    a pause message from the parent arriving at that moment would (the same message, delivered
//    inside this process while the step's event is sent).
//  - FINCH_TEST_BLOCK='{"at": ..., "file": F}': the whole process stops where `at` happens (its
//    thread waits, as a long native call would hold it) until the file F.release exists; it
//    writes F.reached first. `at` is "start" (before the job host loads: the job is starting),
//    {"phase": P} (a training phase begins), {"event": E} (the trainer sends event E, e.g. "done"),
//    {"step": N} (step N's event is sent) or {"message": T} (a message of type T, e.g.
//    "export-progress"), each the first time it happens.
//  - FINCH_TEST_KILL_AT_RENAME=N: the process kills itself (SIGKILL) as it renames the finished
//    temporary folder of step N's checkpoint into place: a kill in the middle of a checkpoint write.
import fs, { existsSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { basename } from 'node:path';
import type { FromJob } from '../../src-main/services/jobs.js';

export type BlockPoint = 'start' | { phase: string } | { event: string } | { step: number } | { message: string };

const holdAfter = new Set((process.env.FINCH_TEST_HOLD_AFTER_STEPS ?? '').split(',').filter(Boolean).map(Number));
const block = process.env.FINCH_TEST_BLOCK ? JSON.parse(process.env.FINCH_TEST_BLOCK) as { at: BlockPoint; file: string } : null;
let blocked = false;

/** Holds this process's thread until the test releases it. */
function hold(file: string): void {
  writeFileSync(`${file}.reached`, '');
  const wait = new Int32Array(new SharedArrayBuffer(4));
  while (!existsSync(`${file}.release`)) Atomics.wait(wait, 0, 0, 5);
}

function matches(at: BlockPoint, m: FromJob): boolean {
  if (at === 'start') return false;
  if ('message' in at) return m.type === at.message;
  if (m.type !== 'train') return false;
  if ('phase' in at) return m.event.event === 'phase' && m.event.phase === at.phase;
  if ('event' in at) return m.event.event === at.event;
  return m.event.event === 'step' && m.event.step === at.step;
}

const send = process.send!.bind(process) as (m: unknown) => boolean;
process.send = ((m: FromJob) => {
  const sent = send(m);
  if (m.type === 'train' && m.event.event === 'step' && holdAfter.has(m.event.step)) process.emit('message', { op: 'pause' }, undefined);
  if (block && !blocked && matches(block.at, m)) {
    blocked = true;
    hold(block.file);
  }
  return sent;
}) as typeof process.send;

const killAt = process.env.FINCH_TEST_KILL_AT_RENAME;
if (killAt) {
  const rename = fs.renameSync;
  fs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    if (basename(String(to)) === `step-${killAt.padStart(8, '0')}` && basename(String(from)).startsWith('.tmp-')) process.kill(process.pid, 'SIGKILL');
    return rename(from, to);
  }) as typeof fs.renameSync;
  syncBuiltinESMExports(); // the trainer's `import { renameSync } from 'node:fs'` sees it too
}

if (block?.at === 'start') {
  blocked = true;
  hold(block.file);
}
await import('../../src-main/services/job-host.js');
