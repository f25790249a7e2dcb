// JSON datasets: an array of rows, or an object holding one array of rows ({"data": [...]}).
// A JSON dataset can be hundreds of MB (MetaMathQA is ~400 MB), so it is not parsed whole: a
// byte scanner streams the file, finds each element of the row array by bracket depth (JSON's
// structural characters are ASCII and never occur inside multi-byte UTF-8), and each element is
// decoded and parsed on its own. That keeps memory bounded and gives every row its line number.

import { TextDecoder } from 'node:util';
import { READ_LIMITS, sizeText } from '../../util/regular-file.js';
import { DatasetError, type BadRowLog } from '../errors.js';
import { cutByWindow, parseRow, windowStream, type DatasetFile, type RowRecord } from './types.js';

export interface JsonReadOptions {
  /** For a root object: the key of the row array (needed only when the object holds several arrays). */
  field?: string;
}

export async function* readJson(file: DatasetFile, bad: BadRowLog, opts: JsonReadOptions = {}): AsyncGenerator<RowRecord> {
  const scanner = new JsonArrayScanner(file.path, opts.field);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const toRecord = (el: ScannedElement): RowRecord | null => {
    let text: string;
    try {
      text = decoder.decode(el.bytes);
    } catch {
      bad.add(el.line, 'invalid UTF-8; re-save the file as UTF-8');
      return null;
    }
    const row = parseRow(text);
    if (typeof row === 'string') {
      bad.add(el.line, row);
      return null;
    }
    return { row, line: el.line };
  };
  const stream = windowStream(file, 1 << 20);
  let first = true;
  for await (let chunk of (stream ?? []) as AsyncIterable<Buffer>) {
    if (first && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    first = false;
    for (const el of scanner.push(chunk)) {
      const r = toRecord(el);
      if (r) yield r;
    }
  }
  if (cutByWindow(file)) return; // a preview's window ends inside the file: the rest is unread, not missing
  const last = scanner.end();
  if (last) bad.add(last.line, 'the file ends inside this row (truncated file?)');
}

export interface ScannedElement {
  bytes: Buffer;
  line: number;
}

const enum C {
  NL = 0x0a, CR = 0x0d, SP = 0x20, TAB = 0x09, QUOTE = 0x22, BSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a,
  LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d,
}

interface Capture {
  parts: Buffer[];
  /** Bytes in parts (at most READ_LIMITS.datasetRow). */
  bytes: number;
  start: number; // offset in the current chunk
  line: number;
  kind: 'container' | 'string' | 'scalar' | 'key';
}

/** Splits a streamed JSON document into the elements of its row array. */
export class JsonArrayScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private line = 1;
  private root: 'array' | 'object' | null = null;
  /** Depth inside the row array (elements start at this depth), -1 while not inside it. */
  private rowDepth = -1;
  private rowArrayDone = false;
  private found = false;
  private el: Capture | null = null;
  // Root-object bookkeeping: which key's value starts next, and the arrays seen so far.
  private key: Capture | null = null;
  private lastKey = '';
  private expectValue = false;
  private readonly keys: string[] = [];
  private readonly arrays: string[] = [];

  constructor(private readonly file: string, private readonly field?: string) {}

  push(chunk: Buffer): ScannedElement[] {
    const out: ScannedElement[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.inString) {
        if (c === C.NL) this.line++;
        if (this.escaped) this.escaped = false;
        else if (c === C.BSLASH) this.escaped = true;
        else if (c === C.QUOTE) {
          this.inString = false;
          if (this.el?.kind === 'string' && this.depth === this.rowDepth) out.push(this.finish(chunk, i + 1));
          else if (this.key) this.finishKey(chunk, i + 1);
        }
        continue;
      }
      const isSpace = c === C.SP || c === C.NL || c === C.CR || c === C.TAB;
      if (this.el?.kind === 'scalar' && (isSpace || c === C.COMMA || c === C.RBRACKET)) out.push(this.finish(chunk, i));
      if (isSpace) {
        if (c === C.NL) this.line++;
        continue;
      }
      if (this.depth === 0 && this.root !== null && this.rowDepth < 0) {
        throw new DatasetError(
          `${this.file} line ${this.line}: more data after the JSON ${this.root} ends. If the file holds one JSON object per line, name it .jsonl.`,
          this.file,
        );
      }
      if (this.root === 'object' && this.depth === 1) this.rootObjectChar(c, i);
      if (this.el === null && this.depth === this.rowDepth && c !== C.COMMA && c !== C.RBRACKET) {
        const kind = c === C.LBRACE || c === C.LBRACKET ? 'container' : c === C.QUOTE ? 'string' : 'scalar';
        this.el = { parts: [], bytes: 0, start: i, line: this.line, kind };
      }
      switch (c) {
        case C.QUOTE:
          this.inString = true;
          break;
        case C.LBRACE:
        case C.LBRACKET:
          if (this.depth === 0) this.openRoot(c);
          this.depth++;
          break;
        case C.RBRACE:
        case C.RBRACKET:
          if (this.depth === 0) throw new DatasetError(`${this.file} line ${this.line}: unbalanced "${String.fromCharCode(c)}"`, this.file);
          this.depth--;
          if (this.el?.kind === 'container' && this.depth === this.rowDepth) out.push(this.finish(chunk, i + 1));
          else if (this.depth === this.rowDepth - 1) {
            this.rowDepth = -1; // the row array closed
            this.rowArrayDone = true;
          }
          break;
        default:
          if (this.depth === 0) throw new DatasetError(`${this.file}: expected a JSON array of rows or an object holding one`, this.file);
      }
    }
    // Carry the unfinished element (or key) over to the next chunk.
    for (const cap of [this.el, this.key]) {
      if (cap) {
        cap.parts.push(chunk.subarray(cap.start));
        cap.bytes += chunk.length - cap.start;
        cap.start = 0;
        if (cap.bytes > READ_LIMITS.datasetRow) {
          throw new DatasetError(`${this.file} line ${cap.line}: one ${cap.kind === 'key' ? 'key' : 'row'} longer than ${sizeText(READ_LIMITS.datasetRow)}; Finch reads datasets of one example per array element`, this.file);
        }
      }
    }
    return out;
  }

  /** At end of file: checks the document was complete; returns an unfinished element, if any. */
  end(): ScannedElement | null {
    const open = this.el;
    if (open) return { bytes: Buffer.concat(open.parts), line: open.line };
    if (this.root === null) return null; // empty file: the caller reports an empty dataset
    if (this.depth > 0 && !this.rowArrayDone) {
      throw new DatasetError(`${this.file}: the file ends before the JSON ${this.root} closes (truncated file?)`, this.file);
    }
    if (!this.found) {
      const keys = this.keys.length ? this.keys.join(', ') : 'none';
      const arrays = this.arrays.length ? `; arrays: ${this.arrays.join(', ')}` : '';
      throw new DatasetError(
        this.field
          ? `${this.file}: the JSON object has no array under "${this.field}" (keys: ${keys}${arrays})`
          : `${this.file}: the JSON object holds no array of rows (keys: ${keys}); expected e.g. {"data": [{...}, ...]}`,
        this.file,
      );
    }
    return null;
  }

  private openRoot(c: number): void {
    this.root = c === C.LBRACKET ? 'array' : 'object';
    if (this.root === 'array') {
      this.rowDepth = 1;
      this.found = true;
    }
  }

  /** A structural character directly inside the root object: track keys and pick the row array. */
  private rootObjectChar(c: number, i: number): void {
    if (c === C.QUOTE && !this.expectValue) {
      this.key = { parts: [], bytes: 0, start: i, line: this.line, kind: 'key' };
    } else if (c === C.COLON) {
      this.expectValue = true;
    } else if (c === C.COMMA) {
      this.expectValue = false;
    } else if (this.expectValue) {
      this.expectValue = false;
      if (c !== C.LBRACKET) return;
      this.arrays.push(this.lastKey);
      const wanted = this.field === undefined ? this.arrays.length === 1 : this.lastKey === this.field;
      if (wanted) {
        this.rowDepth = 2;
        this.found = true;
      }
      else if (this.field === undefined) {
        throw new DatasetError(
          `${this.file}: the JSON object holds several arrays (${this.arrays.join(', ')}); choose the one with the rows (jsonField)`,
          this.file,
        );
      }
    }
  }

  private finishKey(chunk: Buffer, end: number): void {
    const k = this.key!;
    k.parts.push(chunk.subarray(k.start, end));
    this.key = null;
    try {
      this.lastKey = String(JSON.parse(Buffer.concat(k.parts).toString('utf8')));
    } catch {
      this.lastKey = '?';
    }
    this.keys.push(this.lastKey);
  }

  private finish(chunk: Buffer, end: number): ScannedElement {
    const e = this.el!;
    e.parts.push(chunk.subarray(e.start, end));
    this.el = null;
    return { bytes: e.parts.length === 1 ? e.parts[0]! : Buffer.concat(e.parts), line: e.line };
  }
}
