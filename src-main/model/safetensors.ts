// Safetensors checkpoints in and out, without loading whole files.
//
// Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, then N
// bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the
// data section; offsets are relative to the start of the data section.
//
// Reading opens each file once, parses only its header, and reads a tensor's byte range with
// fs.readSync on demand, converting through a small reusable buffer, so an 8B checkpoint streams
// tensor by tensor and the raw bytes of a tensor are never held next to its float32 copy.
// Writing takes tensor data eagerly or as a thunk, so a merged checkpoint can also be streamed out.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { f32ToF16Bits } from '../util/float16.js';
import {
  type FileProblem, READ_LIMITS, openRegularFile, openRegularFileSync, parseJsonText, readExactly, readExactlySync, readJson, readJsonSync,
} from '../util/regular-file.js';
import { resolveModelFolderSync } from './hf-cache.js';

export { f32ToF16Bits };

export type SafetensorsDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function dtypeBytes(dtype: SafetensorsDtype): number {
  return DTYPE_BYTES[dtype];
}

function isKnownDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === 'string' && Object.hasOwn(DTYPE_BYTES, d);
}

/** Where one tensor lives: absolute byte range [begin, end) inside `file`. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute path of the .safetensors file holding it. */
  file: string;
  /** Absolute byte offsets in `file` (header included), end exclusive. */
  begin: number;
  end: number;
}

// Conversion chunk: big enough for few syscalls, small enough to never matter for memory.
const CHUNK_BYTES = 1 << 24;

if (os.endianness() !== 'LE') {
  throw new Error('safetensors.ts: big-endian hosts are not supported (safetensors is little-endian)');
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

interface ParsedFile {
  file: string;
  size: number;
  dataStart: number;
  metadata: Record<string, string>;
  tensors: TensorInfo[];
}

const asSafetensorsError = (m: string) => new SafetensorsError(m);

/** The header length a file's first 8 bytes declare, checked against the file's size and the header limit. */
function headerLength(lenBuf: Buffer, file: string, size: number): number {
  const n = lenBuf.readBigUInt64LE(0);
  // One header is at most READ_LIMITS.safetensorsHeader; HF's reader uses the same bound to reject garbage lengths.
  if (n > BigInt(READ_LIMITS.safetensorsHeader)) {
    throw new SafetensorsError(`${file}: header length ${n} is implausible (over ${READ_LIMITS.safetensorsHeader} bytes); not a safetensors file?`);
  }
  const headerLen = Number(n);
  if (8 + headerLen > size) {
    throw new SafetensorsError(`${file}: truncated safetensors file (header says ${headerLen} bytes, file has ${size - 8} after the length)`);
  }
  return headerLen;
}

/**
 * Parses one file's header: every tensor's dtype, shape and byte range are checked, in safe
 * integer arithmetic, against each other and against the file's size, so nothing is ever sized
 * from a header that lies.
 */
function parseHeaderBytes(file: string, size: number, headerLen: number, hb: Buffer): ParsedFile {
  const header = parseJsonText(hb.toString('utf8'), file, { error: (m) => new SafetensorsError(m.replace('invalid JSON', 'bad safetensors header JSON')) });
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError(`${file}: safetensors header is not a JSON object`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v !== null && (typeof v !== 'object' || Array.isArray(v))) throw new SafetensorsError(`${file}: __metadata__ must be an object of strings`);
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isKnownDtype(e?.dtype)) {
      throw new SafetensorsError(`${file}: tensor ${name} has unsupported dtype ${JSON.stringify(e?.dtype)}`);
    }
    const shape = e.shape;
    const offs = e.data_offsets;
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${file}: tensor ${name} has a bad shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${file}: tensor ${name} has bad data_offsets ${JSON.stringify(offs)}`);
    }
    const [b, en] = offs as [number, number];
    if (en > dataLen) {
      throw new SafetensorsError(`${file}: tensor ${name} is out of range (ends at data byte ${en}, data section has ${dataLen}); truncated file?`);
    }
    // The bytes the shape implies, multiplied only while they fit the data section (never past 2^53).
    let need = DTYPE_BYTES[e.dtype];
    for (const d of shape as number[]) {
      need *= d;
      if (need > dataLen) break;
    }
    if (b > en || en - b !== need) {
      const exact = (shape as number[]).reduce((a, d) => a * BigInt(d), BigInt(DTYPE_BYTES[e.dtype]));
      throw new SafetensorsError(`${file}: tensor ${name} spans ${en - b} bytes but ${e.dtype}[${shape.join(', ')}] needs ${exact}`);
    }
    tensors.push({ name, dtype: e.dtype, shape: shape as number[], file, begin: dataStart + b, end: dataStart + en });
  }
  return { file, size, dataStart, metadata, tensors };
}

const headerOptions = { what: 'a safetensors file', error: (m: string, problem: FileProblem) => new SafetensorsError(problem === 'missing' ? `safetensors file not found: ${m.replace(/ not found$/, '')}` : m) };

/** Parses one file's header (a regular file only); validates every tensor's byte range against the file size. */
function parseHeader(file: string): ParsedFile {
  const { fd, size } = openRegularFileSync(file, headerOptions);
  try {
    if (size < 8) throw new SafetensorsError(`${file}: truncated safetensors file (${size} bytes, no header length)`);
    const lenBuf = Buffer.alloc(8);
    readExactlySync(fd, lenBuf, 0, file, 'the header length', headerOptions);
    const headerLen = headerLength(lenBuf, file, size);
    const hb = Buffer.alloc(headerLen);
    readExactlySync(fd, hb, 8, file, 'the header', headerOptions);
    return parseHeaderBytes(file, size, headerLen, hb);
  } finally {
    fs.closeSync(fd);
  }
}

/** parseHeader without blocking the event loop (the server's first look at a model folder). */
async function parseHeaderAsync(file: string): Promise<ParsedFile> {
  const { handle, size } = await openRegularFile(file, headerOptions);
  try {
    if (size < 8) throw new SafetensorsError(`${file}: truncated safetensors file (${size} bytes, no header length)`);
    const lenBuf = Buffer.alloc(8);
    await readExactly(handle, lenBuf, 0, file, 'the header length', headerOptions);
    const headerLen = headerLength(lenBuf, file, size);
    const hb = Buffer.alloc(headerLen);
    await readExactly(handle, hb, 8, file, 'the header', headerOptions);
    return parseHeaderBytes(file, size, headerLen, hb);
  } finally {
    await handle.close();
  }
}

/** The weight map of an index file, checked: tensor name -> shard file name (no paths). */
function weightMapOf(indexFile: string, idx: unknown): Record<string, string> {
  const wm = (idx as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new SafetensorsError(`${indexFile}: missing "weight_map" object`);
  }
  for (const s of new Set(Object.values(wm as Record<string, unknown>))) {
    if (typeof s !== 'string' || s.includes('/') || s.includes('\\') || s === '..' || s === '.') {
      throw new SafetensorsError(`${indexFile}: bad shard file name ${JSON.stringify(s)} in weight_map`);
    }
  }
  return wm as Record<string, string>;
}

/** Only tensors the index names are part of the checkpoint; each must be where the index says. */
function indexedFiles(indexFile: string, weightMap: Record<string, string>, parsed: Map<string, ParsedFile>): ParsedFile[] {
  const files: ParsedFile[] = [];
  for (const [s, pf] of parsed) {
    const names = new Set(pf.tensors.map((t) => t.name));
    for (const [name, shard] of Object.entries(weightMap)) {
      if (shard === s && !names.has(name)) {
        throw new SafetensorsError(`${indexFile}: tensor ${name} is mapped to ${s}, which does not contain it`);
      }
    }
    files.push({ ...pf, tensors: pf.tensors.filter((t) => weightMap[t.name] === s) });
  }
  return files;
}

const indexOptions = { what: 'a safetensors index', error: (m: string) => new SafetensorsError(m) };

/**
 * An opened checkpoint: one model.safetensors, a sharded model.safetensors.index.json, or any
 * single .safetensors file. Tensors are read on demand; call close() to release file handles.
 */
export class Checkpoint {
  readonly source: string;
  /** `__metadata__` of the (first) file; for sharded checkpoints, the index's metadata is in indexMetadata. */
  readonly metadata: Record<string, string>;
  readonly indexMetadata: Record<string, unknown> | null;
  private readonly byName = new Map<string, TensorInfo>();
  private readonly fds = new Map<string, number>();
  private chunk: ArrayBuffer | null = null;

  private constructor(source: string, files: ParsedFile[], indexMetadata: Record<string, unknown> | null) {
    this.source = source;
    this.metadata = files[0]?.metadata ?? {};
    this.indexMetadata = indexMetadata;
    for (const f of files) for (const t of f.tensors) this.byName.set(t.name, t);
  }

  /**
   * Opens `p`: a folder (model.safetensors, else model.safetensors.index.json, else its only
   * *.safetensors file), a .safetensors file, or an index .json file.
   */
  static open(p: string): Checkpoint {
    const { kind, path: file } = Checkpoint.locate(p);
    if (kind === 'file') return new Checkpoint(file, [parseHeader(file)], null);
    const idx = readJsonSync(file, READ_LIMITS.config, indexOptions);
    const weightMap = weightMapOf(file, idx);
    const parsed = new Map<string, ParsedFile>();
    for (const s of new Set(Object.values(weightMap))) parsed.set(s, parseHeader(Checkpoint.shardPath(file, s)));
    return new Checkpoint(file, indexedFiles(file, weightMap, parsed), Checkpoint.indexMetadataOf(idx));
  }

  /** Checkpoint.open with its headers read asynchronously (the server's look at a model folder). */
  static async openAsync(p: string): Promise<Checkpoint> {
    const { kind, path: file } = Checkpoint.locate(p);
    if (kind === 'file') return new Checkpoint(file, [await parseHeaderAsync(file)], null);
    const idx = await readJson(file, READ_LIMITS.config, indexOptions);
    const weightMap = weightMapOf(file, idx);
    const parsed = new Map<string, ParsedFile>();
    for (const s of new Set(Object.values(weightMap))) parsed.set(s, await parseHeaderAsync(Checkpoint.shardPath(file, s)));
    return new Checkpoint(file, indexedFiles(file, weightMap, parsed), Checkpoint.indexMetadataOf(idx));
  }

  /**
   * What `p` names: a weight file, or an index file. A folder (or Hugging Face cache folder) names
   * its model.safetensors, else model.safetensors.index.json, else its only *.safetensors file.
   */
  private static locate(p: string): { kind: 'file' | 'index'; path: string } {
    const abs = path.resolve(p);
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    if (!st) throw new SafetensorsError(`checkpoint not found: ${abs}`);
    if (!st.isDirectory()) return { kind: abs.endsWith('.json') ? 'index' : 'file', path: abs };
    const dir = resolveModelFolderSync(abs).dir;
    const single = path.join(dir, 'model.safetensors');
    if (fs.existsSync(single)) return { kind: 'file', path: single };
    const index = path.join(dir, 'model.safetensors.index.json');
    if (fs.existsSync(index)) return { kind: 'index', path: index };
    const any = fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors'));
    if (any.length === 1) return { kind: 'file', path: path.join(dir, any[0]!) };
    throw new SafetensorsError(
      `${dir}: no model.safetensors or model.safetensors.index.json` +
        (any.length > 1 ? ` (found ${any.length} .safetensors files and no index)` : '') +
        '. Finch reads safetensors only (never pickled pytorch_model.bin).',
    );
  }

  private static shardPath(indexFile: string, shard: string): string {
    const dir = path.dirname(indexFile);
    const shardPath = path.join(dir, shard);
    if (!fs.existsSync(shardPath)) {
      throw new SafetensorsError(`${indexFile}: shard ${shard} is listed in weight_map but missing from ${dir}`);
    }
    return shardPath;
  }

  private static indexMetadataOf(idx: unknown): Record<string, unknown> | null {
    const md = (idx as { metadata?: unknown }).metadata;
    return md && typeof md === 'object' ? (md as Record<string, unknown>) : null;
  }

  /** The files this checkpoint reads: its weight files, and its index file when sharded. */
  files(): string[] {
    const weights = new Set([...this.byName.values()].map((t) => t.file));
    return [...(this.source.endsWith('.json') ? [this.source] : []), ...[...weights].sort()];
  }

  /** Tensor names, sorted. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new SafetensorsError(`${this.source}: no tensor named ${name}`);
    return t;
  }

  tensors(): TensorInfo[] {
    return this.names().map((n) => this.byName.get(n)!);
  }

  /** Reads one tensor converted to float32 (F32/F16/BF16/F64/integers/BOOL). */
  readTensor(name: string): Float32Array {
    const t = this.info(name);
    const bpe = DTYPE_BYTES[t.dtype];
    const numel = (t.end - t.begin) / bpe;
    const out = new Float32Array(numel);
    if (t.dtype === 'F32') {
      // Straight into the output's bytes: no intermediate copy at all.
      this.readRange(t, t.begin, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      return out;
    }
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / bpe));
    this.chunk ??= new ArrayBuffer(CHUNK_BYTES);
    for (let i = 0; i < numel; i += perChunk) {
      const n = Math.min(perChunk, numel - i);
      const bytes = new Uint8Array(this.chunk, 0, n * bpe);
      this.readRange(t, t.begin + i * bpe, bytes);
      convertToF32(t.dtype, this.chunk, n, out, i);
    }
    return out;
  }

  /** Reads row `index` of a 2-D tensor converted to float32 (an embedding row, without the table). */
  readRow(name: string, index: number): Float32Array {
    const t = this.info(name);
    if (t.shape.length !== 2 || index < 0 || index >= t.shape[0]!) {
      throw new SafetensorsError(`${t.file}: row ${index} of tensor ${name} ${JSON.stringify(t.shape)} does not exist`);
    }
    const cols = t.shape[1]!, bpe = DTYPE_BYTES[t.dtype];
    const raw = new ArrayBuffer(cols * bpe);
    this.readRange(t, t.begin + index * cols * bpe, new Uint8Array(raw));
    const out = new Float32Array(cols);
    convertToF32(t.dtype, raw, cols, out, 0);
    return out;
  }

  /** Reads one tensor's raw little-endian bytes (for pass-through copies and quantizers). */
  readRaw(name: string): Uint8Array {
    const t = this.info(name);
    const out = new Uint8Array(t.end - t.begin);
    this.readRange(t, t.begin, out);
    return out;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    this.chunk = null;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = openRegularFileSync(file, headerOptions).fd;
      this.fds.set(file, fd);
    }
    return fd;
  }

  private readRange(t: TensorInfo, pos: number, into: Uint8Array): void {
    const fd = this.fd(t.file);
    let done = 0;
    while (done < into.length) {
      const n = fs.readSync(fd, into, done, Math.min(into.length - done, 1 << 30), pos + done);
      if (n === 0) {
        throw new SafetensorsError(`${t.file}: unexpected end of file reading tensor ${t.name} (file changed or truncated?)`);
      }
      done += n;
    }
  }
}

// ---- dtype conversion ------------------------------------------------------------------------

// float16 -> float32 by table: 65536 entries, built once on first use.
let F16_TABLE: Float32Array | null = null;
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  F16_TABLE = t;
  return t;
}

function convertToF32(dtype: SafetensorsDtype, buf: ArrayBuffer, n: number, out: Float32Array, at: number): void {
  switch (dtype) {
    case 'BF16': {
      // bf16 is the top half of a float32: shift the bits into place.
      const src = new Uint16Array(buf, 0, n);
      const dst = new Uint32Array(out.buffer, out.byteOffset + at * 4, n);
      for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
      return;
    }
    case 'F16': {
      const src = new Uint16Array(buf, 0, n);
      const tab = f16Table();
      for (let i = 0; i < n; i++) out[at + i] = tab[src[i]!]!;
      return;
    }
    case 'F32':
      out.set(new Float32Array(buf, 0, n), at);
      return;
    case 'F64': {
      const src = new Float64Array(buf, 0, n);
      for (let i = 0; i < n; i++) out[at + i] = src[i]!;
      return;
    }
    case 'I64': {
      const src = new BigInt64Array(buf, 0, n);
      for (let i = 0; i < n; i++) out[at + i] = Number(src[i]!);
      return;
    }
    case 'I32':
      out.set(new Int32Array(buf, 0, n), at);
      return;
    case 'I16':
      out.set(new Int16Array(buf, 0, n), at);
      return;
    case 'I8':
      out.set(new Int8Array(buf, 0, n), at);
      return;
    case 'U8':
    case 'BOOL':
      out.set(new Uint8Array(buf, 0, n), at);
      return;
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> bfloat16 bits, round to nearest even (as torch does); NaN stays a quiet NaN. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0]!;
}

export function f16BitsToF32(h: number): number {
  return f16Table()[h & 0xffff]!;
}

// ---- writing ---------------------------------------------------------------------------------

/**
 * Tensor payload for writeSafetensors. Numeric arrays (Float32Array, Float64Array, number[]) are
 * converted to the tensor's dtype. Typed arrays matching the storage (BigInt64Array for I64,
 * Int32Array for I32, ...) and a Uint16Array for F16/BF16 are taken as the raw values/bits;
 * a Uint8Array is taken as the exact raw bytes for any dtype.
 */
export type TensorData =
  | Float32Array | Float64Array | number[]
  | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint16Array | Uint8Array;

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** The values, or a thunk called once while writing, so big checkpoints stream. */
  data: TensorData | (() => TensorData);
}

function encodeTensor(t: TensorToWrite, file: string): Uint8Array {
  const data = typeof t.data === 'function' ? t.data() : t.data;
  const numel = t.shape.reduce((a, d) => a * d, 1);
  const nbytes = numel * DTYPE_BYTES[t.dtype];
  const bad = (why: string) => new SafetensorsError(`writing ${file}: tensor ${t.name} ${why}`);
  if (data instanceof Uint8Array && !(t.dtype === 'U8' || t.dtype === 'BOOL')) {
    if (data.length !== nbytes) throw bad(`has ${data.length} raw bytes, ${t.dtype}[${t.shape.join(', ')}] needs ${nbytes}`);
    return data;
  }
  if (data.length !== numel) throw bad(`has ${data.length} values, shape [${t.shape.join(', ')}] needs ${numel}`);
  if (data instanceof BigInt64Array && t.dtype !== 'I64') throw bad(`has BigInt64Array data for dtype ${t.dtype}`);
  const out = new ArrayBuffer(nbytes);
  switch (t.dtype) {
    case 'F32':
      new Float32Array(out).set(data as ArrayLike<number>);
      break;
    case 'F64':
      new Float64Array(out).set(data as ArrayLike<number>);
      break;
    case 'BF16':
    case 'F16': {
      const dst = new Uint16Array(out);
      if (data instanceof Uint16Array) dst.set(data);
      else {
        const conv = t.dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
        for (let i = 0; i < numel; i++) dst[i] = conv((data as ArrayLike<number>)[i]!);
      }
      break;
    }
    case 'I64': {
      const dst = new BigInt64Array(out);
      if (data instanceof BigInt64Array) dst.set(data);
      else for (let i = 0; i < numel; i++) dst[i] = BigInt(Math.trunc((data as ArrayLike<number>)[i]!));
      break;
    }
    case 'I32':
      new Int32Array(out).set(data as ArrayLike<number>);
      break;
    case 'I16':
      new Int16Array(out).set(data as ArrayLike<number>);
      break;
    case 'I8':
      new Int8Array(out).set(data as ArrayLike<number>);
      break;
    case 'U8':
    case 'BOOL':
      new Uint8Array(out).set(data as ArrayLike<number>);
      break;
  }
  return new Uint8Array(out);
}

/** A stretch of zero bytes in the data section, listed as a U8 tensor so the file has no holes. */
const PADDING_PREFIX = '__padding__.';

/**
 * Builds the header bytes (length prefix + JSON padded with spaces to a multiple of 8, or of
 * `align`) and the data section's layout: the tensors in order, with `align`, padding entries
 * before any tensor that would not start at a multiple of it in the file.
 */
function buildHeader(tensors: readonly TensorToWrite[], metadata: Record<string, string> | undefined, align: number | null): { header: Buffer; layout: (TensorToWrite | number)[] } {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const layout: (TensorToWrite | number)[] = [];
  let off = 0;
  for (const t of tensors) {
    const gap = align ? (align - (off % align)) % align : 0;
    if (gap) {
      header[`${PADDING_PREFIX}${layout.length}`] = { dtype: 'U8', shape: [gap], data_offsets: [off, off + gap] };
      layout.push(gap);
      off += gap;
    }
    const n = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + n] };
    layout.push(t);
    off += n;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const to = align ?? 8; // the data section starts aligned too
  const pad = (to - ((8 + json.length) % to)) % to;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return { header: Buffer.concat([len, json]), layout };
}

/** Total data bytes the tensors will take (for index.json's metadata.total_size). */
export function tensorBytes(tensors: readonly Pick<TensorToWrite, 'dtype' | 'shape'>[]): number {
  return tensors.reduce((a, t) => a + t.shape.reduce((x, d) => x * d, 1) * DTYPE_BYTES[t.dtype], 0);
}

/**
 * Writes a .safetensors file atomically (tmp file + rename). Tensors are sorted by name; each
 * tensor's data is produced, encoded and written one at a time. With `align` (a multiple of 8),
 * every tensor starts at a multiple of it in the file (zero padding entries fill the gaps), so
 * another reader can map each tensor in place (ONNX Runtime does at 64 KiB on every system).
 */
export function writeSafetensors(file: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>, opts: { align?: number } = {}): void {
  const align = opts.align ?? null;
  if (align !== null && !(Number.isInteger(align) && align > 0 && align % 8 === 0)) throw new SafetensorsError(`writing ${file}: alignment ${align} is not a positive multiple of 8`);
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new SafetensorsError(`writing ${file}: duplicate tensor name ${t.name}`);
    if (t.name === '__metadata__' || t.name === '' || t.name.startsWith(PADDING_PREFIX)) throw new SafetensorsError(`writing ${file}: invalid tensor name ${JSON.stringify(t.name)}`);
    seen.add(t.name);
    if (!isKnownDtype(t.dtype)) throw new SafetensorsError(`writing ${file}: tensor ${t.name} has unknown dtype ${t.dtype}`);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`writing ${file}: tensor ${t.name} has a bad shape [${t.shape.join(', ')}]`);
    }
  }
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`writing ${file}: __metadata__.${k} must be a string`);
    }
  }
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const fd = fs.openSync(tmp, 'w');
  try {
    const { header, layout } = buildHeader(sorted, metadata, align);
    writeAll(fd, header);
    for (const t of layout) writeAll(fd, typeof t === 'number' ? new Uint8Array(t) : encodeTensor(t, file));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

/**
 * Writes a sharded checkpoint: one file per group plus `<base>.safetensors.index.json`
 * (HF names: model-00001-of-00002.safetensors). Returns the shard file names.
 */
export function writeShardedSafetensors(
  dir: string,
  shards: readonly (readonly TensorToWrite[])[],
  opts: { base?: string; metadata?: Record<string, string> } = {},
): string[] {
  const base = opts.base ?? 'model';
  const n = shards.length;
  const names: string[] = [];
  const weightMap: Record<string, string> = {};
  shards.forEach((group, i) => {
    const name = `${base}-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    names.push(name);
    for (const t of group) weightMap[t.name] = name;
  });
  const total = shards.reduce((a, g) => a + tensorBytes(g), 0);
  shards.forEach((group, i) => writeSafetensors(path.join(dir, names[i]!), group, opts.metadata));
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  writeFileAtomic(
    path.join(dir, `${base}.safetensors.index.json`),
    JSON.stringify({ metadata: { total_size: total }, weight_map: sortedMap }, null, 2) + '\n',
  );
  return names;
}

/** Small text files (JSON configs) written atomically. */
export function writeFileAtomic(file: string, text: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
