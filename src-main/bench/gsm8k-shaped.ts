// GSM8K-shaped rows for `finch bench train --data`, generated offline and reproducibly: grade-school
// word problems ({"question", "answer"}) whose lengths follow GSM8K's train split (7,473 rows;
// questions about 40-200 tokens, answers about 50-300 with worked steps, <<a*b=c>> calculator
// annotations and a final "#### N"). Only the shape matters to the benchmark: how row lengths
// spread decides how much padding a batch carries. The text is synthetic, not GSM8K's.
//
//   npx tsx src-main/bench/gsm8k-shaped.ts OUT.jsonl [rows (7473)] [seed (1)]

import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../util/random.js';

export interface Gsm8kRow { question: string; answer: string }

const NAMES = ['Natalia', 'Weng', 'Betty', 'Julie', 'James', 'Albert', 'Ken', 'Alexis', 'Tina', 'Randy', 'Mark', 'Joy', 'Carla', 'Mr. Sanchez', 'Tobias'];
const ITEMS = ['clips', 'apples', 'books', 'cupcakes', 'marbles', 'pages', 'dollars', 'eggs', 'pencils', 'stickers', 'miles', 'minutes', 'tickets', 'shirts'];
const VERBS = ['sold', 'bought', 'read', 'baked', 'collected', 'gave away', 'earned', 'spent', 'found', 'used'];
const FILLER = ['in the morning', 'during the week', 'at the store', 'for her friends', 'after school', 'on Saturday', 'in total', 'each day',
  'from the market', 'to his neighbor', 'at the fair', 'every hour', 'for the party', 'in the afternoon', 'last month'];

/** A log-normal sample (median `median`, spread `sigma`) clipped to [lo, hi], rounded. */
function lengthSample(rand: () => number, median: number, sigma: number, lo: number, hi: number): number {
  const z = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  return Math.round(Math.min(hi, Math.max(lo, median * Math.exp(sigma * z))));
}

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/**
 * `n` rows from `seed`. Lengths are drawn in words (the generated sentences run about 3 tokens a
 * word with their numbers and annotations): questions median 20 words (12-65), answers median 34
 * (14-100), about GSM8K's spread of token lengths (`finch bench train --data` prints them).
 */
export function gsm8kShapedRows(n: number, seed = 1): Gsm8kRow[] {
  const rand = mulberry32(seed);
  const rows: Gsm8kRow[] = [];
  for (let i = 0; i < n; i++) {
    const who = pick(rand, NAMES), item = pick(rand, ITEMS);
    const qWords = lengthSample(rand, 20, 0.35, 12, 65), aWords = lengthSample(rand, 34, 0.45, 14, 100);
    const q: string[] = [];
    while (q.join(' ').split(' ').length < qWords) {
      q.push(`${who} ${pick(rand, VERBS)} ${1 + Math.floor(rand() * 90)} ${item} ${pick(rand, FILLER)}.`);
    }
    q.push(`How many ${item} did ${who} have ${pick(rand, FILLER)}?`);
    const a: string[] = [];
    let total = 1 + Math.floor(rand() * 50);
    while (a.join(' ').split(' ').length < aWords) {
      const k = 2 + Math.floor(rand() * 9), next = total * k;
      a.push(`${who} had ${total} ${item} ${pick(rand, FILLER)}, so ${k} times that is ${total} * ${k} = <<${total}*${k}=${next}>>${next} ${item}.`);
      total = next % 1000;
    }
    a.push(`#### ${total}`);
    rows.push({ question: q.join(' '), answer: a.join('\n') });
  }
  return rows;
}

/** Writes `n` rows as JSONL. */
export function writeGsm8kShaped(file: string, n = 7473, seed = 1): void {
  writeFileSync(file, gsm8kShapedRows(n, seed).map((r) => JSON.stringify(r)).join('\n') + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, rows, seed] = process.argv.slice(2);
  if (!file) {
    console.error('usage: npx tsx src-main/bench/gsm8k-shaped.ts OUT.jsonl [rows] [seed]');
    process.exit(2);
  }
  writeGsm8kShaped(file, rows ? Number(rows) : 7473, seed ? Number(seed) : 1);
}
