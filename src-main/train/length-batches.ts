// The trainer's micro-batches, shaped by their own rows. The step graph has a symbolic sequence
// length (model/graphs.ts dynamicSeq), so one session runs any batch length up to the dataset's
// longest row: each micro-batch pads only to its own longest row (rounded up to PAD_MULTIPLE), not
// to the dataset's. Padding never changes the numbers: padded tokens have no targets and no real
// token attends to them, and LoRA dropout masks are keyed by (row, position, column), so a batch's
// loss and gradients are the same at any padded length.
//
// Optionally (groupByLength) rows of similar length share an optimizer step, so its micro-batches
// pad even less. Every order here is a pure function of (seed, epoch): a resumed run reads the
// same rows at every step.

import type { Batch } from '../data/batch.js';
import type { PreparedDataset } from '../data/dataset.js';
import { shuffledIndices } from '../data/random.js';
import type { HostTensor } from '../engine/runtime/session.js';
import { mulberry32 } from '../util/random.js';

/**
 * Batch lengths are rounded up to a multiple of this: at most 7 padding tokens a row (under 4% of
 * a GSM8K-length row), and T/8 distinct shapes instead of T, so ONNX Runtime's memory arena and
 * kernels see few distinct sizes; GEMM row counts stay multiples of 8.
 */
export const PAD_MULTIPLE = 8;

/** How the trainer shapes its micro-batches (reported in the `prepared` event). */
export interface BatchShaping {
  /** 'own-longest': each micro-batch pads to its own longest row (one symbolic-length session); 'dataset-longest': every batch pads to `maxSeq` (static graph). */
  mode: 'own-longest' | 'dataset-longest';
  /** The longest sequence length the graph accepts (the dataset's longest row, capped by --seq-len). */
  maxSeq: number;
  /** Own-longest lengths are rounded up to a multiple of this (capped at maxSeq). */
  padMultiple: number;
  /** Rows of similar length share an optimizer step (lengthGroupedOrder). */
  groupByLength: boolean;
}

export function batchShaping(maxSeq: number, o: { staticSeq?: boolean; groupByLength?: boolean }): BatchShaping {
  return { mode: o.staticSeq ? 'dataset-longest' : 'own-longest', maxSeq, padMultiple: PAD_MULTIPLE, groupByLength: !!o.groupByLength };
}

/** The padded length of a micro-batch whose longest row has `longest` tokens. */
export function paddedLength(s: BatchShaping, longest: number): number {
  if (longest > s.maxSeq) throw new Error(`a row of ${longest} tokens is longer than the graph's ${s.maxSeq}`);
  if (s.mode === 'dataset-longest') return s.maxSeq;
  return Math.min(s.maxSeq, Math.ceil(Math.max(1, longest) / s.padMultiple) * s.padMultiple);
}

/** Optimizer steps whose rows are sorted together (Hugging Face's LengthGroupedSampler sorts 50 batches' worth). */
const GROUP_STEPS = 50;

/**
 * An epoch's row order with rows of similar length in the same optimizer step: the epoch's
 * shuffle cut into chunks of GROUP_STEPS steps, each chunk sorted by length (longest first), cut
 * into steps of `stepRows` rows, and those steps shuffled within the chunk (`rand`). A pure
 * function of its arguments; the rows of a step do not depend on how it is split into
 * micro-batches. A last, partial step stays last (moving it would shift every later step's rows).
 */
export function lengthGroupedOrder(shuffled: readonly number[], lengthOf: (row: number) => number, stepRows: number, rand: () => number): number[] {
  const chunk = GROUP_STEPS * stepRows;
  const out: number[] = [];
  for (let start = 0; start < shuffled.length; start += chunk) {
    const sorted = shuffled.slice(start, start + chunk).sort((a, b) => lengthOf(b) - lengthOf(a) || a - b);
    const steps: number[][] = [];
    for (let i = 0; i < sorted.length; i += stepRows) steps.push(sorted.slice(i, i + stepRows));
    const full = steps.at(-1)!.length === stepRows ? steps.length : steps.length - 1;
    for (let i = full - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [steps[i], steps[j]] = [steps[j]!, steps[i]!];
    }
    for (const s of steps) out.push(...s);
  }
  return out;
}

/** The micro-batches of a run in order: micro-batch k is a pure function of (seed, k), padded as `shaping` says. */
export class MicroBatches {
  readonly perEpoch: number;
  private epoch = -1;
  private order: number[] = []; // the order of the current epoch, made once

  constructor(private readonly data: PreparedDataset, private readonly B: number, readonly shaping: BatchShaping, private readonly seed: number,
    /** Rows per optimizer step (batch x gradient accumulation): the unit length grouping keeps together. */
    private readonly stepRows: number) {
    this.perEpoch = Math.ceil(data.train.length / B);
  }

  private rows(k: number): number[] {
    const epoch = Math.floor(k / this.perEpoch), j = k % this.perEpoch;
    if (this.epoch !== epoch) {
      this.epoch = epoch;
      this.order = shuffledIndices(this.data.train.length, this.seed + epoch);
      if (this.shaping.groupByLength) {
        const rand = mulberry32((this.seed * 1_000_003 + epoch * 65_537 + 12_345) >>> 0);
        this.order = lengthGroupedOrder(this.order, (i) => this.data.train.tokenCount(i), this.stepRows, rand);
      }
    }
    return this.order.slice(j * this.B, (j + 1) * this.B);
  }

  private lengthOf(rows: readonly number[]): number {
    return paddedLength(this.shaping, Math.max(...rows.map((i) => this.data.train.tokenCount(i))));
  }

  get(k: number): Batch {
    const rows = this.rows(k);
    return this.data.train.batch(rows, { T: this.lengthOf(rows), size: this.B });
  }

  /** Padding tokens over all token slots (B rows x padded length) of one epoch's micro-batches. */
  paddingFraction(epoch: number): number {
    let slots = 0, real = 0;
    for (let j = 0; j < this.perEpoch; j++) {
      const rows = this.rows(epoch * this.perEpoch + j);
      slots += this.B * this.lengthOf(rows);
      for (const i of rows) real += this.data.train.tokenCount(i);
    }
    return 1 - real / slots;
  }
}

/** The "token_index" feed of a symbolic-length graph with dropout: 0..T-1, int32 [T]. */
export function tokenIndexFeed(T: number): Record<string, HostTensor> {
  return { token_index: { dtype: 'int32', dims: [T], data: Int32Array.from({ length: T }, (_, i) => i) } };
}
