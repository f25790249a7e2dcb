// JSON Lines: one object per line, streamed line by line (bounded memory). Blank lines are
// allowed; anything else that does not parse to an object is a bad row.

import type { BadRowLog } from '../errors.js';
import { readLines } from './lines.js';
import { asRow, type RowRecord } from './types.js';

export async function* readJsonl(path: string, bad: BadRowLog): AsyncGenerator<RowRecord> {
  for await (const l of readLines(path)) {
    if (l.error) {
      bad.add(l.line, l.error);
      continue;
    }
    if (l.text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(l.text);
    } catch (e) {
      bad.add(l.line, `invalid JSON: ${(e as Error).message}`);
      continue;
    }
    const row = asRow(value);
    if (typeof row === 'string') bad.add(l.line, row);
    else yield { row, line: l.line };
  }
}
