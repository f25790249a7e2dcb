// Sequences (one sample, or several short samples packed together) and padded batches.
//
// What a Batch holds, for B rows of T tokens, all flattened row-major to [B*T]:
//   inputIds       token ids; padding on the right with the pad id
//   labels         Hugging Face convention, NOT shifted: labels[t] = inputIds[t] where token t is a
//                  training target, else -100. The loss shifts (logits at t predict labels[t+1]).
//                  The first token of every sample is -100: nothing before it in its sample predicts it.
//   attentionMask  1 for real tokens, 0 for padding
//   positionIds    0, 1, 2, ... restarting at every sample in a packed row (0 on padding)
//   segmentIds     1, 2, 3, ... the sample each token belongs to within its row, 0 on padding
// A packed row must not attend across samples: the model masks attention to
// segmentIds[i] == segmentIds[j] && j <= i (a block-diagonal causal mask), and uses positionIds for
// RoPE. Without packing every row is one sample, so the ordinary causal mask plus attentionMask suffice.
//
// A batch of P preference pairs has 2P rows: the chosen sides in rows [0, P), the rejected sides in
// rows [P, 2P), pair i in rows i and P + i (as TRL concatenates them). Rows of missing pairs (a last,
// short batch) are padding: no targets, so the loss leaves them out.

import type { SampleStore } from './samples.js';

export type IdArray = Int32Array | BigInt64Array;

export interface Batch {
  inputIds: IdArray; // [B*T]
  labels: IdArray; // [B*T], -100 ignored
  attentionMask: IdArray; // [B*T]
  positionIds: IdArray; // [B*T]
  segmentIds: Int32Array; // [B*T]
  B: number;
  T: number;
  dtype: 'int32' | 'int64';
  /** Real (non-padding) tokens and loss terms in the batch, for tokens/s and loss averaging. */
  tokens: number;
  targets: number;
  /** Preference pairs in the batch (rows [0, B/2) chosen, [B/2, B) rejected); 0 for a batch of sequences. */
  pairs: number;
}

/** The rows a run's micro-batches are cut from: sequences (SFT) or preference pairs. */
export interface RowSet {
  readonly length: number;
  /** The tokens item i needs in a row (the longer side of a pair). */
  tokenCount(i: number): number;
  totalTokens(): number;
  /** The store's samples item i is made of (a packed sequence's members; a pair's two sides). */
  samples(i: number): Int32Array;
  batch(indices: readonly number[], opts?: BatchOptions): Batch;
}

export interface BatchOptions {
  /** Row length to pad to; default the longest row in the batch (must be >= it). */
  T?: number;
  /** Pairs: the pairs a batch holds (its chosen rows start at 0, its rejected rows at `size`); default indices.length. Sequences ignore it. */
  size?: number;
  /** Id dtype; int64 matches Hugging Face ONNX graphs (default), int32 halves the transfer. */
  dtype?: 'int32' | 'int64';
}

/** A split's sequences: rows of a batch, each one or more samples from the store. */
export class SequenceSet implements RowSet {
  constructor(
    private readonly store: SampleStore,
    /** Sample indices of all sequences, concatenated; sequence i is members[starts[i]..starts[i+1]). */
    private readonly members: Int32Array,
    private readonly starts: Int32Array,
    readonly padId: number,
  ) {}

  get length(): number {
    return this.starts.length - 1;
  }

  samples(i: number): Int32Array {
    return this.members.subarray(this.starts[i]!, this.starts[i + 1]!);
  }

  tokenCount(i: number): number {
    let n = 0;
    for (const s of this.samples(i)) n += this.store.length(s);
    return n;
  }

  /** Total tokens over all sequences. */
  totalTokens(): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) n += this.tokenCount(i);
    return n;
  }

  /** The batch of the given sequences, in the given order. */
  batch(indices: readonly number[], opts: BatchOptions = {}): Batch {
    if (indices.length === 0) throw new Error('batch: no sequences given');
    return layoutRows(this.store, indices.map((i) => {
      if (i < 0 || i >= this.length) throw new Error(`batch: sequence ${i} out of range (0..${this.length - 1})`);
      return this.samples(i);
    }), this.padId, opts, 0);
  }
}

/** A split's preference pairs: pair i is two samples of the store, its chosen and its rejected side. */
export class PairSet implements RowSet {
  constructor(
    private readonly store: SampleStore,
    /** The store's sample index of each pair's chosen side; its rejected side is the next sample. */
    private readonly chosen: Int32Array,
    readonly padId: number,
  ) {}

  get length(): number {
    return this.chosen.length;
  }

  tokenCount(i: number): number {
    const c = this.chosen[i]!;
    return Math.max(this.store.length(c), this.store.length(c + 1));
  }

  totalTokens(): number {
    let n = 0;
    for (const c of this.chosen) n += this.store.length(c) + this.store.length(c + 1);
    return n;
  }

  /** The file line the pair came from. */
  line(i: number): number {
    return this.store.line(this.chosen[i]!);
  }

  /** The store's samples of pair i: its chosen side, then its rejected side (what a content hash reads). */
  samples(i: number): Int32Array {
    return Int32Array.of(this.chosen[i]!, this.chosen[i]! + 1);
  }

  /** The sample indices of pair i's two sides. */
  sides(i: number): { chosen: number; rejected: number } {
    return { chosen: this.chosen[i]!, rejected: this.chosen[i]! + 1 };
  }

  /** The batch of the given pairs: 2 x size rows, chosen sides first (see the top of this file). */
  batch(indices: readonly number[], opts: BatchOptions = {}): Batch {
    const P = opts.size ?? indices.length;
    if (indices.length === 0) throw new Error('batch: no pairs given');
    if (indices.length > P) throw new Error(`batch: ${indices.length} pairs do not fit a batch of ${P}`);
    const side = (which: 0 | 1) => Array.from({ length: P }, (_, k) => {
      if (k >= indices.length) return null;
      const i = indices[k]!;
      if (i < 0 || i >= this.length) throw new Error(`batch: pair ${i} out of range (0..${this.length - 1})`);
      return Int32Array.of(this.chosen[i]! + which);
    });
    return layoutRows(this.store, [...side(0), ...side(1)], this.padId, opts, indices.length);
  }
}

/** A batch whose row b holds the samples rows[b] back to back (null: a padding row). */
function layoutRows(store: SampleStore, rows: readonly (Int32Array | null)[], padId: number, opts: BatchOptions, pairs: number): Batch {
  const B = rows.length;
  const length = (r: Int32Array | null) => (r ? r.reduce((n, s) => n + store.length(s), 0) : 0);
  const longest = Math.max(...rows.map(length));
  const T = opts.T ?? longest;
  if (T < longest) throw new Error(`batch: a sequence has ${longest} tokens, more than T=${T}`);
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(-100);
  const mask = new Int32Array(B * T);
  const pos = new Int32Array(B * T);
  const seg = new Int32Array(B * T);
  let targets = 0;
  let tokens = 0;
  rows.forEach((samples, b) => {
    let t = b * T;
    let segment = 0;
    for (const s of samples ?? []) {
      const toks = store.tokens(s);
      const trained = store.trained(s);
      segment++;
      ids.set(toks, t);
      mask.fill(1, t, t + toks.length);
      seg.fill(segment, t, t + toks.length);
      for (let j = 0; j < toks.length; j++) {
        pos[t + j] = j;
        if (j > 0 && trained[j]) {
          labels[t + j] = toks[j]!;
          targets++;
        }
      }
      t += toks.length;
      tokens += toks.length;
    }
  });
  const dtype = opts.dtype ?? 'int64';
  const conv = dtype === 'int64' ? toInt64 : (a: Int32Array) => a;
  return { inputIds: conv(ids), labels: conv(labels), attentionMask: conv(mask), positionIds: conv(pos), segmentIds: seg, B, T, dtype, tokens, targets, pairs };
}

function toInt64(a: Int32Array): BigInt64Array {
  const out = new BigInt64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = BigInt(a[i]!);
  return out;
}

/**
 * Groups samples (in the given order) into sequences of at most T tokens. Without packing each
 * sample is its own sequence; with packing, consecutive samples share a row while they fit
 * (greedy, order-preserving, so a seeded order gives a reproducible packing).
 */
export function buildSequences(store: SampleStore, order: readonly number[], T: number, pack: boolean, padId: number): SequenceSet {
  const members = Int32Array.from(order);
  if (!pack) return new SequenceSet(store, members, Int32Array.from({ length: order.length + 1 }, (_, i) => i), padId);
  const starts: number[] = [0];
  let used = 0;
  order.forEach((s, k) => {
    const n = store.length(s);
    if (used > 0 && used + n > T) {
      starts.push(k);
      used = 0;
    }
    used += n;
  });
  if (order.length) starts.push(order.length);
  return new SequenceSet(store, members, Int32Array.from(starts), padId);
}
