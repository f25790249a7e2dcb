// What every reader reads and yields. A reader gets an opened dataset file (a regular file,
// opened by openRows through util/regular-file.ts) and yields one row object at a time with where
// it came from (1-based line for text formats, 1-based row for Parquet), so later stages can
// report bad rows precisely.

import type { FileHandle } from 'node:fs/promises';
import type { ReadStream } from 'node:fs';
import { MAX_JSON_DEPTH, jsonDepthOver } from '../../util/regular-file.js';
import type { BadRowLog } from '../errors.js';

export type Row = Record<string, unknown>;

export interface RowRecord {
  row: Row;
  line: number;
}

/** A dataset file opened for its readers. */
export interface DatasetFile {
  path: string;
  handle: FileHandle;
  size: number;
  /**
   * The bytes readers may read: the whole file, or a preview's window. Where the window ends
   * before the file does, a row it cuts is left out silently (it is not a bad row).
   */
  window: number;
}

/** True when the readers stop before the end of the file (a preview's window). */
export const cutByWindow = (f: DatasetFile): boolean => f.window < f.size;

/** The bytes of `f` inside its window, as a stream that leaves the handle open. */
export function windowStream(f: DatasetFile, highWaterMark: number): ReadStream | null {
  if (f.window === 0) return null;
  return f.handle.createReadStream({ start: 0, end: f.window - 1, highWaterMark, autoClose: false });
}

export type RowReader = (file: DatasetFile, bad: BadRowLog) => AsyncGenerator<RowRecord>;

/** A row must be a JSON object; names what it got otherwise. */
export function asRow(v: unknown): Row | string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Row;
  const what = v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
  return `expected an object (one example per row), got ${what}`;
}

/** One row's JSON text as a row, or why it is not one (invalid JSON, nested too deep, not an object). */
export function parseRow(text: string): Row | string {
  if (jsonDepthOver(text)) return `JSON nested deeper than ${MAX_JSON_DEPTH} levels (a row is one flat example)`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return `invalid JSON: ${(e as Error).message}`;
  }
  return asRow(value);
}
