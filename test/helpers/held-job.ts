// Jobs a test can hold at a known point: the services' default job (a Node child process running
// job-host.ts) with the hooks of held-job-host.ts, so that a test pauses, stops, kills or inspects
// a job in a given phase, with no race against a fast run.
//
//   const jobs = heldJobs();
//   const app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
//   jobs.holdNext([5]);                             // the next training job pauses after its step 5 ("paused at step 5")
//   const b = jobs.blockNext({ phase: 'graphs' });  // the next training job stops as it begins building graphs
//   await b.reached; ...; b.release();              // ... and goes on
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forkJob, forkJobHost, type JobHandle, type JobKind, type SpawnJob } from '../../src-main/services/jobs.js';
import type { BlockPoint } from './held-job-host.js';
import { until } from './wait.js';

const HOST = new URL('./held-job-host.ts', import.meta.url);

export interface Block {
  /** Resolves once the job has stopped there (fails after `ms`, naming the point). */
  reached(ms?: number): Promise<void>;
  /** Lets the job go on. */
  release(): void;
}

export interface HeldJobs {
  spawn: SpawnJob;
  /** The next training job (only that one) pauses right after each of these steps. */
  holdNext(steps: number[]): void;
  /** The next job of `kind` (default: training) stops where `at` happens, until released. */
  blockNext(at: BlockPoint, kind?: JobKind): Block;
  /** The next training job kills itself (SIGKILL) while it puts step N's finished checkpoint in place. */
  killNextAtCheckpoint(step: number): void;
  /** Every job spawned, in order, with its kind. */
  spawned: { kind: JobKind; job: JobHandle }[];
}

export function heldJobs(): HeldJobs {
  let steps: number[] | null = null;
  let killAt: number | null = null;
  const blocks = new Map<JobKind, { at: BlockPoint; file: string }>();
  const spawned: HeldJobs['spawned'] = [];
  const spawn: SpawnJob = (kind, payload) => {
    const env: Record<string, string> = {};
    if (kind === 'train' && steps) env.FINCH_TEST_HOLD_AFTER_STEPS = steps.join(',');
    if (kind === 'train' && killAt !== null) env.FINCH_TEST_KILL_AT_RENAME = String(killAt);
    const b = blocks.get(kind);
    if (b) env.FINCH_TEST_BLOCK = JSON.stringify(b);
    if (kind === 'train') { steps = null; killAt = null; }
    blocks.delete(kind);
    const job = Object.keys(env).length ? forkJobHost(HOST, env)(kind, payload) : forkJob(kind, payload);
    spawned.push({ kind, job });
    return job;
  };
  return {
    spawn,
    spawned,
    holdNext: (s) => { steps = s; },
    killNextAtCheckpoint: (step) => { killAt = step; },
    blockNext: (at, kind = 'train') => {
      const file = join(mkdtempSync(join(tmpdir(), 'finch-block-')), 'block');
      blocks.set(kind, { at, file });
      return {
        reached: (ms = 180_000) => until(() => existsSync(`${file}.reached`), `the ${kind} job to stop at ${JSON.stringify(at)}`, ms),
        release: () => writeFileSync(`${file}.release`, ''),
      };
    },
  };
}
