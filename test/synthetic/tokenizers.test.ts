// Synthetic tokenizers train to the requested vocabulary size for every family.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinCorpus } from '../../src-main/synthetic/corpus.js';
import { trainTokenizer } from '../../src-main/synthetic/tokenizers.js';

// The time is reported, not asserted: on a shared or loaded machine a wall-clock bound would flake.
test('tokenizer training reaches the requested size on a 200 KB corpus (time reported)', () => {
  const corpus = builtinCorpus(200 * 1024, 99);
  assert.ok(corpus.length >= 200 * 1024, 'corpus size');
  for (const family of ['llama3', 'qwen2', 'o200k', 'sentencepiece'] as const) {
    const t0 = performance.now();
    const t = trainTokenizer(family, corpus, 1536);
    console.log(`# ${family}: 200 KB corpus to 1536 tokens in ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(t.vocabSize, 1536, `${family}: trained to the requested size`);
  }
});
