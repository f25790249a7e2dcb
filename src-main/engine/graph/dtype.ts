// Element types the graph builder knows, with their ONNX TensorProto.DataType codes.
// int4/uint4 live only in initializers: onnxruntime-node cannot feed or fetch them (docs/ort-notes.md).

export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16'
  | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool'
  | 'int4' | 'uint4';

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9,
  float16: 10, float64: 11, bfloat16: 16, uint4: 21, int4: 22,
};

/** Bits per element (4 for the packed 4-bit types). */
export const DTYPE_BITS: Record<DType, number> = {
  float32: 32, float64: 64, float16: 16, bfloat16: 16, int64: 64, int32: 32,
  int8: 8, uint8: 8, bool: 8, int4: 4, uint4: 4,
};

export const isFloat = (t: DType): boolean =>
  t === 'float32' || t === 'float64' || t === 'float16' || t === 'bfloat16';

/** A dimension: a known size, or a named symbol resolved at run time ("batch", "past+seq"). */
export type Dim = number | string;
export type Shape = readonly Dim[];

export const shapeToString = (s: Shape): string => `[${s.join(', ')}]`;

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') throw new Error(`numel of symbolic shape ${shapeToString(shape)}`);
    n *= d;
  }
  return n;
}

export const isStatic = (s: Shape): s is readonly number[] => s.every((d) => typeof d === 'number');
