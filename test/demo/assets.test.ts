// The shipped demo assets (assets/demo): the model is a complete, small Hugging Face Llama folder
// made by the committed recipe, its training log shows the loss falling, the dataset files have
// the stated format with disjoint splits and are exactly what the generator writes, and the base
// model writes about its world but does not answer in the dataset's format.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEMO_DATA_SEED, DEMO_TEST_ROWS, DEMO_TRAIN_ROWS, extractAnswer, writeDemoDataset } from '../../src-main/demo/corpus.js';
import { DEMO_RECIPE, type LogEvent } from '../../src-main/demo/pretrain.js';
import { PREFERENCE_TRAIN_ROWS, writePreferenceDataset } from '../../src-main/demo/preference.js';
import { Generator } from '../../src-main/infer/generate.js';
import { encodeGenerationPrompt } from '../../src-main/data/template.js';
import { loadModel } from '../../src-main/model/load.js';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { llamaWeightSpecs } from '../../src-main/synthetic/checkpoint.js';

const DEMO = new URL('../../assets/demo/', import.meta.url).pathname;
const MODEL = join(DEMO, 'model');
const DATA = join(DEMO, 'data');
const MB = 1024 * 1024;

interface Row {
  query: string;
  response: string;
  type: string;
}

const readRows = (file: string): Row[] =>
  readFileSync(file, 'utf8').trimEnd().split('\n').map((line, i) => {
    const v = JSON.parse(line) as Row;
    assert.deepEqual(Object.keys(v), ['query', 'response', 'type'], `${file}:${i + 1}`);
    return v;
  });

test('the model folder is a complete Hugging Face Llama checkpoint of at most 25 MB', () => {
  const files = readdirSync(MODEL).sort();
  assert.deepEqual(files, ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const total = files.reduce((a, f) => a + statSync(join(MODEL, f)).size, 0);
  assert.ok(total <= 25 * MB, `model folder is ${(total / MB).toFixed(1)} MB`);

  const raw = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(raw.architectures, ['LlamaForCausalLM']);
  assert.equal(raw.model_type, 'llama');
  const m = loadModel(MODEL);
  const c = m.config;
  const r = DEMO_RECIPE;
  assert.deepEqual(
    [c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.intermediateSize, c.maxPositionEmbeddings],
    [r.hiddenSize, r.numLayers, r.numHeads, r.numKvHeads, r.intermediateSize, r.maxPositions],
    'config.json matches DEMO_RECIPE (regenerate with src-main/demo/pretrain.ts)',
  );
  assert.ok(c.vocabSize <= r.vocabSize && c.vocabSize > 512);

  // Tokenizer: chat template, EOS of a turn, round trip.
  const tok = m.tokenizer;
  assert.equal(tok.vocabSize, c.vocabSize);
  assert.ok(tok.hasChatTemplate);
  assert.ok(tok.eosIds.includes(tok.tokenToId('<|eot_id|>')!));
  const text = 'Mia has 5 apples. She buys 3 more at the fruit stand. How many apples does Mia have now?';
  assert.equal(tok.decode(tok.encode(text), { skipSpecialTokens: true }), text);
  assert.match(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }), /assistant<\|end_header_id\|>\n\n$/);

  // Exactly the tensors of a LlamaForCausalLM of this shape, all finite.
  const ckpt = Checkpoint.open(MODEL);
  const specs = llamaWeightSpecs(c);
  assert.deepEqual(ckpt.names().sort(), specs.map((s) => s.name).sort());
  for (const s of specs) {
    assert.deepEqual(ckpt.info(s.name).shape, s.shape, s.name);
    const w = ckpt.readTensor(s.name);
    assert.ok(w.every(Number.isFinite), `${s.name} has non-finite values`);
  }
  ckpt.close();
  m.close();
});

test('the pretraining log records the recipe and a falling loss', () => {
  const events = readFileSync(join(DEMO, 'pretrain-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogEvent);
  const start = events[0]!;
  assert.equal(start.event, 'start');
  assert.deepEqual(start.event === 'start' && start.recipe, DEMO_RECIPE, 'the log was written by the committed recipe');
  const train = events.filter((e) => e.event === 'train');
  assert.equal(train.at(-1)!.step, DEMO_RECIPE.steps);
  assert.ok(train[0]!.loss > 5 && train.at(-1)!.loss < 1, `loss ${train[0]!.loss} -> ${train.at(-1)!.loss}`);
  const done = events.at(-1)!;
  assert.equal(done.event, 'done');
  assert.ok(done.event === 'done' && done.val_loss < 1);
  assert.ok(events.some((e) => e.event === 'sample'));
});

test('the dataset files are MetaMathQA-style JSONL with disjoint splits, as the generator writes them', () => {
  const train = readRows(join(DATA, 'train.jsonl'));
  const testRows = readRows(join(DATA, 'test.jsonl'));
  assert.equal(train.length, DEMO_TRAIN_ROWS);
  assert.equal(testRows.length, DEMO_TEST_ROWS);
  for (const row of [...train, ...testRows]) {
    assert.ok(row.query.endsWith('?'));
    assert.match(row.response, /^.+ = \d+\. The answer is: \d+$/);
    assert.ok(['demo_add', 'demo_sub'].includes(row.type));
    const n = extractAnswer(row.response)!;
    assert.ok(n >= 0 && n <= 20);
  }
  const held = new Set(testRows.map((r) => r.query));
  assert.equal(held.size, testRows.length);
  assert.equal(train.filter((r) => held.has(r.query)).length, 0, 'a held-out query is in the training split');

  const regen = mkdtempSync(join(tmpdir(), 'finch-demo-data-'));
  after(() => rmSync(regen, { recursive: true, force: true }));
  writeDemoDataset(regen, DEMO_DATA_SEED);
  for (const f of ['train.jsonl', 'test.jsonl']) {
    assert.equal(readFileSync(join(regen, f), 'utf8'), readFileSync(join(DATA, f), 'utf8'), `${f} differs from what src-main/demo/corpus.ts writes`);
  }
});

test('the preference pairs pair each right worked answer with a wrong one, as the generator writes them', () => {
  const pairs = (f: string) => readFileSync(join(DATA, f), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
  const train = pairs('preference-train.jsonl'), held = pairs('preference-test.jsonl');
  const rows = readRows(join(DATA, 'train.jsonl')).slice(0, PREFERENCE_TRAIN_ROWS), testRows = readRows(join(DATA, 'test.jsonl'));
  assert.deepEqual(train.map((p) => [p.prompt, p.chosen]), rows.map((r) => [r.query, r.response]));
  assert.deepEqual(held.map((p) => [p.prompt, p.chosen]), testRows.map((r) => [r.query, r.response]));
  for (const p of [...train, ...held]) {
    // The rejected answer is worked in the same words and states a wrong result.
    assert.match(p.rejected, /^.+ = \d+\. The answer is: \d+$/);
    assert.notEqual(extractAnswer(p.rejected), extractAnswer(p.chosen), p.rejected);
  }
  const regen = mkdtempSync(join(tmpdir(), 'finch-demo-pairs-'));
  after(() => rmSync(regen, { recursive: true, force: true }));
  writeDemoDataset(regen, DEMO_DATA_SEED);
  writePreferenceDataset(regen);
  for (const f of ['preference-train.jsonl', 'preference-test.jsonl']) {
    assert.equal(readFileSync(join(regen, f), 'utf8'), readFileSync(join(DATA, f), 'utf8'), `${f} differs from what src-main/demo/preference.ts writes`);
  }
});

test('the base model writes in its domain but does not answer in the dataset format', async () => {
  const m = loadModel(MODEL);
  const tok = m.tokenizer;
  const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: 160, threads: 2 });
  const [story] = await gen.generate({ prompts: [tok.encode('On Saturday, Mia went to')], maxNewTokens: 30, eosIds: tok.eosIds, tokenizer: tok });
  assert.match(story!.text, /^ the [a-z]+/, `a plausible continuation: ${story!.text}`);
  const rows = readRows(join(DATA, 'test.jsonl')).slice(0, 16);
  const prompts = rows.map((r) => encodeGenerationPrompt(tok, [{ role: 'user', content: r.query }]));
  const res = await gen.generate({ prompts, maxNewTokens: 40, eosIds: tok.eosIds, tokenizer: tok });
  const right = res.filter((x, i) => extractAnswer(x.text) === extractAnswer(rows[i]!.response)).length;
  assert.ok(right <= 2, `the base model already answers ${right}/16 held-out prompts in the format`);
  assert.ok(res.every((x) => x.text.trim().length > 0), 'the base model answers something');
  await gen.release();
  m.close();
});
