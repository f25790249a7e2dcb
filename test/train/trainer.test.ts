// The fine-tuning run end to end through `finch train`: loss falls, a run killed with SIGKILL
// resumes from its last checkpoint onto the same loss curve, gradient accumulation, the NaN
// guard, and refusing to overwrite a run. Checkpoints are read back: a checkpoint holds the
// adapter and AdamW moments an uninterrupted run had at that step, and the run resumed from it
// ends with the uninterrupted run's adapter and moments.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { train } from '../../src-main/train/trainer.js';
import { TRAIN_DEFAULTS } from '../../src-shared/run-config.js';
import { events, finch, mathRows, tempDir, tinyCheckpoint, useFinchHome, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
const data = writeJsonl(join(work, 'math.jsonl'), mathRows(64));
const common = ['--model', model, '--data', data, '--map', 'prompt=query,completion=response', '--batch', '4', '--lr', '5e-3',
  '--dropout', '0.1', '--val-fraction', '0.1', '--seed', '3', '--threads', '1', '--json'];
const stepLosses = (stdout: string) => new Map(events(stdout).filter((e) => e.event === 'step').map((e) => [e.step as number, e.loss as number]));
const stepDir = (out: string, step: number) => join(out, 'checkpoints', `step-${String(step).padStart(8, '0')}`);

/** Every tensor of a .safetensors file, as float32 values by name. */
function tensorsOf(file: string): Map<string, Float32Array> {
  const c = Checkpoint.open(file);
  try {
    return new Map(c.names().map((n) => [n, c.readTensor(n)]));
  } finally {
    c.close();
  }
}

/** The same tensor names, and every value identical (a resumed run repeats the arithmetic exactly). */
function assertSameTensors(actual: string, expected: string): void {
  const a = tensorsOf(actual), e = tensorsOf(expected);
  assert.deepEqual([...a.keys()].sort(), [...e.keys()].sort(), `${actual}: tensor names`);
  assert.ok(a.size > 0, `${actual} holds tensors`);
  for (const [name, want] of e) {
    const got = a.get(name)!;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst === 0 && got.length === want.length, `${actual}: ${name} differs from ${expected} by up to ${worst}`);
  }
}

test('loss falls and the final adapter is written in PEFT format', async () => {
  const out = join(work, 'run-a');
  const r = await finch(['train', ...common, '--out', out, '--max-steps', '40', '--checkpoint-every', '20']);
  assert.equal(r.code, 0, r.stderr);
  const losses = [...stepLosses(r.stdout).values()];
  const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5, tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
  assert.ok(tail < head * 0.9, `loss should fall: first ${head.toFixed(3)}, last ${tail.toFixed(3)}`);
  const done = events(r.stdout).at(-1)!;
  assert.equal(done.event, 'done');
  assert.equal(done.adapter, out);
  assert.ok(existsSync(join(out, 'adapter_config.json')) && existsSync(join(out, 'adapter_model.safetensors')));
  assert.ok(events(r.stdout).some((e) => e.event === 'eval'));
  // The final adapter is the last checkpoint's, and training moved it: every lora_B left zero.
  assertSameTensors(join(out, 'adapter_model.safetensors'), join(stepDir(out, 40), 'adapter_model.safetensors'));
  for (const [name, b] of tensorsOf(join(out, 'adapter_model.safetensors'))) {
    if (name.includes('lora_B')) assert.ok(b.some((x) => x !== 0), `${name} was trained`);
  }
});

test('a run killed with SIGKILL resumes from its last checkpoint with the same loss curve, adapter and moments', async () => {
  const STEPS = 40, EVERY = 20; // two checkpoints (the default keeps two): at 20 and at the end
  const uninterrupted = join(work, 'uninterrupted');
  const full = await finch(['train', ...common, '--out', uninterrupted, '--max-steps', String(STEPS), '--checkpoint-every', String(EVERY)]);
  assert.equal(full.code, 0, full.stderr);
  const reference = stepLosses(full.stdout);

  // Killed once its first checkpoint is written; the next one would be the run's end.
  const out = join(work, 'killed');
  let killed = false;
  const first = await finch(['train', ...common, '--out', out, '--max-steps', String(STEPS), '--checkpoint-every', String(EVERY)], (line, kill) => {
    if (!killed && line.includes('"event":"checkpoint"')) { killed = true; kill(); }
  });
  assert.ok(killed, 'the run should have been killed after its first checkpoint');
  assert.notEqual(first.code, 0, 'the run was killed before it finished');
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).filter((n) => /^step-\d+$/.test(n)), ['step-00000020']);
  // Read back, the checkpoint holds what the uninterrupted run had at step 20: adapter, moments, losses.
  for (const f of ['adapter_model.safetensors', 'optimizer.safetensors']) assertSameTensors(join(stepDir(out, EVERY), f), join(stepDir(uninterrupted, EVERY), f));
  const state = (dir: string) => JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')) as { step: number; losses: unknown[] };
  assert.equal(state(stepDir(out, EVERY)).step, EVERY);
  assert.deepEqual(state(stepDir(out, EVERY)).losses, state(stepDir(uninterrupted, EVERY)).losses);

  const again = await finch(['train', '--out', out, '--resume', out, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(events(again.stdout).some((e) => e.event === 'resumed' && e.step === EVERY));
  const resumed = stepLosses(again.stdout);
  assert.deepEqual([...resumed.keys()], Array.from({ length: STEPS - EVERY }, (_, i) => i + EVERY + 1));
  for (const [step, loss] of resumed) {
    const ref = reference.get(step)!;
    assert.ok(Math.abs(loss - ref) <= 1e-5 * Math.abs(ref), `step ${step}: resumed loss ${loss} vs uninterrupted ${ref}`);
  }
  // It continued from exactly that state: it ends where the uninterrupted run ended.
  assertSameTensors(join(out, 'adapter_model.safetensors'), join(uninterrupted, 'adapter_model.safetensors'));
  assertSameTensors(join(stepDir(out, STEPS), 'optimizer.safetensors'), join(stepDir(uninterrupted, STEPS), 'optimizer.safetensors'));
});

test('gradient accumulation trains and the NaN guard stops a diverging run with a clear message', async () => {
  const acc = await finch(['train', ...common, '--out', join(work, 'accum'), '--max-steps', '6', '--grad-accum', '2', '--batch', '2']);
  assert.equal(acc.code, 0, acc.stderr);
  assert.equal(stepLosses(acc.stdout).size, 6);

  // A learning rate of 1e30 makes the run diverge at once. No door takes it (the run-configuration
  // schema caps the learning rate at 1), so the trainer gets it directly: its guard must still stop it.
  const refused = await finch(['train', ...common, '--out', join(work, 'diverge-refused'), '--lr', '1e30']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--lr must be a number > 0 and <= 1, got "1e30"/);
  const out = join(work, 'diverge');
  await assert.rejects(train({
    ...TRAIN_DEFAULTS, model, data, out, map: { prompt: 'query', completion: 'response' }, batch: 4, lora: { ...TRAIN_DEFAULTS.lora, dropout: 0.1 },
    valFraction: 0.1, seed: 3, threads: 1, maxSteps: 10, lr: 1e30, maxGradNorm: null, checkpointEvery: 1,
  }, () => {}), /the loss became (NaN|Infinity|-Infinity).*Lower the learning rate/s);
  // The last good checkpoint is kept and holds finite numbers.
  assert.ok(readdirSync(join(out, 'checkpoints')).some((n) => n.startsWith('step-')));
});

test('refuses to start over a run that has checkpoints, and names --resume', async () => {
  const out = join(work, 'run-a');
  const r = await finch(['train', ...common, '--out', out, '--max-steps', '2']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--resume/);
});

test('a ready event with per-phase seconds comes before step 1; a second 4-bit run reads the quantized cache', async () => {
  const restoreHome = useFinchHome(join(work, 'home')); // a private 4-bit cache
  try {
    const sources: unknown[] = [];
    for (const run of ['q-a', 'q-b']) {
      const r = await finch(['train', ...common, '--4bit', '--out', join(work, run), '--max-steps', '2']);
      assert.equal(r.code, 0, r.stderr);
      const evs = events(r.stdout);
      const ready = evs.findIndex((e) => e.event === 'ready'), firstStep = evs.findIndex((e) => e.event === 'step');
      assert.ok(ready >= 0 && ready < firstStep, 'ready comes before the first step');
      const e = evs[ready]!;
      for (const k of ['load_s', 'data_s', 'graph_s', 'session_s']) assert.ok(typeof e[k] === 'number' && (e[k] as number) >= 0, `${k}: ${e[k]}`);
      const sum = ['load_s', 'data_s', 'graph_s', 'session_s'].reduce((a, k) => a + (e[k] as number), 0);
      assert.ok((e.total_s as number) >= sum * 0.99, `total ${e.total_s} covers the phases (${sum})`);
      sources.push(e.int4_source);
    }
    assert.deepEqual(sources, ['quantized', 'cache']);
  } finally {
    restoreHome();
  }
});
