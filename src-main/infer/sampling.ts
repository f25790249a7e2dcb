// Choosing the next token from logits: greedy, or temperature / top-k / top-p sampling, with an
// optional repetition penalty (CTRL-style, as in Hugging Face: divide positive logits, multiply
// negative ones, for every token already in the sequence).

import { mulberry32 } from '../util/random.js';

export interface SamplingOptions {
  /** 0 (or greedy: true) picks the most likely token. */
  temperature: number;
  topK: number; // 0 = off
  topP: number; // 1 = off
  repetitionPenalty: number; // 1 = off
  seed: number;
}

export const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };

export class Sampler {
  private readonly rand: () => number;
  constructor(readonly opts: SamplingOptions) {
    this.rand = mulberry32(opts.seed);
  }

  /** logits: one row [V] (modified in place by the penalty). */
  next(logits: Float32Array, history: readonly number[]): number {
    const o = this.opts;
    if (o.repetitionPenalty !== 1) {
      for (const id of new Set(history)) {
        const v = logits[id]!;
        logits[id] = v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty;
      }
    }
    if (o.temperature <= 0) return argmax(logits);
    // Candidates sorted by logit, cut by top-k, softmax at temperature, cut by top-p.
    let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
    if (o.topK > 0) order = order.slice(0, o.topK);
    const maxL = logits[order[0]!]!;
    let probs = order.map((i) => Math.exp((logits[i]! - maxL) / o.temperature));
    let sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
    if (o.topP < 1) {
      let acc = 0, keep = 0;
      while (keep < probs.length && acc < o.topP) acc += probs[keep++]!;
      order = order.slice(0, Math.max(1, keep));
      probs = probs.slice(0, order.length);
      sum = probs.reduce((a, b) => a + b, 0);
      probs = probs.map((p) => p / sum);
    }
    let r = this.rand();
    for (let i = 0; i < order.length; i++) {
      r -= probs[i]!;
      if (r <= 0) return order[i]!;
    }
    return order[order.length - 1]!;
  }
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}
