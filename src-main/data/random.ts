import { mulberry32 } from '../util/random.js';

// A small seeded generator (mulberry32) for reproducible splits and orders: the same seed gives
// the same split on every machine, which resume and evaluation rely on.

export const seededRandom = mulberry32;

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function shuffledIndices(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
