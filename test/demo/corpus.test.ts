// The demo's generated text: the word problems are right (the worked step and the answer agree
// with the query's numbers), the splits are disjoint, everything is a function of the seed, and
// the pretraining stream never shows the skill the fine-tune is meant to teach.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatConversation, demoDataset, extractAnswer, pretrainDoc, randomSum, tokenizerCorpus, wordProblem } from '../../src-main/demo/corpus.js';
import { Rng } from '../../src-main/util/random.js';

test('sums stay in 0..20 and are correct', () => {
  const r = new Rng(1);
  const seen = { '+': 0, '-': 0 };
  for (let i = 0; i < 5000; i++) {
    const s = randomSum(r);
    seen[s.op]++;
    assert.equal(s.c, s.op === '+' ? s.a + s.b : s.a - s.b);
    for (const x of [s.a, s.b, s.c]) assert.ok(Number.isInteger(x) && x >= 0 && x <= 20, JSON.stringify(s));
    assert.ok(s.a >= 1 && s.b >= 1);
  }
  assert.ok(seen['+'] > 2000 && seen['-'] > 2000, 'both operations are drawn about equally often');
});

test('a word problem states its numbers, works the sum and ends with "The answer is: N"', () => {
  const r = new Rng(2);
  for (let i = 0; i < 2000; i++) {
    const p = wordProblem(r);
    const m = /(\d+) ([+-]) (\d+) = (\d+)\. The answer is: (\d+)$/.exec(p.response);
    assert.ok(m, `response format: ${p.response}`);
    const [a, op, b, c, ans] = [Number(m[1]), m[2], Number(m[3]), Number(m[4]), Number(m[5])];
    assert.equal(c, op === '+' ? a + b : a - b, p.response);
    assert.equal(ans, c);
    assert.equal(p.answer, c);
    assert.equal(p.type, op === '+' ? 'demo_add' : 'demo_sub');
    const nums = (p.query.match(/\d+/g) ?? []).map(Number);
    assert.deepEqual(nums, [a, b], `the query gives exactly the two numbers, in order: ${p.query}`);
    assert.match(p.query, /How many [A-Za-z ]+\?$/);
    assert.equal(extractAnswer(p.response), c);
  }
});

test('the dataset is seeded and its splits share no query', () => {
  const a = demoDataset(5, 500, 100);
  const b = demoDataset(5, 500, 100);
  assert.deepEqual(a, b);
  assert.equal(a.train.length, 500);
  assert.equal(a.test.length, 100);
  const testQueries = new Set(a.test.map((p) => p.query));
  assert.equal(testQueries.size, 100, 'test queries are unique');
  for (const p of a.train) assert.ok(!testQueries.has(p.query), `train row also in test: ${p.query}`);
  assert.notDeepEqual(demoDataset(6, 500, 100).test, a.test);
});

test('pretraining never shows the answer format nor a counting question in the chat', () => {
  const r = new Rng(3);
  let chats = 0, texts = 0, worked = 0;
  for (let i = 0; i < 3000; i++) {
    const d = pretrainDoc(r);
    if (d.kind === 'text') {
      texts++;
      assert.ok(!d.text.includes('The answer is'), d.text);
      if (/\d+ (\+|-|and|plus|minus|take away) \d+ (=|make|is) \d+/.test(d.text)) worked++;
    } else {
      chats++;
      for (const m of d.messages) {
        assert.ok(!m.content.includes('The answer is'), m.content);
        if (m.role === 'user') assert.ok(!/how many/i.test(m.content), `a chat turn asks a counting question: ${m.content}`);
      }
    }
  }
  assert.ok(chats > 900 && texts > 1500, `mix of chats (${chats}) and stories (${texts})`);
  assert.ok(worked > 500, `stories work sums in the prose (${worked})`);
});

test('conversations alternate user and assistant', () => {
  const r = new Rng(4);
  for (let i = 0; i < 500; i++) {
    const c = chatConversation(r);
    assert.ok(c.length >= 2 && c.length % 2 === 0);
    c.forEach((m, j) => assert.equal(m.role, j % 2 === 0 ? 'user' : 'assistant'));
    for (const m of c) assert.ok(m.content.trim().length > 0);
  }
});

test('the tokenizer corpus is deterministic', () => {
  assert.equal(tokenizerCorpus(9, 200), tokenizerCorpus(9, 200));
  assert.notEqual(tokenizerCorpus(9, 200), tokenizerCorpus(10, 200));
});

test('extractAnswer reads the last line format only', () => {
  assert.equal(extractAnswer('so 3 + 4 = 7. The answer is: 7'), 7);
  assert.equal(extractAnswer('The answer is:12'), 12);
  assert.equal(extractAnswer('Mia has 7 apples.'), null);
});
