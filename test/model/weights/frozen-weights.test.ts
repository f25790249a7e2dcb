// Where frozen weights come from, fixed when they are made: raw checkpoint slices only for streamed
// weights, embedding rows read one by one (or from the table, read once), 4-bit blocks of the
// weights' own block size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quantizeInt4 } from '../../../src-main/model/quant.js';
import { FrozenWeights, type RawWeightSlice } from '../../../src-main/model/weights/frozen-weights.js';
import { tinyConfig } from '../../helpers/tiny-llama.js';

const cfg = tinyConfig({ vocabSize: 8, hiddenSize: 4 });
const EMBED = 'model.embed_tokens.weight';
const table = Float32Array.from({ length: 8 * 4 }, (_, i) => i);
const slice: RawWeightSlice = { path: '/ckpt/model.safetensors', offset: 64, length: 128, dtype: 'bfloat16' };

test('graphs see the checkpoint bytes of streamed weights only', () => {
  const rawSlice = (name: string) => (name === EMBED ? slice : null);
  assert.deepEqual(new FrozenWeights(cfg, () => table, { streamFloats: true, rawSlice }).rawSlice(EMBED), slice);
  assert.equal(new FrozenWeights(cfg, () => table, { streamFloats: true, rawSlice }).rawSlice('lm_head.weight'), null);
  assert.equal(new FrozenWeights(cfg, () => table, { rawSlice }).rawSlice(EMBED), null, 'kept weights are made from floats');
  assert.equal(new FrozenWeights(cfg, () => table, { streamFloats: true }).rawSlice(EMBED), null);
});

test('embedding rows come from the row reader without the table, else from the table read once', () => {
  const reads: string[] = [];
  const rows = new FrozenWeights(cfg, (n) => { reads.push(n); return table; }, { rows: (n, r) => { reads.push(`${n}[${r}]`); return table.slice(r * 4, r * 4 + 4); } });
  assert.deepEqual([...rows.embedRows([2, 0n])], [8, 9, 10, 11, 0, 1, 2, 3]);
  assert.deepEqual(reads, [`${EMBED}[2]`, `${EMBED}[0]`]);
  reads.length = 0;
  const whole = new FrozenWeights(cfg, (n) => { reads.push(n); return table; });
  whole.embedRows([1]);
  whole.embedRows([7]);
  assert.deepEqual(reads, [EMBED]);
  assert.throws(() => whole.embedRows([8]), /token id 8 is outside the vocabulary \(0\.\.7\)/);
});

test('4-bit blocks must have the weights\' block size', () => {
  const fw = new FrozenWeights(cfg, () => table, { quantize: true, blockSize: 4 });
  assert.equal(fw.quantize, true);
  fw.provideInt4('w', quantizeInt4(table, 8, 4, 4));
  assert.throws(() => fw.provideInt4('w', quantizeInt4(table, 8, 4, 2)), /w: 4-bit weight has block size 2, these weights use 4/);
  assert.equal(new FrozenWeights(cfg, () => table).blockSize, 32, 'DEFAULT_BLOCK');
});
