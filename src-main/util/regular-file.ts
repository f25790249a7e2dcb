// Reading a file a user named, without letting it block, flood or crash the process. A path is
// opened only when it is a regular file: symbolic links are followed (a Hugging Face cache file is
// one), and a FIFO, device, socket or folder is refused at once, before a byte is read. Opening
// uses O_NONBLOCK, so opening a FIFO never waits for a writer (a regular file ignores the flag),
// and the check is made on the opened descriptor, so the path cannot change kind in between.
// Whole-file reads stop at a limit per kind of file (READ_LIMITS); JSON deeper than
// MAX_JSON_DEPTH is refused before it is parsed, since code that walks deep data (JSON.stringify,
// a tokenizer, a schema) overflows its stack. Every path Finch reads that a user chose (model
// folders, adapters, datasets, run configs, run folders) goes through this module.
//
//   const { handle, size } = await openRegularFile(file);           // a FileHandle, checked
//   const text = (await readRegularFile(file, READ_LIMITS.config)).toString('utf8');
//   const cfg = readJsonSync(file, READ_LIMITS.config);             // bounded and depth-checked

import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

const MiB = 2 ** 20;

/** The most bytes Finch reads of each kind of file a user brings. */
export const READ_LIMITS = {
  /** config.json, generation_config.json, tokenizer_config.json, adapter_config.json, *.safetensors.index.json, YAML run configs. */
  config: 16 * MiB,
  /** tokenizer.json (Gemma 3's is 33 MB) and tokenizer.model. */
  tokenizer: 64 * MiB,
  /** chat_template.jinja. */
  template: 1 * MiB,
  /** A run folder's run.json and a checkpoint's trainer_state.json (their loss histories: ~40 bytes a step). */
  runRecord: 64 * MiB,
  /** A safetensors header: the bound of Hugging Face's own reader. */
  safetensorsHeader: 100_000_000,
  /** How much of a dataset file a preview (or the library's first look) reads. */
  previewWindow: 8 * MiB,
  /** The same for Parquet, whose row groups are read whole: at most this many bytes are fetched. */
  previewParquet: 256 * MiB,
  /** The longest row (a text line, a JSON array element) a dataset reader holds. */
  datasetRow: 64 * MiB,
} as const;

/** JSON nested deeper than this is refused before parsing (real configs and rows nest < 10 deep). */
export const MAX_JSON_DEPTH = 64;

/** Why a file could not be read: missing, not a regular file, over its limit, unreadable, not valid JSON, JSON too deep. */
export type FileProblem = 'missing' | 'not-a-file' | 'too-large' | 'unreadable' | 'invalid' | 'too-deep';

export class FileAccessError extends Error {
  override name = 'FileAccessError';
  /** 'ENOENT' for a missing file, so callers that map system errors by code see it as such. */
  readonly code: string | undefined;
  constructor(message: string, readonly problem: FileProblem, readonly file: string) {
    super(message);
    this.code = problem === 'missing' ? 'ENOENT' : undefined;
  }
}

/** Makes the caller's own error from a message (ModelConfigError, DatasetError, ...); default FileAccessError. */
export type ErrorFactory = (message: string, problem: FileProblem) => Error;

export interface ReadOptions {
  error?: ErrorFactory;
  /** What the file is, for the too-large message ("a model config"); default "this kind of file". */
  what?: string;
}

const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** What a non-regular file is, in words; null for a regular file. */
export function specialKind(st: fs.Stats): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

const fail = (o: ReadOptions, file: string, problem: FileProblem, message: string): Error =>
  (o.error ?? ((m: string, p: FileProblem) => new FileAccessError(m, p, file)))(message, problem);

const notAFile = (o: ReadOptions, file: string, kind: string): Error =>
  fail(o, file, 'not-a-file', `${file} is ${kind}, not a regular file: Finch reads only regular files (or symbolic links to them)`);

/** The error for a failed open(2), naming the file and what is wrong with it. */
function openError(e: unknown, file: string, o: ReadOptions): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return fail(o, file, 'missing', `${file} not found`);
  if (code === 'ENXIO') return notAFile(o, file, 'a socket'); // open(2) of a Unix socket
  if (code === 'ELOOP') return fail(o, file, 'unreadable', `cannot open ${file}: a loop of symbolic links`);
  if (code === 'EACCES' || code === 'EPERM') return fail(o, file, 'unreadable', `cannot open ${file}: permission denied`);
  return fail(o, file, 'unreadable', `cannot open ${file}: ${(e as Error).message}`);
}

/** `size`: the file's size, or null when it is only known to be past the limit (it grew, or stat cannot tell). */
const tooLarge = (o: ReadOptions, file: string, size: number | null, limit: number): Error => {
  const what = o.what ?? 'this kind of file';
  return fail(o, file, 'too-large', size === null
    ? `${file} is larger than ${sizeText(limit)}, the most Finch reads of ${what}`
    : `${file} is ${sizeText(size)}; Finch reads at most ${sizeText(limit)} of ${what}`);
};

export function sizeText(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

export interface OpenedFile {
  handle: FileHandle;
  /** The size fstat reported when it was opened. */
  size: number;
}

/** Opens `file` for reading if it is a regular file (after symbolic links); the caller closes the handle. */
export async function openRegularFile(file: string, o: ReadOptions = {}): Promise<OpenedFile> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(file, OPEN_FLAGS);
  } catch (e) {
    throw openError(e, file, o);
  }
  try {
    const st = await handle.stat();
    const kind = specialKind(st);
    if (kind) throw notAFile(o, file, kind);
    return { handle, size: st.size };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** openRegularFile for synchronous callers (workers, the CLI); the caller closes the descriptor. */
export function openRegularFileSync(file: string, o: ReadOptions = {}): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    throw openError(e, file, o);
  }
  try {
    const st = fs.fstatSync(fd);
    const kind = specialKind(st);
    if (kind) throw notAFile(o, file, kind);
    return { fd, size: st.size };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** A system error of read(2) (EIO, EISDIR, ...) as the caller's error; errors made here pass through. */
const readError = (e: unknown, file: string, o: ReadOptions): Error =>
  (e as NodeJS.ErrnoException).syscall ? fail(o, file, 'unreadable', `cannot read ${file}: ${(e as Error).message}`) : (e as Error);

// Whole-file reads go to the end of the file, not to fstat's size (which may be stale, or 0 for
// files of /proc), and stop one byte past the limit.
const READ_CHUNK = 4 * MiB;

/** The bytes of regular file `file`, at most `limit` of them (more is an error naming the limit). */
export async function readRegularFile(file: string, limit: number, o: ReadOptions = {}): Promise<Buffer> {
  const { handle, size } = await openRegularFile(file, o);
  try {
    if (size > limit) throw tooLarge(o, file, size, limit);
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(READ_CHUNK, limit + 1 - total);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(buf, 0, want, total);
      if (bytesRead === 0) break;
      parts.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > limit) throw tooLarge(o, file, null, limit);
    }
    return Buffer.concat(parts, total);
  } catch (e) {
    throw readError(e, file, o);
  } finally {
    await handle.close();
  }
}

/** readRegularFile for synchronous callers. */
export function readRegularFileSync(file: string, limit: number, o: ReadOptions = {}): Buffer {
  const { fd, size } = openRegularFileSync(file, o);
  try {
    if (size > limit) throw tooLarge(o, file, size, limit);
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(READ_CHUNK, limit + 1 - total);
      const buf = Buffer.allocUnsafe(want);
      const n = fs.readSync(fd, buf, 0, want, total);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      total += n;
      if (total > limit) throw tooLarge(o, file, null, limit);
    }
    return Buffer.concat(parts, total);
  } catch (e) {
    throw readError(e, file, o);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads exactly `into.length` bytes at `position` of an open descriptor; fewer bytes in the file is
 * an error naming `what` (a truncated file, or one that changed since its size was checked).
 */
export function readExactlySync(fd: number, into: Uint8Array, position: number, file: string, what: string, o: ReadOptions = {}): void {
  for (let done = 0; done < into.length;) {
    const n = fs.readSync(fd, into, done, Math.min(into.length - done, 1 << 30), position + done);
    if (n === 0) throw fail(o, file, 'unreadable', `${file}: the file ends inside ${what} (truncated, or changed while Finch read it?)`);
    done += n;
  }
}

/** The async readExactlySync. */
export async function readExactly(handle: FileHandle, into: Uint8Array, position: number, file: string, what: string, o: ReadOptions = {}): Promise<void> {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await handle.read(into, done, Math.min(into.length - done, 1 << 30), position + done);
    if (bytesRead === 0) throw fail(o, file, 'unreadable', `${file}: the file ends inside ${what} (truncated, or changed while Finch read it?)`);
    done += bytesRead;
  }
}

/**
 * The nesting depth of JSON text (brackets and braces outside strings), counted only up to
 * `max + 1`: a cheap scan before JSON.parse builds deep data.
 */
export function jsonDepthOver(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** JSON.parse with the depth check; errors name `file` (and `where`, e.g. "line 12"). */
export function parseJsonText(text: string, file: string, o: ReadOptions & { where?: string } = {}): unknown {
  const at = o.where ? `${file} ${o.where}` : file;
  if (jsonDepthOver(text)) throw fail(o, file, 'too-deep', `${at}: JSON nested deeper than ${MAX_JSON_DEPTH} levels; Finch does not read data this deep`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw fail(o, file, 'invalid', `${at}: invalid JSON (${(e as Error).message})`);
  }
}

/** A bounded, depth-checked JSON file (a UTF-8 BOM is allowed). */
export async function readJson(file: string, limit: number, o: ReadOptions = {}): Promise<unknown> {
  return parseJsonText(stripBom((await readRegularFile(file, limit, o)).toString('utf8')), file, o);
}

export function readJsonSync(file: string, limit: number, o: ReadOptions = {}): unknown {
  return parseJsonText(stripBom(readRegularFileSync(file, limit, o).toString('utf8')), file, o);
}

const stripBom = (s: string) => (s.charCodeAt(0) === 0xfeff ? s.slice(1) : s);
