// What every reader yields: one row object and where it came from (1-based line for text
// formats, 1-based row for Parquet), so later stages can report bad rows precisely.

import type { BadRowLog } from '../errors.js';

export type Row = Record<string, unknown>;

export interface RowRecord {
  row: Row;
  line: number;
}

export type RowReader = (path: string, bad: BadRowLog) => AsyncGenerator<RowRecord>;

/** A row must be a JSON object; names what it got otherwise. */
export function asRow(v: unknown): Row | string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Row;
  const what = v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
  return `expected an object (one example per row), got ${what}`;
}
