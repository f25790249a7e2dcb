import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { previewDataset } from '../../src-main/data/preview.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { loadTokenizer } from '../../src-main/model/tokenizer.js';
import { FakeTokenizer } from './fixtures/fake-tokenizer.js';
import { FIXTURES, tempDir, writeFile } from './helpers.js';

const dir = tempDir();

test('preview: first rows, format, columns, and trained vs ignored spans', async () => {
  const tok = new FakeTokenizer();
  const p = await previewDataset(join(FIXTURES, 'messages.jsonl'), { tokenizer: tok, rows: 3 });
  assert.equal(p.fileKind, 'jsonl');
  assert.deepEqual(p.columns, ['messages']);
  assert.equal(p.format!.name, 'messages');
  assert.equal(p.template, 'model');
  assert.equal(p.rows.length, 3);
  const r = p.rows[1]!;
  assert.equal(r.line, 2);
  assert.deepEqual(r.rendered!.spans, [
    { text: '<s><|user|>What is 4 plus 5?<|end|><|assistant|>', trained: false, truncated: false },
    { text: '4 plus 5 is 9. The answer is: 9<|end|>', trained: true, truncated: false },
  ]);
  assert.equal(r.rendered!.trainedTokens, tok.encode('4 plus 5 is 9. The answer is: 9<|end|>').length);
});

test('preview marks tokens beyond the sequence length', async () => {
  const tok = new FakeTokenizer();
  const p = await previewDataset(join(FIXTURES, 'completion.jsonl'), { tokenizer: tok, rows: 1, seqLen: 30 });
  const spans = p.rows[0]!.rendered!.spans;
  assert.deepEqual(spans.map((s) => [s.trained, s.truncated]), [[false, false], [true, false], [true, true]]);
  assert.equal(spans.map((s) => s.text).join(''), tok.decode(tok.encode(spans.map((s) => s.text).join(''))));
  assert.equal(tok.encode(spans[0]!.text + spans[1]!.text).length, 30);
});

test('preview of unmapped columns returns the error and a suggested mapping instead of throwing', async () => {
  const p = await previewDataset(join(FIXTURES, 'metamath.json'), { rows: 2 });
  assert.equal(p.format, null);
  assert.match(p.formatError!, /columns found: query, response, type, original_question/);
  assert.deepEqual(p.suggestedMap, { prompt: 'query', completion: 'response' });
  assert.equal(p.rows.length, 2);
  assert.equal(p.rows[0]!.raw.query, 'What is 2 plus 3?');
  const mapped = await previewDataset(join(FIXTURES, 'metamath.json'), { rows: 1, map: p.suggestedMap! });
  assert.deepEqual(mapped.rows[0]!.example, {
    messages: [{ role: 'user', content: 'What is 2 plus 3?' }, { role: 'assistant', content: 'We add 2 and 3 to get 5.\nThe answer is: 5' }],
  });
});

test('preview shows bad rows and row errors without throwing', async () => {
  const f = writeFile(dir, 'p.jsonl', '{"text": "a"}\nnot json\n{"text": ""}\n{"text": "b"}\n');
  const p = await previewDataset(f, { rows: 5, tokenizer: new FakeTokenizer() });
  assert.deepEqual(p.badRows, [{ line: 2, reason: p.badRows[0]!.reason }]);
  assert.match(p.badRows[0]!.reason, /invalid JSON/);
  assert.deepEqual(p.rows.map((r) => [r.line, r.error]), [[1, null], [3, 'empty text'], [4, null]]);
  assert.equal(p.template, null);
  const empty = await previewDataset(writeFile(dir, 'empty.csv', 'a,b\n'));
  assert.equal(empty.rows.length, 0);
  assert.match(empty.notes.join('\n'), /the dataset is empty/);
});

test('preview spans concatenate to the decoded sample with a real (byte-level BPE) tokenizer', async () => {
  const ckpt = writeSyntheticCheckpoint(join(dir, 'm'), { vocabSize: 400, hiddenSize: 16, numLayers: 1, numHeads: 2 });
  const tok = loadTokenizer(ckpt.dir);
  const p = await previewDataset(join(FIXTURES, 'sharegpt.json'), { tokenizer: tok, rows: 2 });
  const r = p.rows[1]!;
  assert.equal(r.rendered!.spans.filter((s) => s.trained).length, 2, 'two assistant turns');
  assert.match(r.rendered!.spans[1]!.text, /^4 plus 5 is 9\. The answer is: 9<\|eot_id\|>$/);
  assert.equal(r.rendered!.boundaryIssue, null);
});

test('preview with a required chat template the model lacks: a note, rows shown unrendered', async () => {
  const p = await previewDataset(join(FIXTURES, 'messages.jsonl'), { tokenizer: new FakeTokenizer({ chatTemplate: null }), template: 'model', rows: 2 });
  assert.match(p.notes.join('\n'), /no chat_template.*finch-alpaca/);
  assert.ok(p.rows.every((r) => r.example !== null && r.rendered === null && r.error === null));
});
