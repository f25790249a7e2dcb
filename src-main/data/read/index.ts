// Opens a dataset file by its kind (extension, with a sniff for .json files that are really JSON
// Lines) and streams its rows; bad rows go to the BadRowLog under the caller's policy. The file is
// opened once, through util/regular-file.ts (a regular file only: a FIFO or device is refused at
// once), and read only as far as a preview's window when one is given.

import type { FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';
import { openRegularFile } from '../../util/regular-file.js';
import { BadRowLog, DatasetError, type BadRowPolicy } from '../errors.js';
import { csvReader } from './csv.js';
import { readJson } from './json.js';
import { readJsonl } from './jsonl.js';
import { readParquet } from './parquet.js';
import type { DatasetFile, RowRecord } from './types.js';

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
  /**
   * Read at most this many bytes of the file (a preview's window, e.g. READ_LIMITS.previewWindow);
   * a row the window cuts is left out. Default: the whole file.
   */
  window?: number;
}

export interface OpenedDataset {
  kind: FileKind;
  bad: BadRowLog;
  /** The rows; iterating to the end calls bad.finish() (throws under 'fail' if any row was bad). */
  rows: AsyncGenerator<RowRecord>;
}

export async function openRows(path: string, opts: ReadOptions = {}): Promise<OpenedDataset> {
  const ext = extname(path).toLowerCase();
  if (!opts.fileKind && !FILE_KINDS[ext]) throw unsupported(path, ext);
  const { handle, size } = await openDataset(path);
  let kind: FileKind;
  try {
    kind = opts.fileKind ?? (FILE_KINDS[ext] === 'json' && (await looksLikeJsonLines(handle)) ? 'jsonl' : FILE_KINDS[ext]!);
  } catch (e) {
    await handle.close();
    throw e;
  }
  const file: DatasetFile = { path, handle, size, window: Math.min(size, opts.window ?? size) };
  const bad = new BadRowLog(path, opts.onBadRow ?? 'fail', kind === 'parquet' ? 'row' : 'line', opts.maxErrors ?? 10);
  const read =
    kind === 'jsonl' ? readJsonl(file, bad)
    : kind === 'json' ? readJson(file, bad, { field: opts.jsonField })
    : kind === 'csv' ? csvReader(',')(file, bad)
    : kind === 'tsv' ? csvReader('\t')(file, bad)
    : readParquet(file, bad);
  async function* rows(): AsyncGenerator<RowRecord> {
    try {
      yield* read;
      bad.finish();
    } finally {
      await handle.close();
    }
  }
  return { kind, bad, rows: rows() };
}

const unsupported = (path: string, ext: string) =>
  new DatasetError(`${path}: unsupported dataset file type "${ext || '(none)'}"; use ${Object.keys(FILE_KINDS).join(', ')}`, path);

/** The dataset file, opened if it is a regular file; errors are DatasetErrors naming it. */
function openDataset(path: string) {
  return openRegularFile(path, {
    error: (m, problem) => new DatasetError(problem === 'missing' ? `${path}: no such file` : m, path),
  });
}

/** The kind from the extension; a .json whose first line is a whole object is treated as JSON Lines. */
export async function fileKindOf(path: string): Promise<FileKind> {
  const ext = extname(path).toLowerCase();
  const kind = FILE_KINDS[ext];
  if (!kind) throw unsupported(path, ext);
  const { handle } = await openDataset(path);
  try {
    if (kind === 'json' && (await looksLikeJsonLines(handle))) return 'jsonl';
  } finally {
    await handle.close();
  }
  return kind;
}

async function looksLikeJsonLines(fh: FileHandle): Promise<boolean> {
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
