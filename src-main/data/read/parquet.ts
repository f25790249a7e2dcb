// Parquet through hyparquet, one row group at a time (memory is bounded by the row group, not the
// file). Rows are numbered from 1 in file order.

import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { DatasetError, type BadRowLog } from '../errors.js';
import type { RowRecord } from './types.js';

export async function* readParquet(path: string, bad: BadRowLog): AsyncGenerator<RowRecord> {
  void bad; // Parquet rows are typed by the schema; there is no per-row syntax to go wrong.
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new DatasetError(`${path}: not a readable Parquet file (${(e as Error).message})`, path);
  }
  let start = 0;
  for (const group of metadata.row_groups) {
    const n = Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata, rowStart: start, rowEnd: start + n });
    for (let i = 0; i < rows.length; i++) yield { row: rows[i]!, line: start + i + 1 };
    start += n;
  }
}
