// Opens a dataset file by its kind (extension, with a sniff for .json files that are really JSON
// Lines) and streams its rows; bad rows go to the BadRowLog under the caller's policy.

import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { BadRowLog, DatasetError, type BadRowPolicy } from '../errors.js';
import { csvReader } from './csv.js';
import { readJson } from './json.js';
import { readJsonl } from './jsonl.js';
import { readParquet } from './parquet.js';
import type { RowRecord } from './types.js';

export type { Row, RowRecord } from './types.js';

export type FileKind = 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet';

export const FILE_KINDS: Record<string, FileKind> = {
  '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.json': 'json', '.csv': 'csv', '.tsv': 'tsv', '.parquet': 'parquet',
};

export interface ReadOptions {
  /** Overrides the kind implied by the extension. */
  fileKind?: FileKind;
  /** JSON only: the key of the row array when the root object holds several. */
  jsonField?: string;
  onBadRow?: BadRowPolicy;
  /** Under 'fail', stop after this many bad rows and list them (default 10). */
  maxErrors?: number;
}

export interface OpenedDataset {
  kind: FileKind;
  bad: BadRowLog;
  /** The rows; iterating to the end calls bad.finish() (throws under 'fail' if any row was bad). */
  rows: AsyncGenerator<RowRecord>;
}

export async function openRows(path: string, opts: ReadOptions = {}): Promise<OpenedDataset> {
  const kind = opts.fileKind ?? (await fileKindOf(path));
  const bad = new BadRowLog(path, opts.onBadRow ?? 'fail', kind === 'parquet' ? 'row' : 'line', opts.maxErrors ?? 10);
  const read =
    kind === 'jsonl' ? readJsonl(path, bad)
    : kind === 'json' ? readJson(path, bad, { field: opts.jsonField })
    : kind === 'csv' ? csvReader(',')(path, bad)
    : kind === 'tsv' ? csvReader('\t')(path, bad)
    : readParquet(path, bad);
  async function* rows(): AsyncGenerator<RowRecord> {
    yield* read;
    bad.finish();
  }
  return { kind, bad, rows: rows() };
}

/** The kind from the extension; a .json whose first line is a whole object is treated as JSON Lines. */
export async function fileKindOf(path: string): Promise<FileKind> {
  const ext = extname(path).toLowerCase();
  const kind = FILE_KINDS[ext];
  if (!kind) {
    throw new DatasetError(
      `${path}: unsupported dataset file type "${ext || '(none)'}"; use ${Object.keys(FILE_KINDS).join(', ')}`,
      path,
    );
  }
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot open (${code})`, path);
  }
  try {
    if (kind === 'json' && (await looksLikeJsonLines(fh))) return 'jsonl';
  } finally {
    await fh.close();
  }
  return kind;
}

async function looksLikeJsonLines(fh: import('node:fs/promises').FileHandle): Promise<boolean> {
  const buf = Buffer.alloc(1 << 16);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  const head = buf.subarray(0, bytesRead).toString('utf8').replace(/^\uFEFF/, '');
  const nl = head.indexOf('\n');
  const first = head.slice(0, nl < 0 ? undefined : nl).trim();
  if (nl < 0 || !first.startsWith('{')) return false;
  const rest = head.slice(nl + 1).trimStart();
  if (rest === '') return false; // a single-line object: JSON holding an array
  try {
    JSON.parse(first);
    return true;
  } catch {
    return false;
  }
}
