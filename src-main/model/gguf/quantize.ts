// ggml tensor encodings Finch writes into GGUF files, in ggml's block layouts:
//
//   F32   4 bytes a value
//   F16   2 bytes a value (IEEE half, round to nearest even)
//   Q8_0  blocks of 32 values: f16 scale d, then 32 x int8 q;  x ≈ d * q,  d = absmax / 127
//   Q4_0  blocks of 32 values: f16 scale d, then 16 bytes;     x ≈ d * (q - 8), q in 0..15,
//         d = m / -8 where m is the value of largest magnitude (sign kept, so q = 0 reaches it
//         exactly); byte j holds value j in its low nibble and value j + 16 in its high nibble
//
// Rounding follows ggml's reference quantizers (roundf for Q8_0; truncation of x / d + 8.5 for
// Q4_0), so Finch's files match what llama.cpp's own quantizer would write for the same floats.

import { f32ToF16Bits } from '../../util/float16.js';

export type GgmlType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';

/** ggml_type ids and block geometry. */
export const GGML_TYPES: Record<GgmlType, { id: number; blockSize: number; blockBytes: number }> = {
  F32: { id: 0, blockSize: 1, blockBytes: 4 },
  F16: { id: 1, blockSize: 1, blockBytes: 2 },
  Q4_0: { id: 2, blockSize: 32, blockBytes: 18 },
  Q8_0: { id: 8, blockSize: 32, blockBytes: 34 },
};

export const ggmlTypeBytes = (type: GgmlType, numel: number): number => (numel / GGML_TYPES[type].blockSize) * GGML_TYPES[type].blockBytes;

const QK = 32;

/** C's roundf: halves away from zero (Math.round rounds them up). */
const roundAway = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));

export function encodeF32(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

export function encodeF16(x: Float32Array): Uint8Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]!);
  return new Uint8Array(out.buffer);
}

export function encodeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let j = 0; j < QK; j++) view.setInt8(b * 34 + 2 + j, roundAway(Math.fround(x[base + j]! * id)));
  }
  return out;
}

export function encodeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * QK;
    let amax = 0, max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(b * 18, f32ToF16Bits(d), true);
    for (let j = 0; j < QK / 2; j++) {
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[base + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[base + j + QK / 2]! * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

export function encodeTensor(type: GgmlType, x: Float32Array): Uint8Array {
  switch (type) {
    case 'F32': return encodeF32(x);
    case 'F16': return encodeF16(x);
    case 'Q8_0': return encodeQ8_0(x);
    case 'Q4_0': return encodeQ4_0(x);
  }
}
