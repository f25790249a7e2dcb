// Tokenizers of both families (byte-level BPE like Llama 3 / Qwen2, SentencePiece-style BPE with
// byte fallback like Llama 2 / Mistral) loaded from synthetic model folders: encode/decode round
// trips, special tokens, BOS rules, chat templates, `finch tokenize`, and every error case.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { run as tokenizeCli } from '../../src-main/cli/commands/tokenize.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { TokenizerError, loadTokenizer } from '../../src-main/model/tokenizer.js';
import type { ChatMessage } from '../../src-main/model/types.js';
import { tempDir } from './model-helpers.js';

const root = tempDir();
const small = { hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 32 };
const llama3 = writeSyntheticCheckpoint(join(root, 'llama3'), { ...small, modelType: 'llama', tokenizer: 'llama3', vocabSize: 600 }).dir;
const llama2 = writeSyntheticCheckpoint(join(root, 'llama2'), { ...small, modelType: 'llama', tokenizer: 'sentencepiece', vocabSize: 600 }).dir;
const mistral = writeSyntheticCheckpoint(join(root, 'mistral'), { ...small, modelType: 'mistral', vocabSize: 600 }).dir;
const qwen2 = writeSyntheticCheckpoint(join(root, 'qwen2'), { ...small, modelType: 'qwen2', vocabSize: 600 }).dir;

const TEXTS = [
  'Hello world',
  'The finch sings at 12:30, and 1,250 books cost $37.50!',
  'Café naïve résumé — 東京 谢谢 🙂👍🏽',
  'line one\nline two\n\n    indented\tafter a tab',
  'double  spaces   and trailing space ',
  "code: const total = items.reduce((s, x) => s + x.price, 0); // it's done",
  'ALL CAPS and MiXeD cAsE, don\'t we\'ll I\'m',
  'x',
];

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'Bye' },
];

test('round trips: decode(encode(text)) == text for both families, without and with special tokens', () => {
  for (const dir of [llama3, llama2, mistral, qwen2]) {
    const tok = loadTokenizer(dir);
    for (const text of TEXTS) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.ok(ids.every((i) => Number.isInteger(i) && i >= 0 && i < tok.vocabSize), `${dir}: ids out of range`);
      assert.equal(tok.decode(ids), text, `${dir}: round trip of ${JSON.stringify(text)}`);
      assert.equal(tok.decode(tok.encode(text), { skipSpecialTokens: true }), text, `${dir}: with BOS, skipping specials`);
    }
    assert.deepEqual(tok.encode('', { addSpecialTokens: false }), []);
    assert.equal(tok.decode([]), '');
  }
});

test('byte-level (Llama 3 style): BOS added by the post-processor, specials are single ids, eos order', () => {
  const tok = loadTokenizer(llama3);
  const config = JSON.parse(readFileSync(join(llama3, 'config.json'), 'utf8'));
  assert.equal(tok.vocabSize, config.vocab_size);
  const bos = tok.tokenToId('<|begin_of_text|>'), eot = tok.tokenToId('<|eot_id|>'), eot2 = tok.tokenToId('<|end_of_text|>');
  assert.ok(bos !== null && eot !== null && eot2 !== null, 'special tokens are in the vocabulary');
  assert.equal(tok.bosId, bos);
  assert.equal(tok.addsBos, true);
  assert.deepEqual(tok.eosIds, [eot, eot2]); // tokenizer_config's eos_token first, then generation_config's
  assert.equal(tok.padId, null);
  const ids = tok.encode('Hello world');
  assert.equal(ids[0], bos);
  assert.deepEqual(ids.slice(1), tok.encode('Hello world', { addSpecialTokens: false }));
  assert.equal(tok.decode(ids), '<|begin_of_text|>Hello world');
  // Every byte has a token, so no text is ever unknown; special-token text maps to its single id.
  const mixed = tok.encode('a<|eot_id|>b', { addSpecialTokens: false });
  assert.deepEqual(mixed, [...tok.encode('a', { addSpecialTokens: false }), eot, ...tok.encode('b', { addSpecialTokens: false })]);
  assert.equal(tok.decode(mixed, { skipSpecialTokens: true }), 'ab');
  assert.equal(tok.tokenToId('definitely not a token'), null);
  assert.equal(tok.idToToken(bos!), '<|begin_of_text|>');
  // The trained merges do compress text like the corpus (74 bytes).
  const sentence = 'The teacher quietly found the small garden near the old station yesterday.';
  const n = tok.encode(sentence, { addSpecialTokens: false }).length;
  assert.ok(n < 74 * 0.5, `${n} tokens for 74 bytes: merges are not applied`);
});

test('SentencePiece style (Llama 2 / Mistral): <s> added, byte fallback, ▁ spaces', () => {
  for (const dir of [llama2, mistral]) {
    const tok = loadTokenizer(dir);
    assert.equal(tok.bosId, 1);
    assert.equal(tok.addsBos, true);
    assert.deepEqual(tok.eosIds, [2]);
    assert.equal(tok.tokenToId('<unk>'), 0);
    const ids = tok.encode('Hi there');
    assert.equal(ids[0], 1);
    assert.equal(tok.idToToken(ids[1]!)!.startsWith('\u2581'), true, 'first piece carries the ▁ prefix');
    assert.equal(tok.decode(ids), '<s> Hi there');
    // A character outside the vocabulary falls back to its UTF-8 bytes.
    const rare = tok.encode('\u0416', { addSpecialTokens: false }); // Ж: 0xD0 0x96
    assert.deepEqual(rare.slice(-2).map((i) => tok.idToToken(i)), ['<0xD0>', '<0x96>']);
    assert.equal(tok.decode(rare), '\u0416');
  }
});

test('Qwen2 style: no BOS, ChatML specials, pad token', () => {
  const tok = loadTokenizer(qwen2);
  assert.equal(tok.bosId, null);
  assert.equal(tok.addsBos, false);
  assert.deepEqual(tok.encode('Hello world'), tok.encode('Hello world', { addSpecialTokens: false }));
  assert.deepEqual(tok.eosIds, [tok.tokenToId('<|im_end|>'), tok.tokenToId('<|endoftext|>')]);
  assert.equal(tok.padId, tok.tokenToId('<|endoftext|>'));
});

test('chat templates render each family\'s format and tokenize back exactly', () => {
  const expected: [string, string][] = [
    [llama3, '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'],
    [llama2, '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s><s>[INST] Bye [/INST]'],
    [mistral, '<s>[INST] Be brief.\n\nHi there [/INST]Hello!</s>[INST] Bye [/INST]'],
    [qwen2, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n'],
  ];
  for (const [dir, want] of expected) {
    const tok = loadTokenizer(dir);
    assert.equal(tok.hasChatTemplate, true);
    const text = tok.applyChatTemplate(CHAT, { addGenerationPrompt: true });
    assert.equal(text, want, dir);
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.equal(tok.decode(ids), text, `${dir}: rendered chat round trips`);
    // The end-of-turn token is one id, once per message that ends with it.
    const eos = tok.eosIds[0]!;
    const turnsEnding = dir === llama3 || dir === qwen2 ? 4 : 1;
    assert.equal(ids.filter((i) => i === eos).length, turnsEnding, `${dir}: end-of-turn ids`);
  }
  // Without a generation prompt the Llama 3 render stops after the last turn.
  const noPrompt = loadTokenizer(llama3).applyChatTemplate(CHAT.slice(0, 2));
  assert.ok(noPrompt.endsWith('Hi there<|eot_id|>'), noPrompt);
});

test('template errors and variants: alternation, named lists, chat_template.jinja, none', () => {
  const alt = loadTokenizer(mistral);
  assert.throws(
    () => alt.applyChatTemplate([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]),
    (e: Error) => e instanceof TokenizerError && e.message.includes('tokenizer_config.json') && /alternate/.test(e.message),
  );

  const d = join(root, 'variants');
  cpSync(llama3, d, { recursive: true });
  const cfgPath = join(d, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template: 'DEFAULT {{ messages[0].content }}' }] }));
  assert.equal(loadTokenizer(d).applyChatTemplate([{ role: 'user', content: 'q' }]), 'DEFAULT q');
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, chat_template: [{ name: 'tool_use', template: 'TOOLS' }] }));
  assert.throws(() => loadTokenizer(d), /tokenizer_config.json: chat_template lists templates "tool_use" but none named "default"/);
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, chat_template: '{% for m in messages %}' }));
  assert.throws(() => loadTokenizer(d), /tokenizer_config.json: chat_template does not parse/);

  // Newer transformers save the template next to the config; it wins.
  writeFileSync(cfgPath, JSON.stringify(cfg));
  writeFileSync(join(d, 'chat_template.jinja'), 'JINJA {{ bos_token }}{{ messages|length }}');
  assert.equal(loadTokenizer(d).applyChatTemplate(CHAT), 'JINJA <|begin_of_text|>4');
  rmSync(join(d, 'chat_template.jinja'));

  const { chat_template: _t, ...base } = cfg;
  writeFileSync(cfgPath, JSON.stringify(base));
  const tok = loadTokenizer(d);
  assert.equal(tok.hasChatTemplate, false);
  assert.throws(() => tok.applyChatTemplate(CHAT), (e: Error) => e instanceof TokenizerError && e.message.startsWith(cfgPath) && /no chat_template/.test(e.message));
});

test('Llama tokenizer classes follow add_bos_token / add_eos_token from tokenizer_config.json', () => {
  const d = join(root, 'bos-flags');
  cpSync(mistral, d, { recursive: true });
  const cfgPath = join(d, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  const plain = loadTokenizer(d).encode('Hi', { addSpecialTokens: false });
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, add_bos_token: false, add_eos_token: true }));
  const tok = loadTokenizer(d);
  assert.equal(tok.addsBos, false);
  assert.deepEqual(tok.encode('Hi'), [...plain, 2]);
  // Without tokenizer_config.json the post-processor decides, and BOS is found from it.
  rmSync(cfgPath);
  const bare = loadTokenizer(d);
  assert.equal(bare.bosId, 1);
  assert.equal(bare.addsBos, true);
  assert.equal(bare.hasChatTemplate, false);
});

test('errors name the file: missing folder, missing/corrupt tokenizer.json, bad ids', () => {
  assert.throws(() => loadTokenizer(join(root, 'nope')), /model folder not found: .*nope/);
  const d = join(root, 'broken');
  cpSync(llama3, d, { recursive: true });
  const tokPath = join(d, 'tokenizer.json');
  const good = readFileSync(tokPath, 'utf8');
  rmSync(tokPath);
  assert.throws(() => loadTokenizer(d), (e: Error) => e instanceof TokenizerError && e.message.startsWith(`${tokPath} not found`));
  writeFileSync(tokPath, good.slice(0, good.length / 2));
  assert.throws(() => loadTokenizer(d), new RegExp(`${tokPath}: invalid JSON`));
  writeFileSync(tokPath, JSON.stringify({ ...JSON.parse(good), model: undefined }));
  assert.throws(() => loadTokenizer(d), new RegExp(`${tokPath}: missing "model" section`));
  writeFileSync(tokPath, JSON.stringify({ ...JSON.parse(good), decoder: { type: 'NoSuchDecoder' } }));
  assert.throws(() => loadTokenizer(d), new RegExp(`${tokPath}: cannot build the tokenizer .*NoSuchDecoder`));
  writeFileSync(join(d, 'tokenizer_config.json'), '{"bos_token": ');
  writeFileSync(tokPath, good);
  assert.throws(() => loadTokenizer(d), /tokenizer_config.json: invalid JSON/);
  const tok = loadTokenizer(llama3);
  assert.throws(() => tok.decode([tok.vocabSize]), /token id \d+ is out of range/);
  assert.throws(() => tok.decode([-1]), /token id -1 is out of range/);
});

/** Runs `finch tokenize` in-process, capturing what it prints. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await tokenizeCli(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('finch tokenize prints the model\'s ids (BOS where the tokenizer adds it)', async () => {
  const tok = loadTokenizer(llama3);
  const expected = tok.encode('Hello world');
  const json = await cli(['--model', llama3, '--text', 'Hello world', '--json']);
  assert.equal(json.code, 0);
  assert.deepEqual(JSON.parse(json.out), { ids: expected });
  const plain = await cli(['--model', llama3, '--text', 'Hello world']);
  assert.equal(plain.out, expected.join(' '));
  const raw = await cli(['--model', qwen2, '--text', 'Hello world', '--json', '--no-special', '--tokens']);
  const q = loadTokenizer(qwen2);
  assert.deepEqual(JSON.parse(raw.out).ids, q.encode('Hello world'));
  assert.equal(JSON.parse(raw.out).tokens.join(''), 'HelloĠworld');
  const noBos = await cli(['--model', mistral, '--text', 'Hi', '--no-special', '--json']);
  assert.deepEqual(JSON.parse(noBos.out).ids, loadTokenizer(mistral).encode('Hi', { addSpecialTokens: false }));

  const missing = await cli(['--text', 'x']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--model and --text are required/);
  const unknown = await cli(['--model', llama3, '--text', 'x', '--bogus']);
  assert.equal(unknown.code, 2);
  const bad = await cli(['--model', join(root, 'nope'), '--text', 'x']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /model folder not found/);
  assert.equal((await cli(['--help'])).code, 0);
});
