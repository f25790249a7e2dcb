// `finch bench train --data FILE`: the micro-batches both sides of the benchmark train on, built
// from a real dataset's rows (prepared as `finch train` prepares them, with a generated Llama-3
// style tokenizer). Finch shapes its batches as the trainer does (length-batches.ts: each batch
// padded to its own longest row, optionally length-grouped); the PyTorch peer takes the rows in a
// seeded random order and pads each batch to its own longest row (Hugging Face's default
// collator, no length grouping). Both lists go to the children in one JSON file.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Batch } from '../data/batch.js';
import { prepareDataset } from '../data/dataset.js';
import type { ColumnMap } from '../data/formats.js';
import { shuffledIndices } from '../data/random.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { builtinCorpus } from '../synthetic/corpus.js';
import { MicroBatches, batchShaping } from '../train/length-batches.js';

/** One Finch micro-batch, as plain arrays (Batch with number ids). */
export interface PlainBatch { T: number; B: number; inputIds: number[]; labels: number[]; attentionMask: number[]; positionIds: number[]; segmentIds: number[]; tokens: number; targets: number; pairs: number }

export interface BenchBatches {
  /** The longest row (the symbolic graph's largest T). */
  maxSeq: number;
  finch: PlainBatch[];
  /** The peer's batches: each row's token ids and (unshifted, -100 masked) labels, unpadded. */
  peer: { ids: number[]; labels: number[] }[][];
  /** Padding tokens over token slots in each side's batches. */
  finchPadding: number;
  peerPadding: number;
  rows: number;
  /** The tokenizer's vocabulary size (the model's must be at least this). */
  vocab: number;
  /** Token lengths of the prepared rows: mean, min, max. */
  lengths: { mean: number; min: number; max: number };
}

const plain = (b: Batch): PlainBatch => ({
  T: b.T, B: b.B, inputIds: Array.from(b.inputIds, Number), labels: Array.from(b.labels, Number), attentionMask: Array.from(b.attentionMask, Number),
  positionIds: Array.from(b.positionIds, Number), segmentIds: Array.from(b.segmentIds), tokens: b.tokens, targets: b.targets, pairs: b.pairs,
});

/** Back to a Batch (int64 ids) in the child. */
export function fromPlain(p: PlainBatch): Batch {
  const big = (a: number[]) => BigInt64Array.from(a, (x) => BigInt(x));
  return { T: p.T, B: p.B, inputIds: big(p.inputIds), labels: big(p.labels), attentionMask: big(p.attentionMask), positionIds: big(p.positionIds),
    segmentIds: Int32Array.from(p.segmentIds), dtype: 'int64', tokens: p.tokens, targets: p.targets, pairs: p.pairs };
}

/**
 * Prepares `file` (rows capped at `seqCap` tokens) and writes `count` batches of `batch` rows for
 * each side to `work`/batches.json; returns its path and what the batches hold.
 */
export async function writeBenchBatches(work: string, file: string, o: { map?: ColumnMap; batch: number; count: number; seqCap: number; seed: number; groupByLength: boolean }): Promise<{ path: string; info: Omit<BenchBatches, 'finch' | 'peer'> }> {
  // The generated tokenizer of `finch bench data`: mostly whole words, as with real models.
  const ckpt = writeSyntheticCheckpoint(join(work, 'tokenizer'), { vocabSize: 2048, hiddenSize: 16, numLayers: 1, numHeads: 2, corpus: builtinCorpus(256 * 1024) });
  const tok = loadTokenizer(ckpt.dir);
  const data = await prepareDataset(file, tok, { seqLen: o.seqCap, pack: false, valFraction: 0, seed: o.seed, map: o.map });
  const n = data.train.length;
  if (n < o.batch * o.count) throw new Error(`${file}: ${n} rows, fewer than the ${o.batch * o.count} the benchmark reads (batch ${o.batch} x ${o.count} steps)`);
  const lens = Array.from({ length: n }, (_, i) => data.train.tokenCount(i));
  const maxSeq = Math.max(...lens);
  const micro = new MicroBatches(data, o.batch, batchShaping(maxSeq, { groupByLength: o.groupByLength }), o.seed, o.batch);
  const finch = Array.from({ length: o.count }, (_, k) => micro.get(k));
  const order = shuffledIndices(n, o.seed + 1_000); // the peer's own seeded order
  const peer = Array.from({ length: o.count }, (_, k) => order.slice(k * o.batch, (k + 1) * o.batch).map((i) => {
    const b = data.train.batch([i]);
    return { ids: Array.from(b.inputIds, Number), labels: Array.from(b.labels, Number) };
  }));
  const padding = (slots: number, real: number) => 1 - real / slots;
  const info = {
    maxSeq, rows: n, vocab: tok.vocabSize,
    finchPadding: padding(finch.reduce((s, b) => s + b.B * b.T, 0), finch.reduce((s, b) => s + b.tokens, 0)),
    peerPadding: padding(peer.reduce((s, rows) => s + rows.length * Math.max(...rows.map((r) => r.ids.length)), 0), peer.reduce((s, rows) => s + rows.reduce((t, r) => t + r.ids.length, 0), 0)),
    lengths: { mean: lens.reduce((a, b) => a + b, 0) / n, min: Math.min(...lens), max: maxSeq },
  };
  const path = join(work, 'batches.json');
  writeFileSync(path, JSON.stringify({ ...info, finch: finch.map(plain), peer } satisfies BenchBatches));
  return { path, info };
}
