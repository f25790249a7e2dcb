// The data pipeline end to end: read rows -> detect/convert format -> template + tokenize + mask
// -> truncate -> seeded train/validation split -> (optional) packing. Rows stream through; only
// the tokenized samples are kept (compactly, in a SampleStore). Its stages, one file each, are
// imported directly by whoever needs one:
//   read/        JSONL, JSON, CSV/TSV, Parquet readers (streaming, rows with line numbers)
//   formats.ts   alpaca, sharegpt, messages, completion, text; column maps
//   template.ts  chat template or fallback, prompt/completion masks, EOS
//   batch.ts     packed sequences and padded batches (labels, masks, position and segment ids)
//   preview.ts   the wizard's first rows with trained/ignored spans

import { DatasetError, RowError } from './errors.js';
import { resolveFormat, toExample, type FormatOptions, type ResolvedFormat } from './formats.js';
import { openRows, type FileKind, type ReadOptions } from './read/index.js';
import { shuffledIndices } from './random.js';
import { SampleStore } from './samples.js';
import { SampleEncoder, type EncodedSample, type EncodeOptions } from './template.js';
import { buildSequences, PairSet, type SequenceSet } from './batch.js';
import { isPreference, type Example } from './types.js';
import { yielder } from '../util/yielder.js';
import type { TextTokenizer } from '../model/types.js';

export interface PrepareOptions extends ReadOptions, FormatOptions, EncodeOptions {
  /** Tokens per sequence; longer samples are truncated (and counted). */
  seqLen: number;
  /** Pack several short samples into one sequence (see batch.ts for how attention is kept apart). */
  pack?: boolean;
  /** Fraction of samples held out for validation (0 = none), or an exact count with valRows. */
  valFraction?: number;
  valRows?: number;
  /** Seed of the train/validation split (default 0). */
  seed?: number;
  /** Stop after this many rows (previews, benchmarks). */
  maxRows?: number;
  /** Called every 1000 rows with the number of rows read. */
  onProgress?: (rows: number) => void;
}

export interface LengthStats {
  /** Rows measured and their total tokens. */
  count: number;
  total: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

export interface DatasetStats {
  /** Rows the reader produced, and bad rows skipped (reader and conversion errors). */
  rows: number;
  badRows: number;
  /** Samples kept (train + validation). */
  samples: number;
  /** Kept samples cut to seqLen. */
  truncated: number;
  /** Rows dropped because every trained token lies beyond seqLen (the prompt fills the sequence). */
  droppedTooLong: number;
  /** Rows dropped because they have nothing to train on (no assistant turn; for pairs, a side without one). */
  droppedNoTarget: number;
  /** Rows whose prompt/completion boundary is approximate (see template.ts), and the first few lines. */
  boundaryIssues: number;
  boundaryIssueLines: number[];
  /** Token lengths of the encoded rows before truncation. */
  lengths: LengthStats;
  /** Tokens kept after truncation, and how many of them are training targets. */
  tokens: number;
  trainedTokens: number;
  /** Packed rows only: real tokens / (sequences x seqLen). */
  packingEfficiency: number | null;
}

interface PreparedCommon {
  file: string;
  fileKind: FileKind;
  format: ResolvedFormat;
  /** The chat template used, or null when every row is raw text. */
  template: 'model' | 'fallback' | null;
  seqLen: number;
  samples: SampleStore;
  stats: DatasetStats;
  /** Warnings and facts for the run log: skipped rows, truncation, fallback template, boundary issues. */
  notes: string[];
}

/**
 * A prepared dataset: sequences (conversations or text, for SFT) or preference pairs (DPO, ORPO),
 * split into training and validation rows. For pairs, `stats` counts a pair as one row and one sample.
 */
export type PreparedDataset = PreparedCommon & (
  | { kind: 'sequences'; train: SequenceSet; validation: SequenceSet }
  | { kind: 'pairs'; train: PairSet; validation: PairSet }
);

/**
 * The converted examples of a file, in order, without tokenizing (evaluation prompts, exports).
 * Bad rows follow opts.onBadRow like prepareDataset.
 */
export async function* readExamples(file: string, opts: ReadOptions & FormatOptions = {}): AsyncGenerator<{ example: Example; line: number }> {
  const { bad, rows } = await openRows(file, opts);
  let format: ResolvedFormat | null = null;
  let n = 0;
  for await (const { row, line } of rows) {
    n++;
    format ??= resolveFormat(file, row, opts);
    try {
      yield { example: toExample(row, format), line };
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      bad.add(line, e.message);
    }
  }
  if (n === 0) throw new DatasetError(`${file}: the dataset is empty${bad.count ? ` (all ${bad.count} rows are bad)` : ''}`, file);
}

export async function prepareDataset(file: string, tok: TextTokenizer, opts: PrepareOptions): Promise<PreparedDataset> {
  const T = opts.seqLen;
  if (!Number.isInteger(T) || T < 2) throw new DatasetError(`sequence length must be an integer >= 2, got ${T}`, file);
  const encoder = new SampleEncoder(tok, opts);
  const { kind, bad, rows } = await openRows(file, opts);
  const store = new SampleStore();
  const lengths: number[] = [];
  let format: ResolvedFormat | null = null;
  let sawChat = false;
  let n = 0;
  let truncated = 0;
  let droppedTooLong = 0;
  let droppedNoTarget = 0;
  let trainedTokens = 0;
  const boundaryIssueLines: number[] = [];
  let boundaryIssues = 0;
  let firstBoundaryIssue = '';

  const pairStarts: number[] = []; // the store index of each kept pair's chosen side
  const pause = yielder();
  for await (const { row, line } of rows) {
    if (opts.maxRows !== undefined && n >= opts.maxRows) break;
    n++;
    if (opts.onProgress && n % 1000 === 0) opts.onProgress(n);
    await pause();
    format ??= resolveFormat(file, row, opts);
    let sides: EncodedSample[];
    try {
      const ex = toExample(row, format);
      sawChat ||= !('text' in ex);
      if (isPreference(ex)) {
        const p = encoder.encodePair(ex);
        sides = [p.chosen, p.rejected];
      } else sides = [encoder.encode(ex)];
    } catch (e) {
      if (!(e instanceof RowError)) throw e;
      bad.add(line, e.message);
      continue;
    }
    const issue = sides.find((e) => e.boundaryIssue)?.boundaryIssue;
    if (issue) {
      boundaryIssues++;
      if (boundaryIssueLines.length < 10) boundaryIssueLines.push(line);
      firstBoundaryIssue ||= `${bad.unit} ${line}: ${issue}`;
    }
    lengths.push(Math.max(...sides.map((e) => e.ids.length)));
    // A target needs context before it: a target at position 0 trains nothing. A pair needs a target on both sides.
    const firstTargets = sides.map((e) => e.trained.indexOf(1, 1));
    if (firstTargets.some((t) => t < 0)) {
      droppedNoTarget++;
      continue;
    }
    if (firstTargets.some((t) => t >= T)) {
      droppedTooLong++;
      continue;
    }
    if (sides.some((e) => e.ids.length > T)) truncated++;
    if (sides.length === 2) pairStarts.push(store.count);
    for (const enc of sides) {
      const keep = Math.min(T, enc.ids.length);
      const trained = enc.trained.subarray(0, keep);
      for (let j = 1; j < keep; j++) trainedTokens += trained[j]!;
      store.push(enc.ids.subarray(0, keep), trained, line);
    }
  }
  bad.finish(); // also when maxRows stopped early
  const pairs = format?.name === 'preference';
  const kept = pairs ? pairStarts.length : store.count;

  const notes: string[] = [...encoder.notes];
  const skipped = bad.summary();
  if (skipped) notes.push(skipped);
  if (lengths.length === 0) {
    const first = bad.first[0];
    throw new DatasetError(
      bad.count ? `${file}: no usable rows: all ${bad.count} rows are bad (first: ${bad.unit} ${first!.line}: ${first!.reason})` : `${file}: the dataset is empty`,
      file,
    );
  }
  const lengthStats = describeLengths(lengths);
  const withTargets = lengths.length - droppedNoTarget;
  if (withTargets > 0 && truncated + droppedTooLong === withTargets) {
    throw new DatasetError(
      `${file}: every row is longer than the sequence length ${T} (rows have ${lengthStats.min}-${lengthStats.max} tokens, median ${lengthStats.p50}, 95th percentile ${lengthStats.p95}); raise --seq-len to about ${lengthStats.p95}`,
      file,
    );
  }
  if (kept === 0) {
    throw new DatasetError(`${file}: nothing to train on: none of the ${droppedNoTarget} rows has an assistant turn${pairs ? ' on both sides' : ''}`, file);
  }
  if (pairs && opts.pack) throw new DatasetError(`${file}: preference pairs cannot be packed (each side is scored as a whole sequence); train without --pack`, file);
  if (truncated) notes.push(`${truncated} of ${kept} rows (${pct(truncated, kept)}) were truncated to ${T} tokens`);
  if (droppedTooLong) notes.push(`${droppedTooLong} rows were dropped: their prompt fills all ${T} tokens, leaving nothing to train on`);
  if (droppedNoTarget) notes.push(`${droppedNoTarget} rows were dropped: they have no assistant turn to train on`);
  if (boundaryIssues) {
    notes.push(`${boundaryIssues} rows have an approximate prompt/completion boundary (first: ${firstBoundaryIssue}); their mask starts at the first token that differs`);
  }

  // Seeded split over the kept rows; train keeps file order (the trainer shuffles per epoch).
  const valCount = validationCount(kept, opts, file);
  const perm = shuffledIndices(kept, opts.seed ?? 0);
  const valIdx = perm.slice(0, valCount).sort((a, b) => a - b);
  const trainIdx = perm.slice(valCount).sort((a, b) => a - b);
  const padId = tok.padId ?? tok.eosIds[0] ?? 0;
  const common = {
    file, fileKind: kind, format: format!, template: sawChat ? encoder.template : null, seqLen: T, samples: store, notes,
  };
  const stats = (packingEfficiency: number | null): DatasetStats => ({
    rows: n, badRows: bad.count, samples: kept, truncated, droppedTooLong, droppedNoTarget, boundaryIssues, boundaryIssueLines,
    lengths: lengthStats, tokens: store.totalTokens, trainedTokens, packingEfficiency,
  });
  if (pairs) {
    const set = (idx: number[]) => new PairSet(store, Int32Array.from(idx, (i) => pairStarts[i]!), padId);
    return { ...common, kind: 'pairs', train: set(trainIdx), validation: set(valIdx), stats: stats(null) };
  }
  const train = buildSequences(store, trainIdx, T, opts.pack ?? false, padId);
  const validation = buildSequences(store, valIdx, T, opts.pack ?? false, padId);
  const packingEfficiency = opts.pack ? store.totalTokens / ((train.length + validation.length) * T) : null;
  if (packingEfficiency !== null) notes.push(`packed ${store.count} samples into ${train.length + validation.length} sequences (${pct(store.totalTokens, (train.length + validation.length) * T)} of tokens are real)`);
  return { ...common, kind: 'sequences', train, validation, stats: stats(packingEfficiency) };
}

function validationCount(samples: number, opts: PrepareOptions, file: string): number {
  const frac = opts.valFraction ?? 0;
  if (frac < 0 || frac >= 1) throw new DatasetError(`validation fraction must be in [0, 1), got ${frac}`, file);
  const count = opts.valRows ?? (frac > 0 ? Math.max(1, Math.round(frac * samples)) : 0);
  if (count > 0 && count >= samples) {
    throw new DatasetError(`${file}: ${samples} usable rows are too few to hold out ${count} for validation`, file);
  }
  return count;
}

export function describeLengths(lengths: readonly number[]): LengthStats {
  if (lengths.length === 0) return { count: 0, total: 0, min: 0, mean: 0, p50: 0, p95: 0, max: 0 };
  const sorted = Float64Array.from(lengths).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: sorted.length, total: sum, min: sorted[0]!, mean: sum / sorted.length, p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1]! };
}

function pct(a: number, b: number): string {
  return `${((100 * a) / b).toFixed(1)}%`;
}

