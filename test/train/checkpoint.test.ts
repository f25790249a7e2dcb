// What a run leaves and reads back (train/checkpoint.ts): a resume refuses data that differs from
// what its checkpoint was trained on, naming what changed, down to one edited row of the same
// length (a content hash of the prepared rows); a checkpoint written before Finch recorded that
// hash resumes as it did then (its counts) and records the hash from then on; the temporary folder
// of a checkpoint a killed process was writing is gone after the next start, which resumes from
// the previous checkpoint; and run.json / trainer_state.json are checked like input, naming the
// field at fault.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { latestCheckpoint, readRunFile, readState } from '../../src-main/train/checkpoint.js';
import { type TrainControl, train } from '../../src-main/train/trainer.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import { mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
after(() => rmSync(work, { recursive: true, force: true }));
const rows = mathRows(40);

const config = (out: string, data: string, over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TRAIN_DEFAULTS, model, data, out: join(work, out), map: { prompt: 'query', completion: 'response' },
  batch: 4, lr: 5e-3, maxSteps: 4, valFraction: 0.1, checkpointEvery: 2, seed: 3, threads: 1, provider: 'cpu', ...over,
});

async function run(cfg: TrainConfig, control?: TrainControl) {
  const events: TrainEvent[] = [];
  let error: Error | null = null;
  await train(cfg, (e) => { events.push(e); if (e.event === 'checkpoint' && e.step === 2 && control) control.cancelled = true; }, control).catch((e: Error) => { error = e; });
  return { events, error: error as Error | null };
}

/** A run stopped after its checkpoint of step 2 (cancelled there), on `data`. */
async function stoppedAt2(name: string, data: string): Promise<TrainConfig> {
  const cfg = config(name, data);
  const r = await run(cfg, { paused: false, cancelled: false });
  assert.equal(r.error, null);
  assert.equal(readState(latestCheckpoint(cfg.out)!).step, 2);
  return cfg;
}

test('a resume on a dataset with one row edited (same length, same counts) is refused, naming what changed; on the same data it goes on', async () => {
  const data = writeJsonl(join(work, 'edited.jsonl'), rows);
  const cfg = await stoppedAt2('edited', data);
  const state = readState(latestCheckpoint(cfg.out)!);
  assert.match(state.datasetHashes?.train ?? '', /^[0-9a-f]{64}$/);
  // "What is 3 plus 4?" -> "What is 3 plus 5?": one token differs, every count stays.
  const edited = rows.map((r, i) => (i === 13 ? { query: r.query.replace(/plus (\d)/, (_, d) => `plus ${(Number(d) + 1) % 10}`), response: r.response } : r));
  assert.notDeepEqual(edited[13], rows[13]);
  writeJsonl(data, edited);
  const refused = await run(cfg);
  assert.match(refused.error?.message ?? '', /the prepared dataset differs from the one the run's checkpoint .*step-00000002 was trained on: the content of the (training|validation) rows \(the same 36 training and 4 validation sequences .*a row was edited\)/);
  assert.match((refused.error as Error & { hint: string }).hint, /resume with the data the run started with, or start a new run/);
  assert.ok(!refused.events.some((e) => e.event === 'phase' && e.phase === 'graphs'), 'refused before building graphs');

  // One more row: the counts say it.
  writeJsonl(data, [...rows, ...mathRows(41).slice(40)]);
  assert.match((await run(cfg)).error?.message ?? '', /training sequences 36 then, 37 now|validation sequences 4 then, \d+ now/);

  writeJsonl(data, rows);
  const resumed = await run(cfg);
  assert.equal(resumed.error, null);
  assert.ok(resumed.events.some((e) => e.event === 'resumed' && e.step === 2));
});

test('a checkpoint from before the content hash resumes on its counts, as then, and records the hash from then on', async () => {
  const data = writeJsonl(join(work, 'old.jsonl'), rows);
  const cfg = await stoppedAt2('old-style', data);
  // As Finch wrote it before: the counts only (test/fixtures/compat-2026-12-07/killed is one such).
  const file = join(latestCheckpoint(cfg.out)!, 'trainer_state.json');
  const { datasetHashes: _dropped, ...old } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(old));
  assert.equal(readState(latestCheckpoint(cfg.out)!).datasetHashes, undefined);
  const r = await run(cfg);
  assert.equal(r.error, null);
  assert.ok(r.events.some((e) => e.event === 'resumed' && e.step === 2));
  assert.match(readState(latestCheckpoint(cfg.out)!).datasetHashes?.train ?? '', /^[0-9a-f]{64}$/, 'the next checkpoint records the hash');
});

test('the temporary folder of a checkpoint a killed process was writing is removed at the next start, which resumes from the previous checkpoint', async () => {
  const data = writeJsonl(join(work, 'tmp.jsonl'), rows);
  const cfg = await stoppedAt2('unfinished', data);
  // What a kill while writing step 4's checkpoint leaves: the adapter written, the rest not.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const root = join(cfg.out, 'checkpoints');
  const unfinished = join(root, `.tmp-step-00000004-${dead}`);
  mkdirSync(unfinished);
  cpSync(join(latestCheckpoint(cfg.out)!, 'adapter_model.safetensors'), join(unfinished, 'adapter_model.safetensors'));
  // One of a process still running (this one's parent) is not touched.
  const live = join(root, `.tmp-step-00000004-${process.ppid}`);
  mkdirSync(live);
  assert.equal(latestCheckpoint(cfg.out), join(root, 'step-00000002'), 'the unfinished one does not count');

  const r = await run(cfg);
  assert.equal(r.error, null);
  assert.ok(r.events.some((e) => e.event === 'note' && e.message === `removed .tmp-step-00000004-${dead}, a checkpoint a stopped process had not finished writing`));
  assert.ok(r.events.some((e) => e.event === 'resumed' && e.step === 2));
  assert.ok(!existsSync(unfinished));
  assert.ok(existsSync(live));
  rmSync(live, { recursive: true });
  assert.deepEqual(readdirSync(root).sort(), ['step-00000002', 'step-00000004']);
});

test('run.json and trainer_state.json are checked like input: a field of the wrong type is refused naming the file and field', () => {
  const dir = join(work, 'bad-files');
  mkdirSync(join(dir, 'step'), { recursive: true });
  const cfg = { ...config('x', 'data.jsonl') };
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: cfg, status: 'completed', losses: [{ step: 1, loss: '0.5' }] }));
  assert.throws(() => readRunFile(join(dir, 'run.json')), /run\.json: losses\.0\.loss: Invalid input: expected number, received string/);
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: cfg, status: 'done' }));
  assert.throws(() => readRunFile(join(dir, 'run.json')), /run\.json: status: /);
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { ...cfg, lr: 'fast' }, status: 'completed' }));
  assert.throws(() => readRunFile(join(dir, 'run.json')), /run\.json: config\.lr: must be a number/);
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: cfg, status: 'completed', device: { provider: 'cpu', reason: 'asked' }, step: 4, losses: [{ step: 1, loss: 0.5 }] }));
  assert.equal(readRunFile(join(dir, 'run.json')).losses?.[0]?.loss, 0.5);

  writeFileSync(join(dir, 'step', 'trainer_state.json'), JSON.stringify({ step: -1, config: cfg, losses: [], evals: [], datasetFingerprint: '1:1:1:8' }));
  assert.throws(() => readState(join(dir, 'step')), /trainer_state\.json: step: /);
  writeFileSync(join(dir, 'step', 'trainer_state.json'), JSON.stringify({ step: 1, config: cfg, losses: [], evals: [], datasetFingerprint: 'abc' }));
  assert.throws(() => readState(join(dir, 'step')), /trainer_state\.json: datasetFingerprint: must be train:validation:tokens:T/);
});
