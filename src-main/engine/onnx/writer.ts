// Serialises a builder Graph to an ONNX ModelProto (IR 10, opset 21 + com.microsoft 1).
// Initializers go inline, or to an external data file when large (protobuf caps a message at
// 2 GB, and big weights should be mapped, not copied). Output is deterministic: same graph, same bytes.
// The graph is first lowered for ONNX Runtime (lower.ts).

import { closeSync, mkdirSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ONNX_DTYPE, type Shape } from '../graph/dtype.js';
import type { AttrValue, ConstantData, Graph, Tensor } from '../graph/graph.js';
import { lowerForOrt } from './lower.js';
import { ATTR_TYPE, ModelProto } from './proto.js';

export const OPSET = 21;
export const IR_VERSION = 10;

export interface WriteOptions {
  /** Initializers of at least this many bytes go to the external data file (default 1 MiB). */
  externalThreshold?: number;
  /** File-backed initializers' files by absolute path -> the path of a link to them inside the model folder. */
  fileLinks?: ReadonlyMap<string, string>;
}

/** What to hand to an InferenceSession: a file path, or bytes plus the external data they name. */
export interface SerializedModel {
  bytes: Uint8Array;
  /** External data files the model references, relative to the model's folder. */
  externalData: { path: string; data: Uint8Array }[];
}

function valueInfo(t: Tensor) {
  const dim = (d: Shape[number]) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });
  return { name: t.name, type: { tensorType: { elemType: ONNX_DTYPE[t.dtype], shape: { dim: t.shape.map(dim) } } } };
}

function constantTensor(c: ConstantData, name = '') {
  return { name, dims: [...c.shape], dataType: ONNX_DTYPE[c.dtype], rawData: c.bytes };
}

function attribute(name: string, a: AttrValue) {
  switch (a.type) {
    case 'int': return { name, type: ATTR_TYPE.int, i: a.value };
    case 'float': return { name, type: ATTR_TYPE.float, f: a.value };
    case 'ints': return { name, type: ATTR_TYPE.ints, ints: [...a.value] };
    case 'floats': return { name, type: ATTR_TYPE.floats, floats: [...a.value] };
    case 'string': return { name, type: ATTR_TYPE.string, s: new TextEncoder().encode(a.value) };
    case 'tensor': return { name, type: ATTR_TYPE.tensor, t: constantTensor(a.value) };
  }
}

/**
 * Builds the ModelProto. `placeExternal(name, bytes)` decides where a large inline initializer
 * goes and returns its (location, offset) in an external file, or null to keep it inline.
 */
function buildModel(
  built: Graph,
  placeExternal: (bytes: Uint8Array) => { location: string; offset: number } | null,
  modelDir: string | null,
  fileLinks?: ReadonlyMap<string, string>,
) {
  const g = lowerForOrt(built);
  const initializer = [...g.initializers.values()].map(({ tensor, data }) => {
    const base = { name: tensor.name, dims: [...(tensor.shape as number[])], dataType: ONNX_DTYPE[tensor.dtype] };
    if (data.kind === 'file' && modelDir) {
      const location = relative(modelDir, fileLinks?.get(resolve(data.path)) ?? resolve(data.path));
      if (location.startsWith('..') || isAbsolute(location)) {
        throw new Error(`initializer ${tensor.name}: ${data.path} must be inside the model folder ${modelDir} (ONNX Runtime refuses paths outside it)`);
      }
      return { ...base, dataLocation: 1, externalData: externalEntries(location, data.offset, data.length) };
    }
    // A lazy or file-backed weight is read here (in memory: into the blob), and not kept by the writer.
    const raw = data.kind === 'lazy' ? checkedRead(tensor.name, data) : data.kind === 'file' ? readSlice(data) : data.bytes;
    const ext = placeExternal(raw);
    if (!ext) return { ...base, rawData: raw };
    return { ...base, dataLocation: 1, externalData: externalEntries(ext.location, ext.offset, raw.byteLength) };
  });

  const node = g.nodes.map((n) => ({
    name: n.name,
    opType: n.op,
    domain: n.domain,
    input: n.inputs.map((t) => (t ? t.name : '')),
    output: n.outputs.map((t) => t.name),
    attribute: Object.keys(n.attrs).sort().map((k) => attribute(k, n.attrs[k]!)),
  }));

  return ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'finch',
    producerVersion: '0.1',
    opsetImport: [{ domain: '', version: OPSET }, { domain: 'com.microsoft', version: 1 }],
    graph: {
      name: g.name,
      node,
      initializer,
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  });
}

function readSlice(f: { path: string; offset: number; length: number }): Uint8Array {
  const out = new Uint8Array(f.length);
  const fd = openSync(f.path, 'r');
  try {
    for (let done = 0; done < f.length;) {
      const n = readSync(fd, out, done, Math.min(f.length - done, 1 << 30), f.offset + done);
      if (n === 0) throw new Error(`${f.path}: ends before byte ${f.offset + f.length} (file changed or truncated?)`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function checkedRead(name: string, lazy: { length: number; read: () => Uint8Array }): Uint8Array {
  const b = lazy.read();
  if (b.byteLength !== lazy.length) throw new Error(`initializer ${name}: its source gave ${b.byteLength} bytes, ${lazy.length} expected`);
  return b;
}

const MAP_ALIGN = 64 * 1024;

/** writeSync may write less than asked (and at most 2 GiB at once): loop until all bytes are at `pos`. */
function writeAllAt(fd: number, bytes: Uint8Array, pos: number): void {
  for (let done = 0; done < bytes.byteLength;) {
    done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), pos + done);
  }
}

const externalEntries = (location: string, offset: number, length: number) => [
  { key: 'location', value: location },
  { key: 'offset', value: String(offset) },
  { key: 'length', value: String(length) },
];

/** Serialises in memory. Large initializers go to one external blob named `<name>.data`. */
export function serializeModel(g: Graph, opts: WriteOptions = {}): SerializedModel {
  const threshold = opts.externalThreshold ?? 1 << 20;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const location = `${g.name}.onnx.data`;
  const msg = buildModel(g, (bytes) => {
    if (bytes.byteLength < threshold) return null;
    const pad = (64 - (size % 64)) % 64; // align for mapping
    if (pad) { chunks.push(new Uint8Array(pad)); size += pad; }
    const offset = size;
    chunks.push(bytes);
    size += bytes.byteLength;
    return { location, offset };
  }, null);
  const bytes = ModelProto.encode(msg).finish();
  if (size === 0) return { bytes, externalData: [] };
  const data = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { data.set(c, at); at += c.byteLength; }
  return { bytes, externalData: [{ path: location, data }] };
}

/**
 * Writes `<dir>/<name>.onnx` (+ `<name>.onnx.data`) atomically (temporary files, then rename) and
 * returns the model path. File-backed initializers must already live inside `dir`.
 */
export function writeModelFile(g: Graph, dir: string, opts: WriteOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const threshold = opts.externalThreshold ?? 1 << 20;
  const modelPath = join(dir, `${g.name}.onnx`);
  const dataName = `${g.name}.onnx.data`;
  const dataTmp = join(dir, `${dataName}.tmp-${process.pid}`);
  let fd = -1;
  let size = 0;
  try {
    const msg = buildModel(g, (bytes) => {
      if (bytes.byteLength < threshold) return null;
      if (fd < 0) fd = openSync(dataTmp, 'w');
      // ONNX Runtime maps external data into memory (no copy) only at offsets aligned to the
      // system's allocation granularity: 4 KiB pages on Linux and macOS, 64 KiB on Windows.
      const pad = (MAP_ALIGN - (size % MAP_ALIGN)) % MAP_ALIGN;
      size += pad; // a hole: the next positional write extends the file
      const offset = size;
      writeAllAt(fd, bytes, offset);
      size += bytes.byteLength;
      return { location: dataName, offset };
    }, resolve(dir), opts.fileLinks);
    const bytes = ModelProto.encode(msg).finish();
    if (fd >= 0) { closeSync(fd); fd = -1; renameSync(dataTmp, join(dir, dataName)); }
    const tmp = `${modelPath}.tmp-${process.pid}`;
    const mfd = openSync(tmp, 'w');
    writeSync(mfd, bytes);
    closeSync(mfd);
    renameSync(tmp, modelPath);
    return modelPath;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

