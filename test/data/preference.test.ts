// Preference data (DPO, ORPO): the three common row shapes and --map become the same pairs, each
// side renders through the chat template exactly as SFT renders that conversation with only the
// answer trained, bad rows say what is wrong, and a pair's batch lays out chosen rows before
// rejected rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { prepareDataset } from '../../src-main/data/dataset.js';
import { DatasetError, RowError } from '../../src-main/data/errors.js';
import { parseColumnMap, resolveFormat, toExample } from '../../src-main/data/formats.js';
import { previewDataset } from '../../src-main/data/preview.js';
import { openRows } from '../../src-main/data/read/index.js';
import { SampleEncoder } from '../../src-main/data/template.js';
import type { PreferencePair } from '../../src-main/data/types.js';
import { FakeTokenizer } from './fixtures/fake-tokenizer.js';
import { FIXTURES, collect, tempDir, writeFile } from './helpers.js';

const dir = tempDir();
const user = (content: string) => ({ role: 'user', content }) as const;
const assistant = (content: string) => ({ role: 'assistant', content }) as const;

async function pairsOf(file: string, map?: string) {
  const rows = await collect((await openRows(file.includes('/') ? file : join(FIXTURES, file))).rows);
  const fmt = resolveFormat(file, rows[0]!.row, { map: map ? parseColumnMap(map) : undefined });
  return { fmt, pairs: rows.map((r) => toExample(r.row, fmt) as PreferencePair) };
}

test('prompt/chosen/rejected text (TRL), message lists with shared prompt turns (HH) and ShareGPT conversations (LLaMA-Factory) give the same pairs', async () => {
  const text = await pairsOf('preference-text.jsonl');
  assert.equal(text.fmt.name, 'preference');
  assert.deepEqual(text.pairs[0], { prompt: [user('What is 2 plus 3?')], chosen: [assistant('2 plus 3 is 5. The answer is: 5')], rejected: [assistant('2 plus 3 is 6. The answer is: 6')] });
  assert.deepEqual(text.pairs[1]!.prompt, [{ role: 'system', content: 'You are a careful calculator.' }, user('What is 4 plus 5?')]);

  const messages = await pairsOf('preference-messages.jsonl');
  assert.equal(messages.fmt.name, 'preference');
  assert.deepEqual(messages.pairs[0], text.pairs[0]);
  // Multi-turn: the shared first three turns are the prompt.
  assert.deepEqual(messages.pairs[1], {
    prompt: [user('What is 4 plus 5?'), assistant('9.'), user('And doubled?')], chosen: [assistant('Doubled it is 18.')], rejected: [assistant('Doubled it is 19.')],
  });
  // UltraFeedback binarized: a text prompt column beside conversations that already hold it is ignored (as TRL does).
  assert.deepEqual(messages.pairs[2], text.pairs[2]);
  // TRL's conversational form with an explicit prompt list.
  assert.deepEqual(messages.pairs[3], text.pairs[3]);

  const sharegpt = await pairsOf('preference-sharegpt.json');
  assert.equal(sharegpt.fmt.name, 'preference');
  assert.deepEqual(sharegpt.pairs[0], text.pairs[0]);
  assert.deepEqual(sharegpt.pairs[1], { ...messages.pairs[1], prompt: [{ role: 'system', content: 'Be brief.' }, ...messages.pairs[1]!.prompt] });
});

test('--map: other column names (StackExchange pairs), and a map of prompt alone still finds the format', async () => {
  const file = writeFile(dir, 'se.jsonl', `${JSON.stringify({ question: 'Q?', response_j: 'good', response_k: 'bad' })}\n`);
  const { fmt, pairs } = await pairsOf(file, 'prompt=question,chosen=response_j,rejected=response_k');
  assert.deepEqual(fmt, { name: 'preference', columns: { chosen: 'response_j', rejected: 'response_k', prompt: 'question', conversations: 'conversations', system: 'system' }, mapped: true });
  assert.deepEqual(pairs[0], { prompt: [user('Q?')], chosen: [assistant('good')], rejected: [assistant('bad')] });
  // prompt belongs to two formats: the columns decide.
  assert.equal(resolveFormat('x', { q: 'a', chosen: 'b', rejected: 'c' }, { map: { prompt: 'q' } }).name, 'preference');
  assert.equal(resolveFormat('x', { q: 'a', completion: 'b' }, { map: { prompt: 'q' } }).name, 'completion');
  assert.throws(() => resolveFormat('x', { q: 'a', r: 'b' }, { map: { prompt: 'q', chosen: 'r', output: 'r' } }), /mixes fields of the completion and preference and alpaca formats/);
});

test('bad pairs say what is wrong: a missing side, identical sides, no prompt, an answer that is not the assistant\'s', () => {
  const fmt = resolveFormat('x', { prompt: 'p', chosen: 'a', rejected: 'b' });
  const bad = (row: Record<string, unknown>, re: RegExp) => assert.throws(() => toExample(row, fmt), (e: Error) => e instanceof RowError && re.test(e.message));
  bad({ prompt: 'p', chosen: 'a', rejected: null }, /rejected is missing \(null\)/);
  bad({ prompt: 'p', chosen: 'a' }, /missing column "rejected"/);
  bad({ prompt: 'p', chosen: 'same', rejected: 'same' }, /chosen and rejected are identical/);
  bad({ prompt: 'p', chosen: '  ', rejected: 'b' }, /chosen is empty/);
  bad({ chosen: 'a', rejected: 'b' }, /prompt is missing/);
  bad({ chosen: [user('x'), assistant('a')], rejected: [user('y'), assistant('b')] }, /share no prompt turns/);
  bad({ prompt: 'p', chosen: [assistant('a'), user('more?')], rejected: [assistant('b')] }, /chosen must end with an assistant turn/);
});

test('each side renders as SFT renders the conversation, with only the answer trained', async () => {
  const tok = new FakeTokenizer();
  const enc = new SampleEncoder(tok);
  const { pairs } = await pairsOf('preference-messages.jsonl');
  const multi = pairs[1]!;
  const sides = enc.encodePair(multi);
  const sft = enc.encode({ messages: [...multi.prompt, ...multi.chosen] });
  assert.deepEqual([...sides.chosen.ids], [...sft.ids], 'the same tokens as SFT');
  // SFT trains both assistant turns; the pair trains only the answer after the prompt.
  const trainedText = (ids: Int32Array, trained: Uint8Array) => tok.decode([...ids].filter((_, i) => trained[i]));
  assert.equal(trainedText(sft.ids, sft.trained), '9.<|end|>Doubled it is 18.<|end|>');
  assert.equal(trainedText(sides.chosen.ids, sides.chosen.trained), 'Doubled it is 18.<|end|>');
  assert.equal(trainedText(sides.rejected.ids, sides.rejected.trained), 'Doubled it is 19.<|end|>');
  // The fallback template (no chat template) too, EOS included in the trained answer.
  const fallback = new SampleEncoder(new FakeTokenizer({ chatTemplate: null }), { template: 'auto' });
  const f = fallback.encodePair(multi);
  assert.equal(trainedText(f.chosen.ids, f.chosen.trained), 'Doubled it is 18.</s>');
  assert.deepEqual([...f.chosen.ids], [...fallback.encode({ messages: [...multi.prompt, ...multi.chosen] }).ids]);
});

test('prepared pairs: split by pair, batches of chosen rows then rejected rows, short batches padded with empty rows', async () => {
  const tok = new FakeTokenizer();
  const d = await prepareDataset(join(FIXTURES, 'preference-text.jsonl'), tok, { seqLen: 256, valFraction: 0.25, seed: 3 });
  assert.equal(d.kind, 'pairs');
  if (d.kind !== 'pairs') return;
  assert.equal(d.train.length + d.validation.length, 4);
  assert.equal(d.validation.length, 1);
  assert.equal(d.stats.samples, 4);
  const b = d.train.batch([0, 1], { T: 64, size: 3, dtype: 'int32' });
  assert.equal(b.B, 6);
  assert.equal(b.pairs, 2);
  const row = (r: number) => tok.decode([...b.inputIds.slice(r * 64, (r + 1) * 64)].map(Number).filter((x) => x !== tok.padId));
  const lines = [d.train.line(0), d.train.line(1)];
  const src = (await pairsOf('preference-text.jsonl')).pairs;
  assert.ok(row(0).includes(src[lines[0]! - 1]!.chosen[0]!.content));
  assert.ok(row(1).includes(src[lines[1]! - 1]!.chosen[0]!.content));
  assert.equal(row(2), '', 'row 2 pads the third, missing pair');
  assert.ok(row(3).includes(src[lines[0]! - 1]!.rejected[0]!.content));
  assert.ok(row(4).includes(src[lines[1]! - 1]!.rejected[0]!.content));
  assert.equal(row(5), '');
  // Targets: only answer tokens; a pair's row length is its longer side.
  const targets = [...b.labels].filter((x) => Number(x) !== -100).length;
  assert.equal(targets, b.targets);
  assert.equal(d.train.tokenCount(0), Math.max(...[d.train.sides(0).chosen, d.train.sides(0).rejected].map((s) => d.samples.length(s))));
  await assert.rejects(prepareDataset(join(FIXTURES, 'preference-text.jsonl'), tok, { seqLen: 256, pack: true }), (e: Error) => e instanceof DatasetError && /cannot be packed/.test(e.message));
});

test('preview: the prompt once, then both answers with their trained spans', async () => {
  const tok = new FakeTokenizer();
  const p = await previewDataset(join(FIXTURES, 'preference-sharegpt.json'), { tokenizer: tok, rows: 2 });
  assert.equal(p.format!.name, 'preference');
  const pair = p.rows[0]!.pair!;
  assert.deepEqual(pair.prompt, [{ text: '<s><|user|>What is 2 plus 3?<|end|><|assistant|>', trained: false, truncated: false }]);
  assert.deepEqual(pair.chosen, [{ text: '2 plus 3 is 5. The answer is: 5<|end|>', trained: true, truncated: false }]);
  assert.deepEqual(pair.rejected, [{ text: '2 plus 3 is 6. The answer is: 6<|end|>', trained: true, truncated: false }]);
  assert.equal(p.rows[0]!.rendered!.trainedTokens, tok.encode('2 plus 3 is 5. The answer is: 5<|end|>').length);
  // A bad pair shows its error instead of spans.
  const file = writeFile(dir, 'bad.jsonl', `${JSON.stringify({ prompt: 'p', chosen: 'x', rejected: 'x' })}\n`);
  const bad = await previewDataset(file, { tokenizer: tok });
  assert.match(bad.rows[0]!.error!, /identical/);
});
