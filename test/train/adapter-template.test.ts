// The chat-template choice travels with the adapter: a run trained with --template fallback on a
// model that has its own chat template writes finch_adapter.json beside the PEFT files (which stay
// exactly PEFT's), and `finch generate` and `finch eval` with that adapter render prompts exactly
// as training did, not with the model's template.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareDataset } from '../../src-main/data/dataset.js';
import { encodeGenerationPrompt } from '../../src-main/data/template.js';
import { loadPeftAdapter, peftAdapterConfig } from '../../src-main/model/adapter.js';
import { loadModel } from '../../src-main/model/load.js';
import { evaluateLoss } from '../../src-main/train/evaluate.js';
import { events, finch, mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint(); // llama with a Llama 3 chat template
const work = tempDir();
const data = writeJsonl(join(work, 'math.jsonl'), mathRows(24));
const map = 'prompt=query,completion=response';
const out = join(work, 'fallback-run');

test('training with --template fallback records the choice beside the adapter; adapter_config.json stays PEFT', async () => {
  const r = await finch(['train', '--model', model, '--data', data, '--map', map, '--template', 'fallback', '--out', out,
    '--max-steps', '2', '--checkpoint-every', '1', '--batch', '4', '--val-fraction', '0', '--threads', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(events(r.stdout).at(-1)!.event, 'done');
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'finch_adapter.json'), 'utf8')), { template: 'fallback' });
  const m = loadModel(model);
  try {
    const adapter = loadPeftAdapter(out, m.config);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')), peftAdapterConfig(adapter.spec, model));
    assert.deepEqual(adapter.finch, { template: 'fallback' });
  } finally {
    m.close();
  }
  // A checkpoint used on its own as an adapter carries the record too.
  const ck = join(out, 'checkpoints', readdirSync(join(out, 'checkpoints')).filter((n) => n.startsWith('step-')).sort().at(-1)!);
  assert.deepEqual(JSON.parse(readFileSync(join(ck, 'finch_adapter.json'), 'utf8')), { template: 'fallback' });
});

test('finch generate --chat with the adapter renders the prompt as training did', async () => {
  const row = mathRows(1)[0]!;
  const r = await finch(['generate', '--model', model, '--adapter', out, '--chat', '--prompt', row.query, '--max-new-tokens', '1', '--json', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const promptIds = JSON.parse(r.stdout.trim().split('\n').at(-1)!).prompt_ids as number[];
  // Training's rendering of the same row: its tokens up to the first trained one.
  const m = loadModel(model);
  try {
    const one = writeJsonl(join(work, 'one.jsonl'), [row]);
    const prepared = await prepareDataset(one, m.tokenizer, { seqLen: 256, valFraction: 0, trainOn: 'completions', template: 'fallback', map: { prompt: 'query', completion: 'response' } });
    assert.equal(prepared.template, 'fallback');
    const b = prepared.train.batch([0]);
    const firstTrained = [...b.labels].findIndex((l) => Number(l) !== -100);
    assert.ok(firstTrained > 0);
    assert.deepEqual(promptIds, [...b.inputIds.slice(0, firstTrained)].map(Number));
    // The model's own template renders it differently: the check above can fail.
    assert.notDeepEqual(promptIds, encodeGenerationPrompt(m.tokenizer, [{ role: 'user', content: row.query }], 'model'));
  } finally {
    m.close();
  }
});

test('finch eval with the adapter scores the rows rendered as training rendered them', async () => {
  const r = await finch(['eval', '--model', model, '--data', data, '--map', map, '--adapter', out, '--seq-len', '256', '--json', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const reported = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { loss: number; base: { loss: number } };
  const m = loadModel(model);
  try {
    const adapter = loadPeftAdapter(out, m.config);
    const opts = { seqLen: 256, batch: 8, threads: 1, map: { prompt: 'query', completion: 'response' } };
    const fallback = await evaluateLoss(m, data, adapter, { ...opts, template: 'fallback' });
    const modelTemplate = await evaluateLoss(m, data, adapter, { ...opts, template: 'model' });
    const baseFallback = await evaluateLoss(m, data, null, { ...opts, template: 'fallback' });
    assert.ok(Math.abs(fallback.loss - modelTemplate.loss) > 1e-3, `the two renderings should score differently: ${fallback.loss} vs ${modelTemplate.loss}`);
    assert.ok(Math.abs(reported.loss - fallback.loss) <= 1e-6 * fallback.loss, `eval reported ${reported.loss}; fallback rendering ${fallback.loss}, model template ${modelTemplate.loss}`);
    assert.ok(Math.abs(reported.base.loss - baseFallback.loss) <= 1e-6 * baseFallback.loss, `the base is scored on the same rendering: ${reported.base.loss} vs ${baseFallback.loss}`);
  } finally {
    m.close();
  }
});
