import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SampleEncoder, encodeGenerationPrompt, renderFallback, type EncodedSample } from '../../src-main/data/template.js';
import { DatasetError, RowError } from '../../src-main/data/errors.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import type { ChatTemplateName, TokenizerFamily } from '../../src-main/synthetic/tokenizers.js';
import { loadTokenizer } from '../../src-main/model/tokenizer.js';
import type { ChatMessage, TextTokenizer } from '../../src-main/model/types.js';
import { FakeTokenizer, MERGING_TEMPLATE } from './fixtures/fake-tokenizer.js';
import { tempDir } from './helpers.js';

const sys = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const asst = (content: string): ChatMessage => ({ role: 'assistant', content });

/** The trained tokens as runs of text, e.g. ['A<|end|>', 'B<|end|>']. */
function trainedRuns(tok: TextTokenizer, s: EncodedSample): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  for (let i = 0; i <= s.ids.length; i++) {
    if (i < s.ids.length && s.trained[i]) cur.push(s.ids[i]!);
    else if (cur.length) {
      runs.push(tok.decode(cur));
      cur = [];
    }
  }
  return runs;
}

test("model chat template: only the assistant turns are trained, ending in the template's EOS", () => {
  const tok = new FakeTokenizer();
  const enc = new SampleEncoder(tok);
  assert.equal(enc.template, 'model');
  const s = enc.encode({ messages: [sys('S'), user('Q1'), asst('A1'), user('Q2'), asst('A2')] });
  assert.equal(tok.decode(Array.from(s.ids)), '<s><|system|>S<|end|><|user|>Q1<|end|><|assistant|>A1<|end|><|user|>Q2<|end|><|assistant|>A2<|end|>');
  assert.deepEqual(trainedRuns(tok, s), ['A1<|end|>', 'A2<|end|>']);
  assert.equal(s.boundaryIssue, null);
  assert.equal(s.ids.length, s.trained.length);
});

test('EOS is appended (and trained) when the template does not end the turn with an EOS id', () => {
  const tok = new FakeTokenizer({ eos: ['</s>'] });
  const s = new SampleEncoder(tok).encode({ messages: [user('Q'), asst('A')] });
  assert.equal(s.ids[s.ids.length - 1], tok.tokenToId('</s>'));
  assert.deepEqual(trainedRuns(tok, s), ['A<|end|></s>']);
  // A conversation ending with a user turn gets no EOS.
  const t = new SampleEncoder(tok).encode({ messages: [user('Q'), asst('A'), user('more')] });
  assert.notEqual(t.ids[t.ids.length - 1], tok.tokenToId('</s>'));
});

test('a merge across the prompt/completion boundary is reported and masked from the first differing token', () => {
  const tok = new FakeTokenizer({ chatTemplate: MERGING_TEMPLATE });
  const enc = new SampleEncoder(tok);
  const clean = enc.encode({ messages: [user('Q'), asst('A')] });
  assert.equal(clean.boundaryIssue, null);
  assert.deepEqual(trainedRuns(tok, clean), ['A</s>']);
  const merged = enc.encode({ messages: [user('Q'), asst(' A')] }); // "Assistant:" + " A": ': ' is one token
  assert.match(merged.boundaryIssue!, /tokenizer merges tokens across the prompt\/completion boundary of turn 2/);
  assert.deepEqual(trainedRuns(tok, merged), [': A</s>']);
});

test('a template that renders the prefix differently is reported; template errors are bad rows', () => {
  const odd = "{% for m in messages %}{{ m['content'] }}{% if loop.last %}!{% endif %}{% endfor %}";
  const s = new SampleEncoder(new FakeTokenizer({ chatTemplate: odd })).encode({ messages: [user('Q'), asst('A')] });
  assert.match(s.boundaryIssue!, /renders the conversation before turn 2 differently/);
  const raising = "{{ raise_exception('roles must alternate') }}";
  assert.throws(
    () => new SampleEncoder(new FakeTokenizer({ chatTemplate: raising })).encode({ messages: [user('Q'), asst('A')] }),
    (e: Error) => e instanceof RowError && /the chat template fails on the conversation: .*roles must alternate/.test(e.message),
  );
});

test('no chat template: the documented fallback, with an exact mask and the same prompt as generation', () => {
  const tok = new FakeTokenizer({ chatTemplate: null });
  const enc = new SampleEncoder(tok);
  assert.equal(enc.template, 'fallback');
  assert.match(enc.notes[0]!, /no chat template; using Finch's fallback template "finch-alpaca": .*### Instruction/);
  const msgs = [sys('S'), user('Q'), asst('A'), user('Q2'), asst('A2')];
  const s = enc.encode({ messages: msgs });
  const expected = 'S\n\n### Instruction:\nQ\n\n### Response:\nA</s>\n\n### Instruction:\nQ2\n\n### Response:\nA2</s>';
  assert.equal(renderFallback(msgs, '</s>'), expected);
  assert.equal(tok.decode(Array.from(s.ids)), '<s>' + expected);
  assert.deepEqual(trainedRuns(tok, s), ['A</s>', 'A2</s>']);
  const prompt = encodeGenerationPrompt(tok, [sys('S'), user('Q')]);
  assert.deepEqual(Array.from(s.ids.subarray(0, prompt.length)), prompt);
  assert.equal(s.trained.subarray(0, prompt.length).indexOf(1), -1);
  assert.equal(s.trained[prompt.length], 1);
});

test("template 'model' without a chat template is an error naming the fallback; 'fallback' forces it", () => {
  const strict = new SampleEncoder(new FakeTokenizer({ chatTemplate: null }), { template: 'model' });
  assert.throws(
    () => strict.encode({ messages: [user('Q'), asst('A')] }),
    (e: Error) => e instanceof DatasetError && /no chat_template.*fallback template "finch-alpaca" \(\[BOS\]\{system\}.*--template fallback/.test(e.message),
  );
  assert.equal(strict.encode({ text: 'raw text needs no template' }).boundaryIssue, null);
  const enc = new SampleEncoder(new FakeTokenizer(), { template: 'fallback' });
  assert.equal(enc.template, 'fallback');
});

test('raw text: BOS where the tokenizer adds one, the text, EOS; everything trained', () => {
  const tok = new FakeTokenizer();
  const s = new SampleEncoder(tok).encode({ text: 'the answer is 4' });
  assert.equal(tok.decode(Array.from(s.ids)), '<s>the answer is 4</s>');
  assert.ok(s.trained.every((v) => v === 1));
  const noBos = new FakeTokenizer({ addsBos: false });
  assert.equal(noBos.decode(Array.from(new SampleEncoder(noBos).encode({ text: 'x' }).ids)), 'x</s>');
});

test("trainOn 'all' trains every token of a conversation", () => {
  const s = new SampleEncoder(new FakeTokenizer(), { trainOn: 'all' }).encode({ messages: [user('Q'), asst('A')] });
  assert.ok(s.trained.every((v) => v === 1));
});

// Real tokenizers (trained by the synthetic checkpoint writer) with the families' chat templates.
const dir = tempDir();
const cases: [string, TokenizerFamily, ChatTemplateName][] = [
  ['llama3', 'llama3', 'llama3'],
  ['chatml', 'qwen2', 'chatml'],
  ['mistral', 'sentencepiece', 'mistral'],
  ['llama2', 'sentencepiece', 'llama2'],
];
for (const [name, family, template] of cases) {
  test(`real tokenizer, ${name} template: exact boundaries, trained text is the answers`, () => {
    const ckpt = writeSyntheticCheckpoint(`${dir}/${name}`, { tokenizer: family, chatTemplate: template, vocabSize: 400, hiddenSize: 16, numLayers: 1, numHeads: 2 });
    const tok = loadTokenizer(ckpt.dir);
    const msgs = [sys('You add numbers.'), user('What is 2 plus 3?'), asst('2 plus 3 is 5.'), user('And 4 plus 4?'), asst('The answer is: 8')];
    const s = new SampleEncoder(tok).encode({ messages: msgs });
    assert.equal(s.boundaryIssue, null);
    const runs = trainedRuns(tok, s).map((r) => tok.decode(tok.encode(r, { addSpecialTokens: false }), { skipSpecialTokens: true }).trim());
    assert.deepEqual(runs, ['2 plus 3 is 5.', 'The answer is: 8']);
    // Each trained run ends in (or right after) an EOS id, so the model learns to stop.
    const eos = new Set(tok.eosIds);
    let lastTrained = s.trained.lastIndexOf(1);
    assert.ok(eos.has(s.ids[lastTrained]!) || eos.has(s.ids[lastTrained - 1]!), `${name}: the last trained token is not EOS`);
    // The prompt the generator will use is exactly the untrained prefix before the first answer.
    const prompt = encodeGenerationPrompt(tok, msgs.slice(0, 2));
    assert.deepEqual(Array.from(s.ids.subarray(0, prompt.length)), prompt);
    lastTrained = s.trained.indexOf(1);
    assert.equal(lastTrained, prompt.length);
  });
}

test('real tokenizer without a chat template uses the fallback', () => {
  const ckpt = writeSyntheticCheckpoint(`${dir}/base`, { chatTemplate: null, vocabSize: 400, hiddenSize: 16, numLayers: 1, numHeads: 2 });
  const tok = loadTokenizer(ckpt.dir);
  const enc = new SampleEncoder(tok);
  assert.equal(enc.template, 'fallback');
  const s = enc.encode({ messages: [user('What is 2 plus 3?'), asst('5')] });
  assert.deepEqual(trainedRuns(tok, s).map((r) => r.replace(tok.decode([tok.eosIds[0]!]), '<EOS>')), ['5<EOS>']);
  assert.equal(tok.decode(Array.from(s.ids), { skipSpecialTokens: true }), '### Instruction:\nWhat is 2 plus 3?\n\n### Response:\n5');
});
