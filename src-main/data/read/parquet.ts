// Parquet through hyparquet, one row group at a time (memory is bounded by the row group, not the
// file). Rows are numbered from 1 in file order. Bytes come from the opened file (never a path
// hyparquet opens itself), and under a preview's window at most READ_LIMITS.previewParquet bytes
// are fetched: hyparquet reads a row group's column chunks whole. Anything hyparquet throws
// (a damaged footer, a page that lies about its size) is the file's problem: a DatasetError.

import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { READ_LIMITS, readExactly, sizeText } from '../../util/regular-file.js';
import { DatasetError, type BadRowLog } from '../errors.js';
import { cutByWindow, type DatasetFile, type RowRecord } from './types.js';

/** The file as hyparquet's AsyncBuffer, fetching at most `budget` bytes in all. */
function fileBuffer(file: DatasetFile, budget: number): AsyncBuffer {
  let fetched = 0;
  return {
    byteLength: file.size,
    async slice(start: number, end = file.size): Promise<ArrayBuffer> {
      const from = Math.max(0, start), to = Math.min(file.size, end);
      if (to <= from) return new ArrayBuffer(0);
      fetched += to - from;
      if (fetched > budget) {
        throw new DatasetError(`${file.path}: a preview reads at most ${sizeText(budget)} of a Parquet file, and its first row group is larger; the file can still be used for training`, file.path);
      }
      const bytes = new Uint8Array(to - from);
      await readExactly(file.handle, bytes, from, file.path, 'a Parquet page', { error: (m) => new DatasetError(m, file.path) });
      return bytes.buffer;
    },
  };
}

export async function* readParquet(file: DatasetFile, bad: BadRowLog): AsyncGenerator<RowRecord> {
  void bad; // Parquet rows are typed by the schema; there is no per-row syntax to go wrong.
  const path = file.path;
  const buffer = fileBuffer(file, cutByWindow(file) ? READ_LIMITS.previewParquet : Infinity);
  const unreadable = (e: unknown) => (e instanceof DatasetError ? e : new DatasetError(`${path}: not a readable Parquet file (${(e as Error).message})`, path));
  let metadata;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw unreadable(e);
  }
  let start = 0;
  for (const group of metadata.row_groups) {
    const n = Number(group.num_rows);
    if (!Number.isSafeInteger(n) || n < 0) throw new DatasetError(`${path}: a row group claims ${group.num_rows} rows; damaged file?`, path);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: start + n });
    } catch (e) {
      throw unreadable(e);
    }
    for (let i = 0; i < rows.length; i++) yield { row: rows[i]!, line: start + i + 1 };
    start += n;
  }
}
