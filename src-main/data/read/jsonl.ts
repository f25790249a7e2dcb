// JSON Lines: one object per line, streamed line by line (bounded memory). Blank lines are
// allowed; anything else that does not parse to an object is a bad row.

import type { BadRowLog } from '../errors.js';
import { readLines } from './lines.js';
import { parseRow, type DatasetFile, type RowRecord } from './types.js';

export async function* readJsonl(file: DatasetFile, bad: BadRowLog): AsyncGenerator<RowRecord> {
  for await (const l of readLines(file)) {
    if (l.error) {
      bad.add(l.line, l.error);
      continue;
    }
    if (l.text.trim() === '') continue;
    const row = parseRow(l.text);
    if (typeof row === 'string') bad.add(l.line, row);
    else yield { row, line: l.line };
  }
}
