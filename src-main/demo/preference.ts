// The preference demo's data: pairs derived from the bundled word problems (corpus.ts). For each
// problem the chosen answer is its correct worked answer and the rejected one a plausible wrong
// answer in the same words: in three pairs of four the other operation ("adds 7: 12 + 7 = 19" where
// 7 of 12 were given away), in the fourth a slip of one or two in the result ("15 + 5 = 21"; the
// demo model, 4 layers, learns slips slowly, so they keep the held-out accuracy short of 100%).
// Deterministic: the bundled files are exactly what writePreferenceDataset writes
// (test/demo/assets.test.ts).
//
//   assets/demo/data/preference-train.jsonl   {prompt, chosen, rejected}, from the first train rows
//   assets/demo/data/preference-test.jsonl    the same from every held-out test row

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../model/safetensors.js';
import { Rng } from '../util/random.js';

export interface PreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

export const PREFERENCE_SEED = 2025;
/** Pairs made from the first rows of train.jsonl (the demo trains on a few hundred of them). */
export const PREFERENCE_TRAIN_ROWS = 600;

/** The worked step and answer of a demo response: "... 12 - 7 = 5. The answer is: 5". */
const WORKED = /^(.*?)(\d+) ([+-]) (\d+) = (\d+)\. The answer is: (\d+)$/;

/** The rejected answer of a worked response: the other operation, or a slip in the result. */
export function wrongAnswer(response: string, r: Rng): string {
  const m = WORKED.exec(response);
  if (!m) throw new Error(`not a worked demo answer: ${response}`);
  const [, lead, aText, op, bText, cText] = m as unknown as [string, string, string, string, string, string];
  const a = Number(aText), b = Number(bText), c = Number(cText);
  if (r.int(4) !== 0) {
    // The other operation, its step worded to match (the larger number first, as a child would subtract).
    const verb = op === '+' ? lead.replace(' adds ', ' takes away ') : lead.replace(' takes away ', ' adds ');
    if (op === '-') return `${verb}${a} + ${b} = ${a + b}. The answer is: ${a + b}`;
    const [x, y] = a >= b ? [a, b] : [b, a];
    if (x - y !== c) return `${verb}${x} - ${y} = ${x - y}. The answer is: ${x - y}`;
  }
  const slips = [-2, -1, 1, 2].filter((d) => c + d >= 0);
  const wrong = c + slips[r.int(slips.length)]!;
  return `${lead}${a} ${op} ${b} = ${wrong}. The answer is: ${wrong}`;
}

/** Pairs of the demo's {query, response} rows, in order. */
export function preferencePairs(rows: readonly { query: string; response: string }[], seed: number): PreferenceRow[] {
  const r = new Rng(seed);
  return rows.map((row) => ({ prompt: row.query, chosen: row.response, rejected: wrongAnswer(row.response, r) }));
}

const readRows = (file: string) => fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { query: string; response: string });

/** Writes preference-train.jsonl and preference-test.jsonl from the train.jsonl and test.jsonl in `dir`. */
export function writePreferenceDataset(dir: string): { train: PreferenceRow[]; test: PreferenceRow[] } {
  const train = preferencePairs(readRows(path.join(dir, 'train.jsonl')).slice(0, PREFERENCE_TRAIN_ROWS), PREFERENCE_SEED);
  const test = preferencePairs(readRows(path.join(dir, 'test.jsonl')), PREFERENCE_SEED + 1);
  const lines = (rows: PreferenceRow[]) => rows.map((p) => JSON.stringify(p)).join('\n') + '\n';
  writeFileAtomic(path.join(dir, 'preference-train.jsonl'), lines(train));
  writeFileAtomic(path.join(dir, 'preference-test.jsonl'), lines(test));
  return { train, test };
}

// `node --import tsx src-main/demo/preference.ts assets/demo/data` regenerates the pair files.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: preference.ts DIR (holding the demo\'s train.jsonl and test.jsonl)');
    process.exit(2);
  }
  const { train, test } = writePreferenceDataset(dir);
  console.log(`wrote ${train.length} train and ${test.length} test pairs to ${dir}`);
}
