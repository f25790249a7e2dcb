// The services' job host (src-main/services/job-host.ts) with one test hook: the training run
// pauses right after each step named in FINCH_TEST_HOLD_AFTER_STEPS (e.g. "2,5"), exactly as a
// pause message from the parent arriving at that moment would (the same message, delivered inside
// this process while the step's event is sent). A test thus holds a run at a known step instead of
// racing it: a run of 8 steps cannot finish before the test kills it after step 5.
// Started by heldJobs() (held-job.ts); a Node child process only (it wraps process.send).
import type { FromJob } from '../../src-main/services/jobs.js';

const holdAfter = new Set((process.env.FINCH_TEST_HOLD_AFTER_STEPS ?? '').split(',').filter(Boolean).map(Number));
const send = process.send!.bind(process) as (m: unknown) => boolean;
process.send = ((m: FromJob) => {
  const sent = send(m);
  if (m.type === 'train' && m.event.event === 'step' && holdAfter.has(m.event.step)) process.emit('message', { op: 'pause' }, undefined);
  return sent;
}) as typeof process.send;

await import('../../src-main/services/job-host.js');
