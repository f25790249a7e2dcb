// `finch eval --method dpo|orpo --json` against Hugging Face transformers + PEFT loading Finch's
// adapter (test/oracle/preference_eval_oracle.py): the loss, reward accuracy, margin and each side's
// mean reward of DPO-trained adapters (reference: the base, or with --ref-adapter the SFT adapter the
// run continued from, with label smoothing) and ORPO's (short last batch), each within 1e-4 relative.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { prepareDataset } from '../../../src-main/data/dataset.js';
import { adapterTemplate, loadPeftAdapter } from '../../../src-main/model/adapter.js';
import { loadModelConfig } from '../../../src-main/model/config.js';
import { loadTokenizer } from '../../../src-main/model/tokenizer.js';
import { events, finch, mathRows, tempDir, writeJsonl } from '../../helpers/fixtures.js';
import { VENV_PYTHON, need } from '../../helpers/prerequisites.js';

const DEMO = resolve('assets/demo/model');
const work = tempDir('finch-eval-pref-');
const pairs = writeJsonl(join(work, 'pairs.jsonl'), mathRows(7).map((r) => ({
  prompt: r.query, chosen: r.response, rejected: r.response.replace(/makes (\d+)/, (_, n: string) => `makes ${Number(n) * 10}`),
})));
/** The same pairs with every other one swapped: the base's rewards then prefer the chosen answer of some pairs only. */
const mixed = writeJsonl(join(work, 'mixed.jsonl'), (readFileSync(pairs, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>))
  .map((r, i) => (i % 2 ? { ...r, chosen: r.rejected!, rejected: r.chosen! } : r)));
const sftData = writeJsonl(join(work, 'sft.jsonl'), mathRows(8));
const trainArgs = ['--model', DEMO, '--lr', '1e-2', '--dropout', '0', '--val-fraction', '0', '--threads', '2', '--seq-len', '128', '--json'];

const METRICS = ['loss', 'rewards_chosen', 'rewards_rejected', 'reward_margin', 'reward_accuracy'] as const;
type Metrics = Record<(typeof METRICS)[number] | 'pairs', number>;

async function finchEval(args: string[], data = pairs): Promise<Metrics> {
  const r = await finch(['eval', '--model', DEMO, '--data', data, '--threads', '2', '--seq-len', '128', '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Metrics;
}

/** The oracle's input: the pairs as Finch renders them for this adapter (its training's template). */
async function oracle(job: Record<string, unknown>, adapter: string | null, data = pairs): Promise<Metrics> {
  const tok = loadTokenizer(DEMO);
  const template = adapterTemplate(adapter ? loadPeftAdapter(adapter, loadModelConfig(DEMO)) : null);
  const d = await prepareDataset(data, tok, { seqLen: 128, valFraction: 0, template });
  if (d.kind !== 'pairs') throw new Error('expected pairs');
  const side = (s: number) => ({ ids: [...d.samples.tokens(s)], scored: [...d.samples.trained(s)] });
  const rows = Array.from({ length: d.train.length }, (_, i) => ({ chosen: side(d.train.sides(i).chosen), rejected: side(d.train.sides(i).rejected) }));
  const inp = join(work, `oracle-${Math.random()}.json`), out = `${inp}.out`;
  writeFileSync(inp, JSON.stringify({ base: DEMO, adapter, pairs: rows, ...job }));
  const r = spawnSync(VENV_PYTHON, [new URL('../../oracle/preference_eval_oracle.py', import.meta.url).pathname, inp, out], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(readFileSync(out, 'utf8')) as Metrics;
}

function assertClose(name: string, got: Metrics, want: Metrics): void {
  assert.equal(got.pairs, want.pairs, `${name}: pairs`);
  for (const k of METRICS) {
    const rel = Math.abs(got[k] - want[k]) / Math.max(Math.abs(want[k]), 1e-12);
    console.log(`# ${name} ${k}: finch ${got[k]} transformers+PEFT ${want[k]} (relative ${rel.toExponential(1)})`);
    assert.ok(rel <= 1e-4 || got[k] === want[k], `${name}: ${k} ${got[k]} vs ${want[k]} (relative ${rel})`);
  }
}

test('finch eval --method dpo|orpo agrees with transformers + PEFT loading the adapter', { timeout: 900_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  const dpo = join(work, 'dpo'), sft = join(work, 'sft'), fromSft = join(work, 'dpo-from-sft');
  for (const [out, args] of [
    [dpo, ['--data', pairs, '--method', 'dpo', '--batch', '4', '--max-steps', '8']],
    [sft, ['--data', sftData, '--map', 'prompt=query,completion=response', '--batch', '4', '--max-steps', '4']],
    [fromSft, ['--data', pairs, '--method', 'dpo', '--init-adapter', sft, '--batch', '4', '--max-steps', '6']],
  ] as const) {
    const r = await finch(['train', ...trainArgs, ...args, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(events(r.stdout).some((e) => e.event === 'done'));
  }

  const a = await finchEval(['--method', 'dpo', '--adapter', dpo, '--batch', '3']);
  assert.ok(a.reward_margin > 0, `the DPO adapter prefers the chosen answers (margin ${a.reward_margin})`);
  assertClose('dpo', a, await oracle({ reference: null, method: 'dpo', beta: 0.1, label_smoothing: 0, orpo_lambda: 0, batch: 3 }, dpo));

  const b = await finchEval(['--method', 'dpo', '--adapter', fromSft, '--ref-adapter', sft, '--beta', '0.3', '--label-smoothing', '0.1', '--batch', '4']);
  assertClose('dpo --ref-adapter', b, await oracle({ reference: sft, method: 'dpo', beta: 0.3, label_smoothing: 0.1, orpo_lambda: 0, batch: 4 }, fromSft));

  const c = await finchEval(['--method', 'orpo', '--adapter', dpo, '--orpo-lambda', '0.2', '--batch', '3']);
  assertClose('orpo', c, await oracle({ reference: null, method: 'orpo', beta: 0, label_smoothing: 0, orpo_lambda: 0.2, batch: 3 }, dpo));

  // The base alone: its rewards prefer some chosen answers and not others.
  const d = await finchEval(['--method', 'orpo', '--batch', '2'], mixed);
  assert.ok(d.reward_accuracy > 0 && d.reward_accuracy < 1, `the base's reward accuracy ${d.reward_accuracy}`);
  assertClose('orpo, base', d, await oracle({ reference: null, method: 'orpo', beta: 0, label_smoothing: 0, orpo_lambda: 0.1, batch: 2 }, null, mixed));
});

test('finch eval refuses what does not fit: --ref-adapter without dpo, sft on pairs, dpo on conversations', async () => {
  const bad = async (args: string[], re: RegExp) => {
    const r = await finch(['eval', '--model', DEMO, '--threads', '1', ...args]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, re);
  };
  await bad(['--data', pairs, '--method', 'orpo', '--ref-adapter', work], /--ref-adapter is for --method dpo/);
  await bad(['--data', pairs, '--method', 'dpo', '--beta', '0'], /--beta must be a number > 0/);
  await bad(['--data', pairs], /holds preference pairs: score them with --method dpo or --method orpo/);
  await bad(['--data', sftData, '--map', 'prompt=query,completion=response', '--method', 'dpo'], /--method dpo scores preference pairs, but .* is in the completion format/);
});
