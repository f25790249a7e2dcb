// The BPE trainer behind the synthetic tokenizers: merge order, ties, stopping, and bad input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainBpe } from '../../src-main/synthetic/bpe.js';

test('BPE trainer: most frequent pair first, ties to the smaller pair, deterministic', () => {
  const words = [['low', 5], ['lower', 2], ['newest', 6], ['widest', 3]].map(([w, count]) => ({ symbols: Array.from(w as string), count: count as number }));
  const alphabet = [...new Set(words.flatMap((w) => w.symbols))].sort();
  const { vocab, merges } = trainBpe(words, alphabet, alphabet.length + 4);
  // e+s and s+t both occur 9 times; (e, s) has the smaller ids. Then es+t (9), l+o (7), lo+w (7).
  assert.deepEqual(merges, [['e', 's'], ['es', 't'], ['l', 'o'], ['lo', 'w']]);
  assert.deepEqual(vocab.slice(alphabet.length), ['es', 'est', 'lo', 'low']);
  // Stops when no pair is left.
  assert.equal(trainBpe([{ symbols: ['a', 'b'], count: 1 }], ['a', 'b'], 100).vocab.length, 3);
  assert.throws(() => trainBpe([{ symbols: ['z'], count: 1 }], ['a'], 10), /symbol "z" is not in the initial vocab/);
});
