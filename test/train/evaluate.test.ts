// train/evaluate.ts readQa: the (prompt, reference) pairs that sample answers, `finch eval
// --exact-match` and the app's batch compare score. A preference pair gives its prompt with the
// chosen answer as the reference, in each of the three pair shapes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readQa } from '../../src-main/train/evaluate.js';

const fixture = (name: string) => new URL(`../fixtures/data/${name}`, import.meta.url).pathname;

test('readQa reads a preference pair as its prompt and the chosen answer, whatever the pair\'s shape', async () => {
  for (const file of ['preference-text.jsonl', 'preference-messages.jsonl', 'preference-sharegpt.json']) {
    const qa = await readQa(fixture(file), {});
    assert.ok(qa.length >= 2, file);
    assert.deepEqual(qa[0]!.prompt.at(-1), { role: 'user', content: 'What is 2 plus 3?' }, file);
    assert.equal(qa[0]!.reference, '2 plus 3 is 5. The answer is: 5', file);
  }
  // A system column, and a multi-turn ShareGPT prompt, stay in the prompt.
  assert.deepEqual((await readQa(fixture('preference-text.jsonl'), {}))[1]!.prompt[0], { role: 'system', content: 'You are a careful calculator.' });
  const turns = (await readQa(fixture('preference-sharegpt.json'), {}))[1]!;
  assert.deepEqual(turns.prompt.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  assert.equal(turns.reference, 'Doubled it is 18.');
});
