// Preference runs end to end through `finch train` and the trainer: DPO starts at loss log 2 (the
// policy is the reference before its first update) and reports TRL's reward metrics per step and on
// held-out pairs; gradient accumulation weighs micro-batches by their pairs; a cancelled run resumes
// onto the uninterrupted run's adapter; --init-adapter continues an SFT run's adapter with it as the
// frozen reference; 4-bit bases with gradient checkpointing; and the method and the data must agree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPeftAdapter } from '../../src-main/model/adapter.js';
import { loadModelConfig } from '../../src-main/model/config.js';
import { train } from '../../src-main/train/trainer.js';
import { TRAIN_DEFAULTS } from '../../src-shared/run-config.js';
import type { TrainEvent, TrainEventOf } from '../../src-shared/train-events.js';
import { events, finch, mathRows, tempDir, tinyCheckpoint, useFinchHome, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
/** Arithmetic pairs: the right worked answer, and one with the wrong sum. */
const pairs = writeJsonl(join(work, 'pairs.jsonl'), mathRows(48).map((r, i) => ({
  prompt: r.query, chosen: r.response, rejected: r.response.replace(/\d+\. The answer is: (\d+)$/, (_, n: string) => `${Number(n) + 1 + (i % 3)}. The answer is: ${Number(n) + 1 + (i % 3)}`),
})));
const sft = writeJsonl(join(work, 'sft.jsonl'), mathRows(16));
const common = ['--model', model, '--data', pairs, '--lr', '5e-3', '--dropout', '0', '--seed', '3', '--threads', '1', '--json'];
const steps = (stdout: string) => events(stdout).filter((e) => e.event === 'step') as TrainEventOf<'step'>[];
const REWARDS = ['rewards_chosen', 'rewards_rejected', 'reward_margin', 'reward_accuracy'] as const;

test('finch train --method dpo: loss log 2 at the first step, reward metrics per step and on held-out pairs', async () => {
  const out = join(work, 'dpo');
  const r = await finch(['train', ...common, '--method', 'dpo', '--beta', '0.5', '--batch', '4', '--max-steps', '12', '--val-fraction', '0.25', '--eval-every', '6', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const s = steps(r.stdout);
  assert.equal(s.length, 12);
  // LoRA's B starts at zero: the policy is the reference, every reward 0, the loss -log sigmoid(0).
  assert.ok(Math.abs(s[0]!.loss - Math.LN2) <= 1e-6, `first loss ${s[0]!.loss}`);
  for (const k of REWARDS) assert.equal(typeof s[5]![k], 'number', `step event ${k}`);
  assert.equal(s[0]!.reward_margin, 0);
  assert.ok(s.at(-1)!.loss < s[0]!.loss, `loss ${s[0]!.loss} -> ${s.at(-1)!.loss}`);
  assert.ok(s.at(-1)!.reward_margin! > 0, `margin ${s.at(-1)!.reward_margin}`);
  const evals = events(r.stdout).filter((e) => e.event === 'eval') as TrainEventOf<'eval'>[];
  assert.deepEqual(evals.map((e) => e.step), [6, 12]);
  for (const k of REWARDS) assert.equal(typeof evals[1]![k], 'number', `eval event ${k}`);
  const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { config: { method: string; beta: number } };
  assert.equal(run.config.method, 'dpo');
  assert.equal(run.config.beta, 0.5);
  assert.equal(loadPeftAdapter(out, loadModelConfig(model)).spec.rank, TRAIN_DEFAULTS.lora.rank);
});

test('ORPO trains without a reference and reports rewards; the human-readable eval line names the accuracy', async () => {
  const r = await finch(['train', ...common.filter((a) => a !== '--json'), '--method', 'orpo', '--orpo-lambda', '0.2', '--batch', '4', '--max-steps', '6', '--val-fraction', '0.25', '--out', join(work, 'orpo')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /step 6: eval loss [\d.]+, reward accuracy [\d.]+%, margin -?[\d.]+ \(chosen -?[\d.]+, rejected -?[\d.]+\)/);
});

test('gradient accumulation: 2 x 2 pairs give the steps and the adapter of batches of 4 pairs', async () => {
  const run = async (name: string, batch: number, accum: number) => {
    const out = join(work, name);
    const r = await finch(['train', ...common, '--method', 'dpo', '--val-fraction', '0', '--max-steps', '3', '--batch', String(batch), '--grad-accum', String(accum), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    return { steps: steps(r.stdout), adapter: loadPeftAdapter(out, loadModelConfig(model)).tensors };
  };
  const one = await run('accum-4x1', 4, 1), acc = await run('accum-2x2', 2, 2);
  one.steps.forEach((s, i) => {
    const a = acc.steps[i]!;
    assert.ok(Math.abs(a.loss - s.loss) <= 1e-5 * s.loss, `step ${i + 1}: loss ${a.loss} vs ${s.loss}`);
    assert.ok(Math.abs(a.grad_norm - s.grad_norm) <= 1e-4 * s.grad_norm, `step ${i + 1}: gradient norm ${a.grad_norm} vs ${s.grad_norm}`);
    assert.ok(Math.abs(a.reward_margin! - s.reward_margin!) <= 1e-5 + 1e-4 * Math.abs(s.reward_margin!), `step ${i + 1}: margin`);
  });
  let worst = 0;
  for (const [k, v] of one.adapter) v.forEach((x, i) => { worst = Math.max(worst, Math.abs(x - acc.adapter.get(k)![i]!)); });
  assert.ok(worst <= 1e-5, `adapters differ by ${worst}`);
});

test('a cancelled DPO run resumes from its checkpoint onto the uninterrupted run\'s adapter (4-bit base, gradient checkpointing, accumulation)', async () => {
  const restore = useFinchHome(join(work, 'home'));
  try {
    const cfg = (out: string) => ({
      ...TRAIN_DEFAULTS, model, data: pairs, out, method: 'dpo' as const, batch: 2, gradAccum: 2, maxSteps: 4, checkpointEvery: 2, valFraction: 0, seed: 4, threads: 1,
      quantize: true, checkpointLayers: true, lr: 5e-3, lora: { ...TRAIN_DEFAULTS.lora, dropout: 0.1 },
    });
    const whole = join(work, 'whole');
    const first: TrainEvent[] = [];
    await train(cfg(whole), (e) => first.push(e));
    const firstStep = first.find((e) => e.event === 'step') as TrainEventOf<'step'>;
    assert.ok(Math.abs(firstStep.loss - Math.LN2) <= 1e-6, `4-bit first loss ${firstStep.loss}`);
    const parted = join(work, 'parted');
    const control = { paused: false, cancelled: false };
    await train(cfg(parted), (e) => { if (e.event === 'checkpoint' && e.step === 2) control.cancelled = true; }, control);
    const resumed: TrainEvent[] = [];
    await train(cfg(parted), (e) => resumed.push(e));
    assert.ok(resumed.some((e) => e.event === 'resumed' && e.step === 2));
    const a = loadPeftAdapter(whole, loadModelConfig(model)).tensors, b = loadPeftAdapter(parted, loadModelConfig(model)).tensors;
    for (const [k, v] of a) assert.deepEqual([...b.get(k)!], [...v], `${k} after resume`);
  } finally {
    restore();
  }
});

test('--init-adapter: DPO continues an SFT run\'s adapter (its layout, not the run\'s), which is also the reference', async () => {
  const sftOut = join(work, 'sft');
  const a = await finch(['train', '--model', model, '--data', sft, '--map', 'prompt=query,completion=response', '--rank', '4', '--alpha', '8', '--lr', '1e-2',
    '--max-steps', '3', '--val-fraction', '0', '--threads', '1', '--json', '--out', sftOut]);
  assert.equal(a.code, 0, a.stderr);
  const out = join(work, 'dpo-from-sft');
  const r = await finch(['train', ...common, '--method', 'dpo', '--init-adapter', sftOut, '--batch', '4', '--max-steps', '2', '--val-fraction', '0', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const notes = events(r.stdout).filter((e) => e.event === 'note').map((e) => e.message as string);
  assert.ok(notes.some((n) => /its own layout \(rank 4, alpha 8/.test(n)), notes.join('\n'));
  const s = steps(r.stdout);
  // The policy starts as the reference: loss log 2, rewards 0 (with the base as reference they would not be).
  assert.ok(Math.abs(s[0]!.loss - Math.LN2) <= 1e-6, `first loss ${s[0]!.loss}`);
  assert.equal(s[0]!.rewards_chosen, 0);
  const cfg = loadModelConfig(model);
  const before = loadPeftAdapter(sftOut, cfg), after = loadPeftAdapter(out, cfg);
  assert.equal(after.spec.rank, 4);
  assert.ok([...after.tensors].some(([k, v]) => v.some((x, i) => x !== before.tensors.get(k)![i])), 'the adapter trained on');
});

test('the method and the data must agree, each refusal naming what fits', async () => {
  const refuse = async (args: string[], re: RegExp) => {
    const r = await finch(['train', '--model', model, '--threads', '1', '--max-steps', '1', '--out', join(work, `refused-${Math.random()}`), ...args]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, re);
  };
  await refuse(['--data', pairs], /holds preference pairs .*--method dpo or --method orpo/);
  await refuse(['--data', sft, '--map', 'prompt=query,completion=response', '--method', 'dpo'], /--method dpo trains on preference pairs, but .* is in the completion format/);
  await refuse(['--data', pairs, '--method', 'orpo', '--train-on', 'all'], /--train-on all applies to supervised fine-tuning/);
  await refuse(['--data', pairs, '--method', 'dpo', '--pack'], /preference pairs cannot be packed/);
  await refuse(['--data', pairs, '--method', 'dpo', '--label-smoothing', '0.5'], /--label-smoothing must be a number >= 0 and < 0\.5/);
});
