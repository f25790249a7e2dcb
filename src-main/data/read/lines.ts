// Physical lines of a text file, streamed in bounded memory and decoded as strict UTF-8.
// '\n' (0x0A) never occurs inside a multi-byte UTF-8 sequence, so the bytes are split into whole
// lines before decoding: a block of complete lines decodes on its own, and a bad byte can be
// pinned to its line. Memory is one read chunk plus the longest line, which is at most
// READ_LIMITS.datasetRow (a longer one is no text dataset: binary data, or one huge value).

import { TextDecoder } from 'node:util';
import { READ_LIMITS, sizeText } from '../../util/regular-file.js';
import { DatasetError } from '../errors.js';
import { cutByWindow, windowStream, type DatasetFile } from './types.js';

export interface TextLine {
  line: number;
  /** The decoded line; when `error` is set, a lossy decoding (U+FFFD for bad bytes). */
  text: string;
  /** Set when the line's bytes are not valid UTF-8; says where. */
  error?: string;
}

const NL = 0x0a;
const CHUNK = 1 << 20;
/** Bytes looked at for a NUL, the mark of a binary file. */
const BINARY_SNIFF = 8000;

export async function* readLines(file: DatasetFile): AsyncGenerator<TextLine> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const stream = windowStream(file, CHUNK);
  if (!stream) return;
  let pending: Buffer[] = []; // bytes of the unfinished last line
  let pendingBytes = 0;
  let line = 1;
  let first = true;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let data = chunk;
    if (first) {
      first = false;
      if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) data = data.subarray(3); // UTF-8 BOM
      // A NUL byte near the start is a binary file (git's test): no line of it is worth reporting one by one.
      const nul = data.subarray(0, BINARY_SNIFF).indexOf(0);
      if (nul >= 0) throw new DatasetError(`${file.path}: binary data (a NUL byte at byte ${nul + 1}), not a text file; is this the dataset you meant?`, file.path);
    }
    const lastNl = data.lastIndexOf(NL);
    if (lastNl < 0) {
      pending.push(data);
      pendingBytes += data.length;
      if (pendingBytes > READ_LIMITS.datasetRow) throw lineTooLong(file, line);
      continue;
    }
    const head = data.subarray(0, lastNl + 1);
    const block = pending.length ? Buffer.concat([...pending, head]) : head;
    pending = lastNl + 1 < data.length ? [data.subarray(lastNl + 1)] : [];
    pendingBytes = pending[0]?.length ?? 0;
    for (const l of decodeBlock(block, line, decoder)) yield l;
    line += countNewlines(block);
  }
  // A line cut by a preview's window is left out: it is not the file's last line.
  if (pending.length && !cutByWindow(file)) {
    const rest = Buffer.concat(pending);
    for (const l of decodeBlock(rest, line, decoder)) yield l;
  }
}

function lineTooLong(file: DatasetFile, line: number): DatasetError {
  return new DatasetError(
    `${file.path} line ${line}: a line longer than ${sizeText(READ_LIMITS.datasetRow)}; Finch reads datasets of one example per line (is this a binary file, or one row holding the whole dataset?)`,
    file.path,
  );
}

/** Decodes a block of whole lines starting at `line`; only on failure (or a NUL byte) is it decoded line by line. */
function decodeBlock(block: Buffer, line: number, decoder: TextDecoder): TextLine[] {
  try {
    if (block.indexOf(0) >= 0) throw new Error('a NUL byte'); // valid UTF-8, but never in a text dataset
    const parts = decoder.decode(block).split('\n');
    if (block[block.length - 1] === NL) parts.pop(); // the block ends with a newline, not an empty line
    return parts.map((t, i) => ({ line: line + i, text: stripCr(t) }));
  } catch {
    const out: TextLine[] = [];
    let start = 0;
    while (start < block.length) {
      let end = block.indexOf(NL, start);
      if (end < 0) end = block.length;
      const bytes = block.subarray(start, end);
      const nul = bytes.indexOf(0);
      try {
        if (nul >= 0) {
          out.push({ line, text: '', error: `a NUL byte (at byte ${nul + 1} of the line): binary data, not text` });
        } else out.push({ line, text: stripCr(decoder.decode(bytes)) });
      } catch {
        const at = firstInvalidUtf8(bytes);
        const detail = at >= 0 ? ` (byte 0x${bytes[at]!.toString(16).padStart(2, '0')} at byte ${at + 1} of the line)` : '';
        const lossy = stripCr(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes));
        out.push({ line, text: lossy, error: `invalid UTF-8${detail}; re-save the file as UTF-8` });
      }
      line++;
      start = end + 1;
    }
    return out;
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

function countNewlines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(NL); i >= 0; i = b.indexOf(NL, i + 1)) n++;
  return n;
}

/** Offset of the first byte that starts a malformed sequence (structural check only), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    let n: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) n = 2;
    else if (c >= 0xf0 && c <= 0xf4) n = 3;
    else return i;
    for (let k = 1; k <= n; k++) if (i + k >= b.length || (b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}
