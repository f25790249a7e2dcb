// The fine-tuning run end to end through `finch train`: loss falls, a run killed with SIGKILL
// resumes from its last checkpoint onto the same loss curve, gradient accumulation, the NaN
// guard, and refusing to overwrite a run.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { events, finch, mathRows, tempDir, tinyCheckpoint, useFinchHome, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
const data = writeJsonl(join(work, 'math.jsonl'), mathRows(64));
const common = ['--model', model, '--data', data, '--map', 'prompt=query,completion=response', '--batch', '4', '--lr', '5e-3',
  '--dropout', '0.1', '--val-fraction', '0.1', '--seed', '3', '--threads', '1', '--json'];
const stepLosses = (stdout: string) => new Map(events(stdout).filter((e) => e.event === 'step').map((e) => [e.step as number, e.loss as number]));

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
});

test('a run killed with SIGKILL resumes from its last checkpoint with the same loss curve', async () => {
  const STEPS = 40;
  const full = await finch(['train', ...common, '--out', join(work, 'uninterrupted'), '--max-steps', String(STEPS), '--checkpoint-every', '5']);
  assert.equal(full.code, 0, full.stderr);
  const reference = stepLosses(full.stdout);

  // Killed once its first checkpoint is written. The child keeps stepping until the signal lands,
  // and may write more checkpoints meanwhile: the test resumes from whichever is last.
  const out = join(work, 'killed');
  let killed = false;
  const first = await finch(['train', ...common, '--out', out, '--max-steps', String(STEPS), '--checkpoint-every', '5'], (line, kill) => {
    if (!killed && line.includes('"event":"checkpoint"')) { killed = true; kill(); }
  });
  assert.ok(killed, 'the run should have been killed after its first checkpoint');
  assert.notEqual(first.code, 0, 'the run was killed before it finished');
  const kept = readdirSync(join(out, 'checkpoints')).filter((n) => /^step-\d+$/.test(n)).sort();
  assert.ok(kept.length > 0, 'at least the first checkpoint is on disk');
  const from = Number(kept.at(-1)!.slice('step-'.length));
  assert.ok(from >= 5 && from < STEPS && from % 5 === 0, `resuming from step ${from}`);

  const again = await finch(['train', '--out', out, '--resume', out, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(events(again.stdout).some((e) => e.event === 'resumed' && e.step === from));
  const resumed = stepLosses(again.stdout);
  assert.deepEqual([...resumed.keys()], Array.from({ length: STEPS - from }, (_, i) => i + from + 1));
  for (const [step, loss] of resumed) {
    const ref = reference.get(step)!;
    assert.ok(Math.abs(loss - ref) <= 1e-5 * Math.abs(ref), `step ${step}: resumed loss ${loss} vs uninterrupted ${ref}`);
  }
});

test('gradient accumulation trains and the NaN guard stops a diverging run with a clear message', async () => {
  const acc = await finch(['train', ...common, '--out', join(work, 'accum'), '--max-steps', '6', '--grad-accum', '2', '--batch', '2']);
  assert.equal(acc.code, 0, acc.stderr);
  assert.equal(stepLosses(acc.stdout).size, 6);

  const out = join(work, 'diverge');
  const r = await finch(['train', ...common, '--out', out, '--max-steps', '10', '--lr', '1e30', '--max-grad-norm', '0', '--checkpoint-every', '1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the loss became (NaN|Infinity|-Infinity).*Lower the learning rate/s);
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
