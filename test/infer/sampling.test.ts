// The sampling distributions: with fixed logits and a fixed seed, the frequencies of 40 000 draws
// match temperature, top-k and top-p as Hugging Face defines them (computed here independently),
// tokens that top-k or top-p exclude are never drawn, and the repetition penalty acts on the
// logits as CTRL / transformers do. A fixed seed makes every count deterministic: the margins
// (6 standard deviations of a binomial frequency) are there for changes of seed or algorithm,
// never for a rerun.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GREEDY, Sampler, type SamplingOptions } from '../../src-main/infer/sampling.js';

const LOGITS = [2.0, 1.6, 1.1, 0.7, 0.2, -0.4, -1.5, -3.0];
const DRAWS = 40_000;

/** Expected next-token probabilities, written from the definitions (not from sampling.ts). */
function expected(logits: readonly number[], o: { temperature: number; topK?: number; topP?: number }): number[] {
  const scaled = logits.map((l) => l / o.temperature);
  const ranked = scaled.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v);
  const kept = new Set(ranked.slice(0, o.topK && o.topK > 0 ? o.topK : ranked.length).map((r) => r.i));
  const softmax = (ids: Set<number>) => {
    const z = [...ids].reduce((s, i) => s + Math.exp(scaled[i]!), 0);
    return scaled.map((v, i) => (ids.has(i) ? Math.exp(v) / z : 0));
  };
  let p = softmax(kept);
  if (o.topP !== undefined && o.topP < 1) {
    // The smallest set of most likely tokens whose probability reaches topP.
    const nucleus = new Set<number>();
    let acc = 0;
    for (const { i } of ranked) {
      if (!kept.has(i)) continue;
      nucleus.add(i);
      acc += p[i]!;
      if (acc >= o.topP) break;
    }
    p = softmax(nucleus);
  }
  return p;
}

function frequencies(o: SamplingOptions): number[] {
  const s = new Sampler(o);
  const counts = new Array<number>(LOGITS.length).fill(0);
  for (let n = 0; n < DRAWS; n++) counts[s.next(Float32Array.from(LOGITS), [])]!++;
  return counts.map((c) => c / DRAWS);
}

function assertMatches(label: string, got: number[], want: number[]): void {
  want.forEach((p, i) => {
    if (p === 0) {
      assert.equal(got[i], 0, `${label}: token ${i} is excluded but was drawn (${got[i]})`);
      return;
    }
    const sigma = Math.sqrt((p * (1 - p)) / DRAWS);
    assert.ok(Math.abs(got[i]! - p) <= 6 * sigma, `${label}: token ${i} drawn ${got[i]!.toFixed(4)}, expected ${p.toFixed(4)} (sigma ${sigma.toFixed(4)})`);
  });
}

const base = { topK: 0, topP: 1, repetitionPenalty: 1, seed: 1234 };

test('temperature: frequencies follow softmax(logits / T), and different temperatures differ', () => {
  for (const temperature of [0.5, 1, 2]) {
    assertMatches(`T=${temperature}`, frequencies({ ...base, temperature }), expected(LOGITS, { temperature }));
  }
  // The check can fail: T=0.5 and T=2 predict far apart frequencies for the top token.
  const cold = expected(LOGITS, { temperature: 0.5 })[0]!, hot = expected(LOGITS, { temperature: 2 })[0]!;
  assert.ok(cold - hot > 0.2, `top-token probability ${cold} at T=0.5 vs ${hot} at T=2`);
});

test('top-k keeps the k most likely tokens, renormalized', () => {
  for (const topK of [1, 3, 5]) {
    assertMatches(`top-k ${topK}`, frequencies({ ...base, temperature: 1, topK }), expected(LOGITS, { temperature: 1, topK }));
  }
});

test('top-p keeps the smallest most-likely set reaching p, renormalized; combined with top-k and temperature', () => {
  for (const topP of [0.3, 0.6, 0.9]) {
    assertMatches(`top-p ${topP}`, frequencies({ ...base, temperature: 1, topP }), expected(LOGITS, { temperature: 1, topP }));
  }
  const o = { temperature: 0.7, topK: 4, topP: 0.8 };
  assertMatches('T 0.7, top-k 4, top-p 0.8', frequencies({ ...base, ...o }), expected(LOGITS, o));
});

test('the same seed draws the same sequence; another seed another one', () => {
  const draw = (seed: number) => { const s = new Sampler({ ...base, temperature: 1, seed }); return Array.from({ length: 50 }, () => s.next(Float32Array.from(LOGITS), [])); };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('repetition penalty divides positive and multiplies negative logits of seen tokens; greedy picks the maximum', () => {
  const logits = Float32Array.from(LOGITS);
  const s = new Sampler({ ...GREEDY, repetitionPenalty: 2 });
  // Token 0 (2.0 -> 1.0) falls below token 1 (1.6); token 6 (-1.5 -> -3.0) is pushed down.
  assert.equal(s.next(logits, [0, 6, 0]), 1);
  assert.deepEqual([logits[0], logits[6]], [1, -3]);
  assert.equal(new Sampler(GREEDY).next(Float32Array.from(LOGITS), [0]), 0);
});
