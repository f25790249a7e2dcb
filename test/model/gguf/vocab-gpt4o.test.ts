// The GPT-4o (o200k) split pattern, Phi-4-mini's, exported as llama.cpp's "gpt-4o" pre-tokenizer
// (node-llama-cpp 3.21.1's prebuilt CPU build), checked piece by piece. Each text gets a vocabulary
// that shows the split in the ids: trained on the text alone until no pair is left (every piece
// Finch's pre-tokenizer cuts is one token), plus a merge across every boundary between two pieces,
// ranked first, that no piece contains (Finch never applies it; a tokenizer that joins the two
// pieces must). So llama.cpp gives Finch's ids exactly when it cuts the text where Finch does.
// The texts are ones where o200k and Llama 3's pattern cut differently; where the venv is there,
// Hugging Face's own tokenizers give Finch's ids. llama.cpp runs "gpt-4o" as a rewrite with ASCII
// case classes and without \p{M}; the texts where that cuts differently are pinned here, as
// docs/gguf.md states them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as hfTokenizers from '@huggingface/tokenizers';
import { getLlama, readGgufFileInfo, type Llama } from 'node-llama-cpp';
import { exportGguf } from '../../../src-main/model/gguf/export.js';
import { loadTokenizer } from '../../../src-main/model/tokenizer.js';
import { writeSyntheticCheckpoint } from '../../../src-main/synthetic/checkpoint.js';
import { trainTokenizer } from '../../../src-main/synthetic/tokenizers.js';
import { problem, VENV_PYTHON } from '../../helpers/prerequisites.js';
import { tempDir } from '../model-helpers.js';

const root = tempDir('finch-gguf-gpt4o-');

/** Texts llama.cpp cuts as tokenizer.json's pattern does; each one Llama 3's pattern cuts otherwise. */
const AGREE = [
  "I'M sure it's OK, they'LL see. We'd've DON'T", // contractions stay on their word, any case
  "don't can't won't it'S", // (Llama 3 cuts "'t" off)
  'CamelCase XMLHttpRequest iPhone McDonald', // letter runs cut before a capital that follows lower case
  '12345 678 1234567 3.14159 in iOS17', // digit runs in threes (as Llama 3; Qwen2 cuts single digits)
  '你好世界，今天天气很好。東京\'s 日本語のテキスト', // CJK (category Lo: upper and lower case at once)
  'Привет Мир, naïve café résumé straße ÜberMensch', // non-ASCII letters
  'a/b//\nc:\n/path/to/file', // "/" kept after punctuation and its newlines
  'Hello!!!\r\n\r\n/  x\n \n  y', // newline runs (no two \n in a row: the probe trains on paragraphs)
  '... --- ***/\n/// ((x))', // punctuation runs
  '  leading\tTabsAnd trailing   ', // whitespace runs
  'x\u00a0Yes 🙂👍 emojiFest ǅungla', // no-break space, emoji, title case
];

/**
 * Texts llama.cpp cuts differently: its "gpt-4o" regex takes "upper case" as any letter outside
 * a-z and "lower case" as any letter outside A-Z, and has no combining marks (\p{M}) in its words.
 */
const DIFFER = [
  'aÉ', // a non-ASCII capital after lower case: tokenizer.json cuts, llama.cpp does not
  ' ΑθήναΩ', // the same in Greek
  ' ÉCOLE', // an ASCII capital after a non-ASCII one: llama.cpp cuts " É" + "COLE"
  'नमस्ते दुनिया', // Devanagari vowel signs and virama are marks: llama.cpp cuts the words at them
  'e\u0301te\u0301', // decomposed accents (e + U+0301): the same
];

let llama: Llama;
before(async () => {
  llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
});
after(async () => {
  await llama?.dispose();
});

type PreTokenizer = { pre_tokenize(text: string): string[] };
const SequencePreTokenizer = (hfTokenizers as unknown as { SequencePreTokenizer: new (config: object) => PreTokenizer }).SequencePreTokenizer;

/**
 * A checkpoint folder whose byte-level o200k vocabulary shows the cuts of `text` (see the top) and
 * the pieces Finch's pre-tokenizer cuts it into.
 */
function probeCheckpoint(name: string, text: string): { dir: string; pieces: string[] } {
  const dir = join(root, name);
  const ck = writeSyntheticCheckpoint(dir, { tokenizer: 'o200k', corpus: text, vocabSize: 4096, modelVocabSize: 4096, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 16 });
  const file = join(dir, 'tokenizer.json');
  const tj = JSON.parse(readFileSync(file, 'utf8')) as { pre_tokenizer: object; model: { vocab: Record<string, number>; merges: string[][] } };
  const pieces = new SequencePreTokenizer(tj.pre_tokenizer).pre_tokenize(text);
  const inside = new Set<string>();
  for (const p of pieces) {
    const c = Array.from(p);
    for (let i = 1; i < c.length; i++) inside.add(`${c[i - 1]} ${c[i]}`);
  }
  const across: string[][] = [];
  for (let i = 1; i < pieces.length; i++) {
    const pair = [Array.from(pieces[i - 1]!).at(-1)!, Array.from(pieces[i]!)[0]!];
    if (!inside.has(pair.join(' ')) && !across.some((m) => m.join(' ') === pair.join(' '))) across.push(pair);
  }
  let next = ck.tokenizer.vocabSize;
  for (const [a, b] of across) if (!(a! + b! in tj.model.vocab)) tj.model.vocab[a! + b!] = next++;
  assert.ok(next <= 4096, 'the probe vocabulary fits the embedding rows');
  tj.model.merges = [...across, ...tj.model.merges];
  writeFileSync(file, JSON.stringify(tj));
  return { dir, pieces };
}

/** Hugging Face tokenizers' ids of `texts` under the tokenizer.json in `dir`. */
function hfIds(dir: string, texts: string[]): number[][] {
  const script = 'import json, sys\nfrom tokenizers import Tokenizer\nt = Tokenizer.from_file(sys.argv[1])\n' +
    'print(json.dumps([t.encode(x, add_special_tokens=False).ids for x in json.loads(sys.stdin.read())]))';
  return JSON.parse(execFileSync(VENV_PYTHON, ['-c', script, join(dir, 'tokenizer.json')], { input: JSON.stringify(texts), encoding: 'utf8', timeout: 60_000 })) as number[][];
}

test('the texts are ones where the GPT-4o pattern and Llama 3\'s cut differently', () => {
  const pre = (family: 'o200k' | 'llama3') => new SequencePreTokenizer(trainTokenizer(family, AGREE.join('\n\n'), 300).tokenizerJson.pre_tokenizer as object);
  const o200k = pre('o200k'), llama3 = pre('llama3');
  for (const text of AGREE) assert.notDeepEqual(o200k.pre_tokenize(text), llama3.pre_tokenize(text), JSON.stringify(text));
});

for (const [i, text] of AGREE.entries()) {
  test(`llama.cpp's "gpt-4o" cuts ${JSON.stringify(text)} where Finch does`, async () => {
    const { dir, pieces } = probeCheckpoint(`agree-${i}`, text);
    const tok = loadTokenizer(dir);
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.equal(ids.length, pieces.length, `one token per piece (${JSON.stringify(pieces)}): the probe sees every cut`);
    if (!problem('venv')) assert.deepEqual(hfIds(dir, [text])[0], ids, 'Hugging Face tokenizers');
    const file = exportGguf({ model: dir, dtype: 'f32', out: join(root, `agree-${i}.gguf`) }).out;
    assert.equal((await readGgufFileInfo(file)).metadata.tokenizer.ggml.pre, 'gpt-4o');
    const model = await llama.loadModel({ modelPath: file });
    try {
      assert.deepEqual(Array.from(model.tokenize(text, true)), ids);
    } finally {
      await model.dispose();
    }
  });
}

test('llama.cpp\'s "gpt-4o" cuts the documented texts differently (docs/gguf.md)', async () => {
  for (const [i, text] of DIFFER.entries()) {
    const { dir, pieces } = probeCheckpoint(`differ-${i}`, text);
    const ids = loadTokenizer(dir).encode(text, { addSpecialTokens: false });
    assert.equal(ids.length, pieces.length, `one token per piece of ${JSON.stringify(text)}`);
    if (!problem('venv')) assert.deepEqual(hfIds(dir, [text])[0], ids, `Hugging Face tokenizers on ${JSON.stringify(text)}`);
    const model = await llama.loadModel({ modelPath: exportGguf({ model: dir, dtype: 'f32', out: join(root, `differ-${i}.gguf`) }).out });
    try {
      assert.notDeepEqual(Array.from(model.tokenize(text, true)), ids, `llama.cpp still cuts ${JSON.stringify(text)} differently; if not, update docs/gguf.md`);
    } finally {
      await model.dispose();
    }
  }
});
