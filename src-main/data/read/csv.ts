// CSV and TSV through csv-parse: the first line is the header, every record becomes an object of
// strings. Lines are fed from readLines, so invalid UTF-8 is caught and located like in JSONL.

import { Readable, pipeline } from 'node:stream';
import { parse, type CsvError, type Info } from 'csv-parse';
import { DatasetError, type BadRowLog } from '../errors.js';
import { readLines } from './lines.js';
import type { DatasetFile, Row, RowRecord } from './types.js';

/** More columns than this is no fine-tuning dataset (a binary file read as text, or a transposed table). */
export const MAX_COLUMNS = 10_000;

export function csvReader(delimiter: ',' | '\t') {
  return async function* readCsv(file: DatasetFile, bad: BadRowLog): AsyncGenerator<RowRecord> {
    const path = file.path;
    // Problems found by the line reader or csv-parse's callbacks are queued and reported from this
    // generator, so a 'fail' policy throws here rather than inside a stream callback.
    const problems: { line: number; reason: string }[] = [];
    // Lines with invalid UTF-8 are parsed (lossily) to keep line numbers, and their records dropped.
    const badLines = new Set<number>();
    async function* text(): AsyncGenerator<string> {
      let buf = '';
      for await (const l of readLines(file)) {
        if (l.error && l.line === 1) {
          // Without a readable header there are no columns: the file is not CSV/TSV text at all.
          throw new DatasetError(`${path} line 1: the header line is not valid UTF-8 (${l.error}); is this a ${delimiter === ',' ? 'CSV' : 'TSV'} file?`, path);
        }
        if (l.error) {
          problems.push({ line: l.line, reason: l.error });
          badLines.add(l.line);
        }
        buf += l.text + '\n';
        if (buf.length >= 1 << 16) {
          yield buf;
          buf = '';
        }
      }
      if (buf) yield buf;
    }
    const parser = parse({
      columns: (header: string[]) => {
        if (header.length > MAX_COLUMNS) throw new DatasetError(`${path}: the header line has ${header.length} columns (Finch reads at most ${MAX_COLUMNS}); is this a ${delimiter === ',' ? 'CSV' : 'TSV'} file?`, path);
        return header.map((h) => h.trim());
      },
      delimiter,
      info: true,
      raw: true,
      bom: true,
      skip_empty_lines: true,
      relax_quotes: true, // a stray quote inside an unquoted field is data (common in TSV)
      skip_records_with_error: true,
      on_skip: (err: CsvError | undefined) => {
        if (err) problems.push({ line: Number((err as unknown as Info).lines ?? 0), reason: csvReason(err) });
        return undefined;
      },
    });
    // The line reader's errors (DatasetError: a line too long) end the pipeline and come out of the parser here.
    pipeline(Readable.from(text()), parser, () => {});
    try {
      for await (const rec of parser as AsyncIterable<{ record: Row; info: Info; raw: string }>) {
        while (problems.length) bad.add(problems[0]!.line, problems.shift()!.reason);
        // info.lines is the record's last line; a quoted field can span several.
        const line = rec.info.lines - countNewlines(rec.raw.replace(/\r?\n$/, ''));
        if (badLines.size && spans(badLines, line, rec.info.lines)) continue;
        yield { row: rec.record, line };
      }
    } catch (e) {
      if (e instanceof DatasetError) throw e;
      // csv-parse stops at what it cannot skip (an unclosed quote at the end of the file, ...).
      throw new DatasetError(`${path}: not readable as ${delimiter === ',' ? 'CSV' : 'TSV'} (${csvReason(e as CsvError)})`, path);
    }
    while (problems.length) bad.add(problems[0]!.line, problems.shift()!.reason);
  };
}

function csvReason(err: CsvError): string {
  // csv-parse appends "on line N"; the log already says where.
  return err.message.replace(/ (on|at) line \d+$/, '');
}

function spans(lines: Set<number>, from: number, to: number): boolean {
  for (let l = from; l <= to; l++) if (lines.has(l)) return true;
  return false;
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}
