// `finch serve` as the e2e tests in Chromium run it: the real command (renderer build, services,
// server), with two test hooks on how its training jobs are hosted, set by the environment:
//  - FINCH_TEST_HOLD_FILE: before a run starts, the test writes a step to this file ("3"); the next
//    training job's process stops right after that step's event (held-job.ts blockNext: its thread
//    waits, as a long step would hold it) and the file is consumed, so later runs train freely. The
//    service still sees the run 'running' at that step: stopping the server there is a stop in the
//    middle of training, with no race against a fast run. (A pause would not do: a paused run stays
//    paused when Finch stops.)
//  - FINCH_TEST_DEMO_STEPS: "Try the demo" trains this many steps instead of the recipe's 300 (its
//    warm-up and checkpoint scaled alike), so the demo's whole flow fits a test on a busy machine.
//
//   node --import tsx test/helpers/e2e-serve.ts --port N      (env: FINCH_HOME and the above)
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { run } from '../../src-main/cli/commands/serve.js';
import { DEMO_TRAIN } from '../../src-main/services/demo.js';
import type { SpawnJob, TrainPayload } from '../../src-main/services/jobs.js';
import { heldJobs } from './held-job.js';

const holdFile = process.env.FINCH_TEST_HOLD_FILE;
const demoSteps = process.env.FINCH_TEST_DEMO_STEPS ? Number(process.env.FINCH_TEST_DEMO_STEPS) : null;
const jobs = heldJobs();

const spawnJob: SpawnJob = (kind, payload) => {
  if (kind !== 'train') return jobs.spawn(kind, payload);
  if (holdFile && existsSync(holdFile)) {
    jobs.blockNext({ step: Number(readFileSync(holdFile, 'utf8').trim()) }); // never released: the test stops the server there
    rmSync(holdFile);
  }
  const train = payload as TrainPayload;
  if (demoSteps && train.config.data === DEMO_TRAIN) {
    const config = { ...train.config, maxSteps: demoSteps, warmupSteps: Math.min(10, Math.floor(demoSteps / 10)), checkpointEvery: demoSteps };
    return jobs.spawn(kind, { ...train, config });
  }
  return jobs.spawn(kind, payload);
};

process.exitCode = await run(process.argv.slice(2), { spawnJob });
