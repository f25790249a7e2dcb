// Training jobs a test can hold at a step: the services' default job (a Node child process running
// job-host.ts) whose run pauses itself right after the steps given for it (held-job-host.ts), so
// that a test pauses, kills or inspects a run at a known step, with no race against a fast run.
//
//   const jobs = heldJobs();
//   const app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
//   jobs.holdNext([5]);        // the next training job pauses after its step 5 ("paused at step 5" in the run log)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../../src-main/engine/runtime/worker.js';
import { forkJob, type FromJob, type JobHandle, type SpawnJob } from '../../src-main/services/jobs.js';

const HOST = new URL('./held-job-host.ts', import.meta.url);

export interface HeldJobs {
  spawn: SpawnJob;
  /** The next training job (only that one) pauses right after each of these steps. */
  holdNext(steps: number[]): void;
}

export function heldJobs(): HeldJobs {
  let next: number[] | null = null;
  const spawn: SpawnJob = (kind, payload) => {
    if (kind !== 'train' || !next) return forkJob(kind, payload);
    const steps = next;
    next = null;
    const child = fork(fileURLToPath(HOST), [], {
      execArgv: nodeArgsFor(HOST),
      env: { ...process.env, FINCH_TEST_HOLD_AFTER_STEPS: steps.join(',') },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    const handle: JobHandle = {
      pid: child.pid,
      send: (msg) => { if (child.connected) child.send(msg); },
      onMessage: (l) => { child.on('message', (m) => l(m as FromJob)); },
      onExit: (l) => { child.once('exit', (code, signal) => l(code, signal)); },
      kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); },
    };
    handle.send({ op: 'start', kind, payload });
    return handle;
  };
  return { spawn, holdNext: (steps) => { next = steps; } };
}
