import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openRows } from '../../src-main/data/read/index.js';
import { parseColumnMap, resolveFormat, suggestMap, toExample, type FormatOptions } from '../../src-main/data/formats.js';
import { DatasetError, RowError } from '../../src-main/data/errors.js';
import type { Example } from '../../src-main/data/types.js';
import { FIXTURES, collect } from './helpers.js';

async function examples(file: string, opts: FormatOptions = {}) {
  const rows = await collect((await openRows(join(FIXTURES, file))).rows);
  const fmt = resolveFormat(file, rows[0]!.row, opts);
  return { fmt, examples: rows.map((r) => toExample(r.row, fmt)) };
}

const user = (content: string) => ({ role: 'user', content }) as const;
const assistant = (content: string) => ({ role: 'assistant', content }) as const;

test('alpaca (JSON, JSONL, CSV): instruction + input as the user turn, optional system', async () => {
  for (const f of ['alpaca.json', 'alpaca.jsonl', 'alpaca.csv']) {
    const { fmt, examples: ex } = await examples(f);
    assert.equal(fmt.name, 'alpaca', f);
    assert.deepEqual(ex[1], { messages: [user('What is 4 plus 5?'), assistant('4 plus 5 is 9. The answer is: 9')] }, f);
    const first = f === 'alpaca.csv' ? [] : [{ role: 'system', content: 'You are a careful calculator.' }];
    assert.deepEqual(ex[0], { messages: [...first, user('Add the two numbers.\n\n2 + 3'), assistant('2 plus 3 is 5. The answer is: 5')] }, f);
  }
});

test('sharegpt: from/value turns with system and multi-turn', async () => {
  const { fmt, examples: ex } = await examples('sharegpt.json');
  assert.equal(fmt.name, 'sharegpt');
  assert.deepEqual(ex[0], {
    messages: [{ role: 'system', content: 'Be brief.' }, user('What is 2 plus 3?'), assistant('2 plus 3 is 5. The answer is: 5')],
  });
  assert.equal((ex[1] as { messages: unknown[] }).messages.length, 4);
});

test('messages, completion (JSONL and TSV) and text', async () => {
  const m = await examples('messages.jsonl');
  assert.equal(m.fmt.name, 'messages');
  assert.equal((m.examples[3] as { messages: unknown[] }).messages.length, 4);
  for (const f of ['completion.jsonl', 'completion.tsv']) {
    const c = await examples(f);
    assert.equal(c.fmt.name, 'completion');
    assert.deepEqual(c.examples[0], { messages: [user('What is 2 plus 3?'), assistant('2 plus 3 is 5. The answer is: 5')] });
  }
  const t = await examples('text.jsonl');
  assert.equal(t.fmt.name, 'text');
  assert.deepEqual(t.examples[0], { text: '2 plus 3 equals 5. Adding 3 to 2 gives 5.' });
});

test('column maps: MetaMathQA query/response and GSM8K question/answer', async () => {
  const mm = await examples('metamath.json', { map: parseColumnMap('prompt=query,completion=response') });
  assert.deepEqual(mm.fmt, { name: 'completion', columns: { prompt: 'query', completion: 'response', system: 'system' }, mapped: true });
  assert.deepEqual(mm.examples[0], { messages: [user('What is 2 plus 3?'), assistant('We add 2 and 3 to get 5.\nThe answer is: 5')] });
  const gsm = await examples('gsm8k.jsonl', { map: { prompt: 'question', completion: 'answer' } });
  assert.match((gsm.examples[0] as { messages: { content: string }[] }).messages[1]!.content, /#### 5$/);
  // A map may rename just one field of a format and keep the others' default names.
  const r = resolveFormat('x', { instruction: 'a', answer: 'b' }, { map: { output: 'answer' } });
  assert.deepEqual(r.columns, { instruction: 'instruction', output: 'answer', input: 'input', system: 'system' });
});

test('unrecognised columns: the error lists the columns found and suggests a mapping', async () => {
  await assert.rejects(examples('metamath.json'), (e: Error) => {
    assert.ok(e instanceof DatasetError);
    assert.match(e.message, /columns found: query, response, type, original_question/);
    assert.match(e.message, /--map prompt=query,completion=response/);
    return true;
  });
  assert.deepEqual(suggestMap(['Question', 'Answer']), { prompt: 'Question', completion: 'Answer' });
  assert.equal(suggestMap(['a', 'b']), null);
});

test('missing columns for an explicit format or map name the columns found', () => {
  assert.throws(() => resolveFormat('d.jsonl', { prompt: 'x' }, { format: 'completion' }), /d\.jsonl: the completion format needs column completion \(columns found: prompt\)/);
  assert.throws(() => resolveFormat('d.jsonl', { q: 'x', a: 'y' }, { map: { prompt: 'question', completion: 'a' } }), /names "question" for prompt, but the data has no such column \(columns found: q, a\)/);
  assert.throws(() => resolveFormat('d.jsonl', { q: 'x' }, { map: { prompt: 'q', text: 'q' } }), /mixes fields of the completion and text formats/);
  assert.throws(() => resolveFormat('d.jsonl', { q: 'x' }, { map: { prompt: 'q' }, format: 'alpaca' }), /belong to the preference or completion format, not alpaca/);
  assert.throws(() => parseColumnMap('prompt=query,answer'), /invalid column map entry "answer"/);
  assert.throws(() => parseColumnMap('question=q'), /invalid column map entry "question=q"/);
});

test('row-level problems are RowErrors (bad rows), not dataset errors', () => {
  const msgs = resolveFormat('x', { messages: [] });
  const bad = (row: Record<string, unknown>, re: RegExp) => assert.throws(() => toExample(row, msgs), (e: Error) => e instanceof RowError && re.test(e.message));
  bad({ messages: [] }, /messages is an empty list/);
  bad({ messages: 'hello' }, /must be a list of messages, got text/);
  bad({ messages: [{ role: 'tool', content: 'x' }] }, /messages\[0\] has role "tool"; Finch trains on system, user and assistant turns/);
  bad({ messages: [{ content: 'x' }] }, /messages\[0\] has no "role"/);
  bad({ messages: [{ role: 'user', content: null }] }, /messages\[0\]\.content is empty/);
  bad({ other: 1 }, /missing column "messages"/);
  const alp = resolveFormat('x', { instruction: 'a', output: 'b' });
  assert.throws(() => toExample({ instruction: { a: 1 }, output: 'b' }, alp), /instruction must be text, got object/);
  assert.throws(() => toExample({ text: '' }, resolveFormat('x', { text: 'a' })), /empty text/);
});

test('OpenAI content parts, JSON-encoded message lists, role aliases and TRL conversational prompt/completion', () => {
  const msgs = resolveFormat('x', { messages: [] });
  const ex = (row: Record<string, unknown>, fmt = msgs): Example => toExample(row, fmt);
  assert.deepEqual(ex({ messages: [{ role: 'developer', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { from: 'human', value: 'q' }, { role: 'model', content: 'r' }] }), {
    messages: [{ role: 'system', content: 'ab' }, user('q'), assistant('r')],
  });
  assert.deepEqual(ex({ messages: JSON.stringify([{ role: 'user', content: 'q' }]) }), { messages: [user('q')] });
  const comp = resolveFormat('x', { prompt: [], completion: [] });
  assert.deepEqual(ex({ prompt: [{ role: 'user', content: 'q' }], completion: [{ role: 'assistant', content: 'a' }], system: 'S' }, comp), {
    messages: [{ role: 'system', content: 'S' }, user('q'), assistant('a')],
  });
  assert.deepEqual(ex({ prompt: 'What is 2+2?', completion: 4 }, comp), { messages: [user('What is 2+2?'), assistant('4')] });
});
