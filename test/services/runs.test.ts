// Runs refuse what cannot work, with the reason and what to do (services/runs.ts, system.ts):
// a sequence length beyond the model's positions; a run whose memory verdict is "will not fit"
// (unless ignoreMemoryEstimate says start anyway, and then it can still be cancelled while it
// builds its graphs); a resume whose run folder was deleted. Run folders are unique whatever the
// name and timing, and entries of FINCH_HOME/runs that are not runs (a dangling link, a file, a
// run.json that fails its checks) are skipped with one log line each and never break listRuns.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FinchEvent, RunConfig, RunStatus } from '../../src-shared/api.js';
import { newRunId } from '../../src-main/store/paths.js';
import { failure, startApp, type TestApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';

type StatusEvent = Extract<FinchEvent, { type: 'run-status' }>;
const COMPAT = new URL('../fixtures/compat-2026-12-07/', import.meta.url).pathname;

const jobs = heldJobs();
let app: TestApp;
let cfg: RunConfig;
const warnings: string[] = [];
const warn = console.warn;
before(async () => {
  console.warn = (...a: unknown[]) => { warnings.push(a.join(' ')); };
  app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
  ({ config: cfg } = await app.api.startDemo({ start: false }));
  cfg = { ...cfg, maxSteps: 2, samplePrompts: 0, threads: 1 };
});
after(async () => {
  console.warn = warn;
  await app.close();
});

const status = (id: string, s: RunStatus) => app.waitFor((e): e is StatusEvent => e.type === 'run-status' && e.runId === id && e.status === s, `run ${id} ${s}`);

test('a sequence length beyond the model\'s positions is refused by startRun, naming the field and what to set', async () => {
  const f = await failure(app.api.startRun({ ...cfg, seqLen: 1024 }));
  assert.equal(f.code, 'invalid_argument');
  assert.equal(f.field, '0.seqLen');
  assert.match(f.message, /a sequence length of 1024 tokens is more than .*assets\/demo\/model takes: its max_position_embeddings is 512/);
  assert.equal(f.hint, 'set the sequence length to 512 or less');
  assert.deepEqual(await app.api.listRuns(), [], 'nothing queued');
});

test('a run that will not fit in memory is refused with the estimate and the suggestions; told to start anyway, it can be cancelled while it builds its graphs', async () => {
  const huge = { ...cfg, seqLen: 512, batch: 4096, quantize: false, name: 'too big' };
  const est = await app.api.estimateMemory(huge);
  assert.ok(est.hostBytes > totalmem(), `the estimate (${est.hostBytes} bytes) exceeds this machine's memory`);
  assert.equal(est.verdict, 'will-not-fit');
  const f = await failure(app.api.startRun(huge));
  assert.equal(f.code, 'conflict');
  assert.equal(f.field, '0.ignoreMemoryEstimate');
  assert.match(f.message, /^this run needs about [\d.]+ [GT]iB of memory, and [\d.]+ [GM]iB is free: it will not fit$/);
  assert.match(f.hint ?? '', /^try: .*: [\d.]+ [GM]iB; .*halve the batch to 2048 .*\. To start it anyway, set ignoreMemoryEstimate \(--ignore-memory-estimate\)/);
  assert.deepEqual(await app.api.listRuns(), []);

  const block = jobs.blockNext({ phase: 'graphs' });
  const run = await app.api.startRun({ ...huge, ignoreMemoryEstimate: true });
  await block.reached();
  assert.equal((await app.api.cancelRun(run.id)).request, 'cancel');
  block.release();
  await status(run.id, 'cancelled');
  assert.ok(!app.events.some((e) => e.type === 'run-phase' && e.runId === run.id && e.phase === 'sessions'), 'cancelled once its graphs were built, before its sessions');
});

test('two runs of one name started in the same second get folders of their own, beside a folder already there', async () => {
  // A folder with the name the next run would take (as a `finch train --out` could have made).
  const taken = join(app.home, 'runs', newRunId('same name'));
  mkdirSync(taken, { recursive: true });
  const block = jobs.blockNext('start');
  const a = await app.api.startRun({ ...cfg, name: 'same name' });
  const b = await app.api.startRun({ ...cfg, name: 'same name' });
  assert.notEqual(a.dir, b.dir);
  for (const r of [a, b]) {
    assert.ok(existsSync(r.dir), `${r.dir} was made for the run`);
    assert.notEqual(r.dir, taken);
    assert.match(basename(r.dir), /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-same-name(-\d+)?$/);
  }
  await block.reached();
  await app.api.cancelRun(b.id);
  await app.api.cancelRun(a.id);
  block.release();
  await status(a.id, 'cancelled');
  assert.equal((await app.api.runDetails(b.id)).status, 'cancelled');
});

test('resuming a run whose folder was deleted says so and offers a fresh start', async () => {
  const block = jobs.blockNext({ phase: 'training' });
  const run = await app.api.startRun({ ...cfg, name: 'folder deleted' });
  await block.reached();
  await app.api.cancelRun(run.id);
  block.release();
  await status(run.id, 'cancelled');
  rmSync(run.dir, { recursive: true });
  const f = await failure(app.api.resumeRun(run.id));
  assert.equal(f.code, 'conflict');
  assert.equal(f.message, `the folder of run "folder deleted" is gone (${run.dir}): its checkpoints went with it, so it cannot resume`);
  assert.match(f.hint ?? '', /start it again from step 0 as a new run with the same settings/);
  assert.equal((await app.api.runDetails(run.id)).status, 'cancelled', 'left as it was');
});

test('entries of the runs folder that are not runs are skipped with one log line each; the runs beside them are listed', async () => {
  const runs = join(app.home, 'runs');
  cpSync(join(COMPAT, 'float'), join(runs, 'good'), { recursive: true });
  symlinkSync(join(app.home, 'nowhere'), join(runs, 'dangling'));
  writeFileSync(join(runs, 'notes.txt'), 'not a run');
  mkdirSync(join(runs, 'no-record'));
  // A run.json with a string where a loss goes, and one whose demo.json lies.
  cpSync(join(COMPAT, 'float'), join(runs, 'string-loss'), { recursive: true });
  const rec = JSON.parse(readFileSync(join(runs, 'string-loss', 'run.json'), 'utf8')) as { losses: { loss: unknown }[] };
  rec.losses[0]!.loss = '3.2';
  writeFileSync(join(runs, 'string-loss', 'run.json'), JSON.stringify(rec));
  cpSync(join(COMPAT, 'float'), join(runs, 'bad-demo'), { recursive: true });
  writeFileSync(join(runs, 'bad-demo', 'demo.json'), JSON.stringify({ base_accuracy: 'high', tuned_accuracy: 1, rows: [] }));

  warnings.length = 0;
  const listed = await app.api.listRuns();
  const names = listed.map((r) => r.name);
  assert.ok(names.includes('good'));
  for (const bad of ['dangling', 'notes.txt', 'no-record', 'string-loss', 'bad-demo']) assert.ok(!names.includes(bad), `${bad} is not listed`);
  const good = listed.find((r) => r.name === 'good')!;
  assert.equal(good.status, 'completed');
  assert.equal(typeof good.loss, 'number');
  const about = (name: string) => warnings.filter((w) => w.includes(join(runs, name)));
  assert.match(about('dangling').join(), /skipped .*dangling in the runs folder: a link to nothing \(its target is gone\)/);
  assert.match(about('notes.txt').join(), /not a folder/);
  assert.match(about('string-loss').join(), /string-loss\/run\.json: losses\.0\.loss: Invalid input: expected number, received string/);
  assert.match(about('bad-demo').join(), /bad-demo\/demo\.json: base_accuracy: /);
  assert.deepEqual(about('no-record'), [], 'a folder without run.json may be a run just starting: not worth a line');
  assert.equal(warnings.length, 4, warnings.join('\n'));

  // Listed again: the same entries are not reported again.
  await app.api.listRuns();
  assert.equal(warnings.length, 4);
});
