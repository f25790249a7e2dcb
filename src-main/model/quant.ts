// 4-bit frozen weights for QLoRA.
//
// Representation (chosen from measurements, docs/ort-notes.md): symmetric blockwise int4 in the layout
// of com.microsoft MatMulNBits — the one 4-bit path in ONNX Runtime that keeps the memory saving
// (+45 MB vs +73 MB for a float32 4096x4096 weight) at float speed, on CPU and WebGPU alike. NF4
// (QLoRA's codebook) would need in-graph unpacking that ORT constant-folds back to float32 at load.
// Per block of `blockSize` input features of one output row: scale = absmax / 7, q = round(w / scale)
// + 8 in [1, 15], stored two per byte, low nibble first; zero point 8 (MatMulNBits' default).
// K need not be a multiple of the block size (Qwen2-style widths): the last block of each row is
// then shorter, as ONNX's blocked DequantizeLinear (ceil(K / block) scales per row) and
// MatMulNBits (its B padded to whole blocks, int4BlockPadded) both define it. K must be even so
// that every row starts on a byte.

import { closeSync, openSync, readSync } from 'node:fs';

export interface Int4Weight {
  /** Output features (rows of the HF [out, in] weight). */
  N: number;
  /** Input features. */
  K: number;
  blockSize: number;
  /** [N, K / 2] bytes: the row-major [N, K] nibbles (= MatMulNBits' [N, K / blockSize, blockSize / 2] when blocks are whole). */
  packed: Uint8Array;
  /** [N * ceil(K / blockSize)] float32. */
  scales: Float32Array;
}

export const DEFAULT_BLOCK = 32;

/** Blocks per row of a [N, K] weight (the last one short when K is not a multiple of blockSize). */
export const int4Blocks = (K: number, blockSize: number): number => Math.ceil(K / blockSize);

/** Where a weight's 4-bit blocks sit in a file (the quantized-weight cache): the Int4Weight bytes, unread. */
export interface Int4File {
  N: number;
  K: number;
  blockSize: number;
  path: string;
  /** Byte offset of `packed` ([N, K / 2] bytes) in the file. */
  packedOffset: number;
  /** Byte offset of `scales` ([N * ceil(K / blockSize)] float32) in the file. */
  scalesOffset: number;
}

/** Output rows [start, start + size) of a weight in a file: the same file, later offsets (rows are contiguous). */
export function int4FileRows(f: Int4File, start: number, size: number): Int4File {
  if (start < 0 || start + size > f.N) throw new Error(`int4 rows [${start}, ${start + size}) outside [0, ${f.N})`);
  return { ...f, N: size, packedOffset: f.packedOffset + (start * f.K) / 2, scalesOffset: f.scalesOffset + start * int4Blocks(f.K, f.blockSize) * 4 };
}

/** Reads a weight's blocks from its file. */
export function readInt4File(f: Int4File): Int4Weight {
  const packed = new Uint8Array((f.N * f.K) / 2), scales = new Float32Array(f.N * int4Blocks(f.K, f.blockSize));
  const fd = openSync(f.path, 'r');
  try {
    for (const [into, at] of [[packed, f.packedOffset], [new Uint8Array(scales.buffer), f.scalesOffset]] as const) {
      for (let done = 0; done < into.byteLength;) {
        const n = readSync(fd, into, done, into.byteLength - done, at + done);
        if (n === 0) throw new Error(`${f.path}: ends before byte ${at + into.byteLength} (4-bit cache entry changed or truncated?)`);
        done += n;
      }
    }
  } finally {
    closeSync(fd);
  }
  return { N: f.N, K: f.K, blockSize: f.blockSize, packed, scales };
}

/** Quantizes a row-major [N, K] float weight. K and blockSize must be even. */
export function quantizeInt4(w: Float32Array, N: number, K: number, blockSize = DEFAULT_BLOCK): Int4Weight {
  if (K % 2 !== 0 || blockSize % 2 !== 0) throw new Error(`int4 quantization: in_features ${K} and the block size ${blockSize} must be even`);
  if (w.length !== N * K) throw new Error(`int4 quantization: ${w.length} values for [${N}, ${K}]`);
  const blocks = int4Blocks(K, blockSize);
  const packed = new Uint8Array((N * K) / 2);
  const scales = new Float32Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const base = n * K + b * blockSize, width = Math.min(blockSize, K - b * blockSize);
      let amax = 0;
      for (let j = 0; j < width; j++) amax = Math.max(amax, Math.abs(w[base + j]!));
      const scale = amax / 7;
      scales[n * blocks + b] = scale;
      const inv = scale > 0 ? 1 / scale : 0;
      for (let j = 0; j < width; j += 2) {
        const lo = Math.min(15, Math.max(0, Math.round(w[base + j]! * inv) + 8));
        const hi = Math.min(15, Math.max(0, Math.round(w[base + j + 1]! * inv) + 8));
        packed[(base + j) >> 1] = lo | (hi << 4);
      }
    }
  }
  return { N, K, blockSize, packed, scales };
}

/** The float [N, K] weight the 4-bit one stands for (what MatMulNBits multiplies by). */
export function dequantizeInt4(q: Int4Weight): Float32Array {
  const { N, K, blockSize, packed, scales } = q;
  const out = new Float32Array(N * K);
  const blocks = int4Blocks(K, blockSize);
  for (let i = 0; i < N * K; i++) {
    const byte = packed[i >> 1]!;
    const v = (i & 1 ? byte >> 4 : byte & 15) - 8;
    const n = Math.floor(i / K), b = Math.floor((i % K) / blockSize);
    out[i] = v * scales[n * blocks + b]!;
  }
  return out;
}

/** Bytes a quantized [N, K] weight takes in the session (packed nibbles + scales of `scaleBytes`: float32, or 2 in float16). */
export const int4Bytes = (N: number, K: number, blockSize = DEFAULT_BLOCK, scaleBytes = 4): number => (N * K) / 2 + N * int4Blocks(K, blockSize) * scaleBytes;

/**
 * MatMulNBits' B input, uint8 [N, ceil(K / blockSize), blockSize / 2]: each row padded to whole
 * blocks with the zero point (value 0). The same bytes as `packed` when blocks are whole.
 */
export function int4BlockPadded(q: Int4Weight): Uint8Array {
  const { N, K, blockSize } = q, rowBytes = (int4Blocks(K, blockSize) * blockSize) / 2;
  if (rowBytes === K / 2) return q.packed;
  const out = new Uint8Array(N * rowBytes).fill(0x88);
  for (let n = 0; n < N; n++) out.set(q.packed.subarray((n * K) / 2, ((n + 1) * K) / 2), n * rowBytes);
  return out;
}

/** Output rows [start, start + size) of a quantized weight: views of the same bytes (rows are contiguous). */
export function int4Rows(q: Int4Weight, start: number, size: number): Int4Weight {
  const blocks = int4Blocks(q.K, q.blockSize);
  if (start < 0 || start + size > q.N) throw new Error(`int4 rows [${start}, ${start + size}) outside [0, ${q.N})`);
  return {
    N: size, K: q.K, blockSize: q.blockSize,
    packed: q.packed.subarray((start * q.K) / 2, ((start + size) * q.K) / 2),
    scales: q.scales.subarray(start * blocks, (start + size) * blocks),
  };
}

/**
 * Input columns [start, start + size) of a quantized weight, as a new [N, size] weight (a copy:
 * columns are strided). Both ends must fall on block boundaries (or the end on K), so the values
 * are unchanged.
 */
export function int4Columns(q: Int4Weight, start: number, size: number): Int4Weight {
  const { N, K, blockSize } = q;
  if (start % blockSize || (size % blockSize && start + size !== K) || start + size > K) {
    throw new Error(`int4 columns [${start}, ${start + size}) of K=${K} must start and end on a block boundary (block ${blockSize}) or end at K`);
  }
  const blocks = int4Blocks(K, blockSize), pb = int4Blocks(size, blockSize);
  const packed = new Uint8Array((N * size) / 2);
  const scales = new Float32Array(N * pb);
  for (let n = 0; n < N; n++) {
    packed.set(q.packed.subarray((n * K + start) / 2, (n * K + start + size) / 2), (n * size) / 2);
    scales.set(q.scales.subarray(n * blocks + start / blockSize, n * blocks + start / blockSize + pb), n * pb);
  }
  return { N, K: size, blockSize, packed, scales };
}
