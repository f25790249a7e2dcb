// The GGUF container (version 3), the file format llama.cpp, Ollama and LM Studio load:
//
//   "GGUF" u32:version u64:tensor_count u64:kv_count
//   kv_count x  (string key, u32 value_type, value)          metadata
//   tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   zero padding to `general.alignment` (32 by default)
//   tensor data, each tensor starting at data_start + offset, offsets multiples of the alignment
//
// Strings are a u64 byte length + UTF-8 bytes; arrays a u32 item type + u64 count + items; all
// little-endian. `ne` lists dimensions innermost first: a row-major [rows, cols] weight is
// ne = [cols, rows], and its bytes are the same as in safetensors.
//
// The writer streams: the header and tensor table are computed from shapes alone, then each
// tensor's bytes are produced by a callback and written, so peak memory is one tensor. The file
// appears atomically (a temporary sibling renamed over the target after fsync); on any failure,
// disk full included, the temporary is removed and nothing is left at the target.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { GGML_TYPES, type GgmlType, ggmlTypeBytes } from './quantize.js';

export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

export class GgufError extends Error {
  override name = 'GgufError';
}

/** GGUF metadata value types (gguf_type). */
const VALUE_TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;

type Scalar = 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64';
/** A typed metadata value. */
export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32' | 'u64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: 'string'; value: readonly string[] }
  | { type: 'array'; itemType: 'u32' | 'i32' | 'f32'; value: ArrayLike<number> };

export const u32 = (value: number): GgufValue => ({ type: 'u32', value });
export const f32 = (value: number): GgufValue => ({ type: 'f32', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });
export const str = (value: string): GgufValue => ({ type: 'string', value });
export const strings = (value: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', value });
export const i32s = (value: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'i32', value });
export const f32s = (value: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'f32', value });

/** One tensor to write: `shape` in row-major (PyTorch) order; `data` returns its encoded bytes. */
export interface GgufTensor {
  name: string;
  shape: readonly number[];
  type: GgmlType;
  data: () => Uint8Array;
}

export interface GgufWriteOptions {
  /** Called after each tensor is written. */
  onTensor?: (index: number, total: number, name: string) => void;
}

/** Serialises metadata and the tensor table; grows its buffer as needed. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  u32(v: number) { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number) { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number) { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  u64(v: number) { this.reserve(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  bytes(b: Uint8Array) { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  result(): Uint8Array { return this.buf.subarray(0, this.length); }
}

function writeScalar(sink: ByteSink, type: Scalar, v: number | boolean | string): void {
  switch (type) {
    case 'u32': sink.u32(v as number); break;
    case 'i32': sink.i32(v as number); break;
    case 'f32': sink.f32(v as number); break;
    case 'u64': sink.u64(v as number); break;
    case 'bool': sink.u8(v ? 1 : 0); break;
    case 'string': sink.string(v as string); break;
  }
}

function writeValue(sink: ByteSink, key: string, v: GgufValue): void {
  sink.string(key);
  sink.u32(VALUE_TYPE[v.type]);
  if (v.type !== 'array') return writeScalar(sink, v.type, v.value);
  sink.u32(VALUE_TYPE[v.itemType]);
  sink.u64(v.value.length);
  for (let i = 0; i < v.value.length; i++) writeScalar(sink, v.itemType, v.value[i]!);
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

export function tensorByteSize(t: Pick<GgufTensor, 'name' | 'shape' | 'type'>): number {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const { blockSize, blockBytes } = GGML_TYPES[t.type];
  const rowLength = t.shape[t.shape.length - 1]!;
  if (rowLength % blockSize !== 0) {
    throw new GgufError(`${t.name}: rows of ${rowLength} values cannot be stored as ${t.type} (blocks of ${blockSize})`);
  }
  return ggmlTypeBytes(t.type, numel);
}

/** The header, metadata and tensor table, padded to the alignment; offsets of each tensor's data. */
function ggufHeader(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[]): { header: Uint8Array; offsets: number[]; dataBytes: number } {
  const sink = new ByteSink();
  sink.bytes(Buffer.from('GGUF', 'ascii'));
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(metadata.size);
  for (const [k, v] of metadata) writeValue(sink, k, v);
  const offsets: number[] = [];
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new GgufError(`tensor ${t.name} is listed twice`);
    seen.add(t.name);
    sink.string(t.name);
    sink.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) sink.u64(t.shape[d]!); // ne: innermost first
    sink.u32(GGML_TYPES[t.type].id);
    sink.u64(offset);
    offsets.push(offset);
    offset = align(offset + tensorByteSize(t), GGUF_ALIGNMENT);
  }
  while (sink.length % GGUF_ALIGNMENT !== 0) sink.u8(0);
  return { header: sink.result(), offsets, dataBytes: offset };
}

/** Writes a GGUF file at `file` atomically. Returns its size in bytes. */
export function writeGguf(file: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[], opts: GgufWriteOptions = {}): number {
  const out = path.resolve(file);
  const dir = path.dirname(out);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new GgufError(`cannot write ${out}: the folder ${dir} does not exist (create it first)`);
  }
  const { header, offsets, dataBytes } = ggufHeader(metadata, tensors);
  const total = header.length + dataBytes;
  checkFreeSpace(dir, total);
  const tmp = path.join(dir, `.${path.basename(out)}.tmp-${process.pid}-${Date.now()}`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    writeAll(fd, header, 0);
    const pad = new Uint8Array(GGUF_ALIGNMENT);
    tensors.forEach((t, i) => {
      const bytes = t.data();
      const expected = tensorByteSize(t);
      if (bytes.length !== expected) throw new GgufError(`${t.name}: encoded ${bytes.length} bytes, expected ${expected} for ${t.type} [${t.shape.join(', ')}]`);
      const at = header.length + offsets[i]!;
      writeAll(fd!, bytes, at);
      const end = at + bytes.length;
      const next = header.length + (i + 1 < tensors.length ? offsets[i + 1]! : dataBytes);
      if (next > end) writeAll(fd!, pad.subarray(0, next - end), end);
      opts.onTensor?.(i + 1, tensors.length, t.name);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, out);
    return total;
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOSPC') throw new GgufError(`cannot write ${out}: the disk is full (the file needs ${(total / 2 ** 20).toFixed(1)} MiB); nothing was written`);
    if (err.code === 'EACCES' || err.code === 'EROFS') throw new GgufError(`cannot write ${out}: ${err.message}`);
    throw e;
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
}

/** Fails before writing when the folder's file system cannot hold `bytes`. */
function checkFreeSpace(dir: string, bytes: number): void {
  let free: number;
  try {
    const st = fs.statfsSync(dir);
    free = st.bavail * st.bsize;
  } catch {
    return; // statfs unavailable: the write itself reports ENOSPC
  }
  if (free < bytes) {
    throw new GgufError(`not enough disk space in ${dir}: the GGUF file needs ${(bytes / 2 ** 20).toFixed(1)} MiB, ${(free / 2 ** 20).toFixed(1)} MiB is free`);
  }
}
