import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { prepareDataset, describeLengths, type PrepareOptions } from '../../src-main/data/dataset.js';
import { DatasetError } from '../../src-main/data/errors.js';
import { SampleStore } from '../../src-main/data/samples.js';
import { buildSequences } from '../../src-main/data/batch.js';
import { FakeTokenizer } from './fixtures/fake-tokenizer.js';
import { FIXTURES, tempDir, writeFile } from './helpers.js';

const dir = tempDir();
const tok = new FakeTokenizer();
const prepAny = (file: string, opts: Partial<PrepareOptions> = {}) => prepareDataset(file.includes('/') ? file : join(FIXTURES, file), tok, { seqLen: 256, ...opts });
/** A dataset of sequences (every fixture but the preference ones). */
const prep = async (file: string, opts: Partial<PrepareOptions> = {}) => {
  const d = await prepAny(file, opts);
  if (d.kind !== 'sequences') throw new Error(`${file}: expected sequences, got ${d.kind}`);
  return d;
};

test('every fixture format and file kind prepares into samples', async () => {
  const expect: [string, string, string, number][] = [
    ['alpaca.json', 'json', 'alpaca', 8], ['alpaca.jsonl', 'jsonl', 'alpaca', 8], ['alpaca.csv', 'csv', 'alpaca', 9],
    ['sharegpt.json', 'json', 'sharegpt', 8], ['messages.jsonl', 'jsonl', 'messages', 8], ['completion.jsonl', 'jsonl', 'completion', 8],
    ['completion.tsv', 'tsv', 'completion', 8], ['text.jsonl', 'jsonl', 'text', 8],
  ];
  for (const [file, kind, format, n] of expect) {
    const d = await prep(file);
    assert.equal(d.fileKind, kind, file);
    assert.equal(d.format.name, format, file);
    assert.equal(d.template, format === 'text' ? null : 'model', file);
    assert.equal(d.stats.samples, n, file);
    assert.equal(d.train.length, n, file);
    assert.equal(d.validation.length, 0, file);
    assert.ok(d.stats.trainedTokens > 0 && d.stats.trainedTokens < d.stats.tokens, file);
    assert.equal(d.stats.truncated, 0, file);
  }
  const mm = await prep('metamath.json', { map: { prompt: 'query', completion: 'response' } });
  assert.equal(mm.stats.samples, 8);
});

test('Parquet end to end: a nested ShareGPT column', async () => {
  const p = join(dir, 'sharegpt.parquet');
  parquetWriteFile({
    filename: p,
    columnData: [{ name: 'conversations', data: Array.from({ length: 6 }, (_, i) => [{ from: 'human', value: `q${i}` }, { from: 'gpt', value: `a${i}` }]) }],
    rowGroupSize: 4,
  });
  const d = await prep(p);
  assert.equal(d.format.name, 'sharegpt');
  assert.equal(d.stats.samples, 6);
  assert.equal(d.samples.line(5), 6);
});

test('token-length statistics', () => {
  assert.deepEqual(describeLengths([5, 1, 3, 2, 4]), { count: 5, total: 15, min: 1, mean: 3, p50: 3, p95: 5, max: 5 });
  const s = describeLengths(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal(s.p50, 50);
  assert.equal(s.p95, 95);
});

test('the train/validation split is seeded: same seed same split, disjoint and complete', async () => {
  const lines = async (seed: number) => {
    const d = await prep('alpaca.jsonl', { valFraction: 0.25, seed });
    const val = Array.from({ length: d.validation.length }, (_, i) => d.samples.line(d.validation.samples(i)[0]!));
    const train = Array.from({ length: d.train.length }, (_, i) => d.samples.line(d.train.samples(i)[0]!));
    return { val, train };
  };
  const a = await lines(1);
  assert.deepEqual(await lines(1), a);
  assert.equal(a.val.length, 2);
  assert.deepEqual([...a.val, ...a.train].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8]);
  const others = await Promise.all([2, 3, 4, 5].map(lines));
  assert.ok(others.some((o) => o.val.join() !== a.val.join()), 'different seeds should give different splits');
  await assert.rejects(prep('alpaca.jsonl', { valRows: 8 }), /8 usable rows are too few to hold out 8 for validation/);
});

test('truncation to the sequence length is counted; rows whose prompt fills it are dropped and counted', async () => {
  const rows = [
    { prompt: 'short', completion: 'ok' },
    { prompt: 'p', completion: 'x'.repeat(100) }, // truncated, still trains
    { prompt: 'q'.repeat(100), completion: 'y' }, // the prompt alone exceeds seqLen: nothing left to train
  ];
  const p = writeFile(dir, 'lens.jsonl', rows.map((r) => JSON.stringify(r)).join('\n'));
  const d = await prep(p, { seqLen: 40 });
  assert.equal(d.stats.samples, 2);
  assert.equal(d.stats.truncated, 1);
  assert.equal(d.stats.droppedTooLong, 1);
  assert.equal(d.samples.length(1), 40);
  assert.ok(d.stats.lengths.max > 100);
  assert.ok(d.notes.some((n) => /1 of 2 rows \(50\.0%\) were truncated to 40 tokens/.test(n)));
  assert.ok(d.notes.some((n) => /1 rows were dropped: their prompt fills all 40 tokens/.test(n)));
});

test('every row longer than the sequence length is an error that suggests a length', async () => {
  await assert.rejects(prep('alpaca.jsonl', { seqLen: 8 }), (e: Error) => {
    assert.ok(e instanceof DatasetError);
    assert.match(e.message, /alpaca\.jsonl: every row is longer than the sequence length 8 \(rows have \d+-\d+ tokens, median \d+, 95th percentile \d+\); raise --seq-len/);
    return true;
  });
});

test('empty datasets are clear errors in every file kind', async () => {
  for (const [name, content] of [['e.jsonl', ''], ['e2.jsonl', '\n\n'], ['e.json', '[]'], ['e2.json', '{"data": []}'], ['e.csv', 'prompt,completion\n'], ['e.tsv', '']]) {
    await assert.rejects(prep(writeFile(dir, name!, content!)), new RegExp(`${name!.replace('.', '\\.')}: the dataset is empty`), name);
  }
});

test('bad rows: conversion errors fail listing lines, or are skipped and counted', async () => {
  const p = writeFile(dir, 'mixed.jsonl', [
    '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
    '{"messages": [{"role": "tool", "content": "q"}]}',
    '{"messages": oops}',
    '{"messages": [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]}',
  ].join('\n'));
  await assert.rejects(prep(p), /mixed\.jsonl: 2 bad rows:\n {2}line 2: messages\[0\] has role "tool".*\n {2}line 3: invalid JSON/);
  const d = await prep(p, { onBadRow: 'skip' });
  assert.equal(d.stats.samples, 2);
  assert.equal(d.stats.badRows, 2);
  assert.ok(d.notes.some((n) => /skipped 2 bad rows in .*mixed\.jsonl/.test(n)));
  const allBad = writeFile(dir, 'allbad.jsonl', 'x\ny\n');
  await assert.rejects(prep(allBad, { onBadRow: 'skip' }), /allbad\.jsonl: no usable rows: all 2 rows are bad \(first: line 1: invalid JSON/);
});

test('rows without an assistant turn are dropped; a dataset of only those is an error', async () => {
  const p = writeFile(dir, 'noasst.jsonl', '{"messages": [{"role": "user", "content": "q"}]}\n{"messages": [{"role": "user", "content": "r"}]}\n');
  await assert.rejects(prep(p), /noasst\.jsonl: nothing to train on: none of the 2 rows has an assistant turn/);
  const q = writeFile(dir, 'someasst.jsonl', '{"messages": [{"role": "user", "content": "q"}]}\n{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n');
  const d = await prep(q);
  assert.equal(d.stats.droppedNoTarget, 1);
  assert.equal(d.stats.samples, 1);
});

test('batches: right padding, HF-convention labels (-100 off target), masks and dtypes', async () => {
  const d = await prep('completion.jsonl');
  const b = d.train.batch([0, 1], { dtype: 'int32' });
  const L0 = d.samples.length(0);
  const L1 = d.samples.length(1);
  assert.equal(b.T, Math.max(L0, L1));
  assert.equal(b.inputIds.length, 2 * b.T);
  const ids0 = d.samples.tokens(0);
  const tr0 = d.samples.trained(0);
  for (let t = 0; t < b.T; t++) {
    const real = t < L0;
    assert.equal(b.inputIds[t], real ? ids0[t] : tok.padId);
    assert.equal(b.attentionMask[t], real ? 1 : 0);
    assert.equal(b.labels[t], real && t > 0 && tr0[t] ? ids0[t] : -100);
    assert.equal(b.positionIds[t], real ? t : 0);
    assert.equal(b.segmentIds[t], real ? 1 : 0);
  }
  let targets = 0;
  for (const v of b.labels) if (v !== -100) targets++;
  assert.equal(b.targets, targets);
  assert.equal(b.tokens, L0 + L1);
  const wide = d.train.batch([0], { T: 128 });
  assert.ok(wide.inputIds instanceof BigInt64Array);
  assert.equal(wide.T, 128);
  assert.equal(wide.labels[0], -100n);
  assert.throws(() => d.train.batch([0], { T: 4 }), /a sequence has \d+ tokens, more than T=4/);
  assert.throws(() => d.train.batch([99]), /sequence 99 out of range/);
});

test('packing: samples share rows without crossing T; positions restart, segments and labels keep samples apart', async () => {
  const d = await prep('completion.jsonl', { seqLen: 120, pack: true });
  const n = d.stats.samples;
  assert.ok(d.train.length < n, 'short samples should share rows');
  let members = 0;
  for (let i = 0; i < d.train.length; i++) {
    assert.ok(d.train.tokenCount(i) <= 120);
    members += d.train.samples(i).length;
  }
  assert.equal(members, n);
  assert.equal(d.train.totalTokens(), d.stats.tokens);
  assert.ok(d.stats.packingEfficiency! > 0.5 && d.stats.packingEfficiency! <= 1);
  const row = d.train.samples(0);
  assert.ok(row.length >= 2);
  const b = d.train.batch([0], { T: 120, dtype: 'int32' });
  let t = 0;
  row.forEach((s, k) => {
    const len = d.samples.length(s);
    const toks = d.samples.tokens(s);
    for (let j = 0; j < len; j++, t++) {
      assert.equal(b.inputIds[t], toks[j]);
      assert.equal(b.segmentIds[t], k + 1);
      assert.equal(b.positionIds[t], j);
      if (j === 0) assert.equal(b.labels[t], -100, 'the first token of a packed sample is never a target');
    }
  });
  assert.equal(b.segmentIds[t], t < 120 ? 0 : undefined);
  assert.equal(b.tokens, t);
});

test('buildSequences packs greedily in the given order', () => {
  const store = new SampleStore();
  for (const len of [5, 4, 3, 6, 2]) store.push(new Int32Array(len).fill(7), new Uint8Array(len).fill(1), 1);
  const seqs = buildSequences(store, [0, 1, 2, 3, 4], 10, true, 0);
  assert.deepEqual(Array.from({ length: seqs.length }, (_, i) => Array.from(seqs.samples(i))), [[0, 1], [2, 3], [4]]);
  const unpacked = buildSequences(store, [4, 2], 10, false, 0);
  assert.deepEqual(Array.from({ length: unpacked.length }, (_, i) => Array.from(unpacked.samples(i))), [[4], [2]]);
  assert.equal(buildSequences(store, [], 10, true, 0).length, 0);
});

test('readExamples streams converted examples with their lines (for evaluation)', async () => {
  const { readExamples } = await import('../../src-main/data/dataset.js');
  const out: { line: number; example: unknown }[] = [];
  for await (const e of readExamples(join(FIXTURES, 'gsm8k.jsonl'), { map: { prompt: 'question', completion: 'answer' } })) out.push(e);
  assert.equal(out.length, 8);
  assert.equal(out[2]!.line, 3);
  assert.match(JSON.stringify(out[0]!.example), /#### 5/);
  await assert.rejects(async () => {
    for await (const _ of readExamples(writeFile(dir, 'ex-empty.jsonl', ''))) void _;
  }, /ex-empty\.jsonl: the dataset is empty/);
});
