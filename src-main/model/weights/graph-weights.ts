// One graph's view of the frozen weights: the initializers it holds and the products it computes
// with them, created on first use. The architecture (model/llama.ts) asks for products, lookups and
// vectors by Hugging Face name (the Weights interface); how they are stored is decided here:
// - float32, or float16 with the product in float16 (DeviceOptions.computeDtype);
// - 4-bit blocks (QLoRA): one uint4 [N, K] initializer that a training graph's forward and backward
//   both dequantize (onnx/lower.ts), or ORT's MatMulNBits layout for generation graphs, which the
//   CPU provider repacks once for fast decoding; from JS memory or referenced in the 4-bit cache file;
// - the checkpoint's own bytes referenced in place and cast in the graph (streamed weights);
// - split into pieces under the device's largest buffer (DeviceOptions.maxWeightBytes);
// - or, for full-parameter training, graph inputs.
// Initializer names are deterministic, "<HF name>[.r<i>|.c<i>][.float16|.bfloat16|.int4|.q4|.scales]"
// (the memory estimate and the op tests read them).

import { type Graph, type InitializerData, Tensor } from '../../engine/graph/graph.js';
import { dequantizeNBits } from '../../engine/graph/nbits.js';
import * as F from '../../engine/graph/ops.js';
import { int4BlockPadded, int4Blocks, int4Columns, int4FileRows, int4Rows } from '../quant.js';
import { f32ToF16Bits } from '../../util/float16.js';
import type { FrozenWeights, RawWeightSlice } from './frozen-weights.js';
import { piecesUnder } from './pieces.js';

/** The dtype frozen weights are stored and multiplied in on the device (DeviceOptions). */
export type ComputeDtype = 'float32' | 'float16';

/**
 * A piece of an [out, in] weight: output rows (axis 0) or input columns (axis 1) `sizes[index]`
 * wide, starting at the sum of the sizes before it. Chunked MLPs and vocabulary-chunked heads use
 * row pieces (contiguous in memory: views, no copy) and column pieces (copied once at build).
 */
export interface WeightPart {
  axis: 0 | 1;
  sizes: readonly number[];
  index: number;
}

/** What the architecture asks of its weights, by Hugging Face name. */
export interface Weights {
  /**
   * y = x @ W^T (+ bias) for an HF [out, in] weight, or for a piece of it.
   * x: [rows, in] (or [rows, piece] for a column piece) -> [rows, out] (or [rows, piece]), float32.
   */
  linear(x: Tensor, name: string, shape: readonly [out: number, inp: number], bias: string | null, part?: WeightPart | null): Tensor;
  /** Rows of a [V, D] table for ids [B, T] int64: [B, T, D] float32. */
  embedding(ids: Tensor, name: string, shape: readonly [V: number, D: number]): Tensor;
  /** A float32 vector (a norm weight, a bias). */
  vector(name: string, size: number): Tensor;
  /**
   * A frozen HF [out, in] weight (or a row piece of it) used both ways with one copy of it: the
   * fused loss (engine/nn/layers.ts fusedHeadCrossEntropy) multiplies by it in both orientations
   * and reads rows of it. A 4-bit weight is dequantized once, after `after`.
   */
  bothWays(name: string, shape: readonly [out: number, inp: number], part: WeightPart | null, after: Tensor): WeightBothWays;
}

/** One frozen weight W [out, in] (or a row piece), float32 in and out whatever the compute dtype. */
export interface WeightBothWays {
  /** x [rows, in] -> x @ W^T [rows, out] */
  forward(x: Tensor): Tensor;
  /** dy [rows, out] -> dy @ W [rows, in] */
  backward(dy: Tensor): Tensor;
  /** ids int32 [n] -> W[ids] [n, in] */
  rows(ids: Tensor): Tensor;
}

/** How frozen weights are stored for the device a graph runs on. */
export interface DeviceOptions {
  /**
   * float16: frozen matrices (projections, embedding, lm_head, 4-bit scales) are float16
   * initializers and each frozen product runs in float16: its input is cast down and its output
   * cast back up. Norms, biases, RoPE, softmax, the loss, LoRA and everything the optimizer sees
   * stay float32 (as mixed-precision peers keep norms and softmax in float32).
   */
  computeDtype?: ComputeDtype;
  /**
   * The largest buffer one frozen weight may occupy on the device (a WebGPU adapter's
   * maxStorageBufferBindingSize, or maxBufferSize if smaller). Larger weights are split: a
   * projection or lm_head by output rows (outputs concatenated), the embedding table by columns
   * (gathers concatenated). Infinity = never split.
   */
  maxWeightBytes?: number;
  /**
   * Gather embedding rows from a 16-bit table as it sits in the checkpoint (streamed weights) and
   * cast only the rows: ORT keeps the table mapped instead of folding a float32 copy of it at load.
   * ORT's CPU provider has the 16-bit Gather; GPU providers may not (no bfloat16): CPU only.
   */
  gatherRawRows?: boolean;
  /**
   * 4-bit products (MatMulNBits, generation graphs) with int8 activations: ORT's accuracy level 4
   * quantizes each input row to 8 bits per block and multiplies with integer SIMD, instead of
   * expanding every 4-bit block to float32 (level 0, exact). Faster, not exact (docs/perf.md).
   */
  int8Activations?: boolean;
}

export interface GraphWeightsOptions extends DeviceOptions {
  /** Every weight becomes a graph input (full-parameter training): float32 and whole. */
  trainable?: boolean;
  /**
   * 4-bit weights as one uint4 [N, K] initializer that the forward and the backward both
   * dequantize (training graphs); otherwise ORT's MatMulNBits layout (generation graphs).
   */
  singleStorage?: boolean;
}

const bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** float32 values as float16 bytes (round to nearest even). */
function halfBytes(a: Float32Array): Uint8Array {
  const h = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) h[i] = f32ToF16Bits(a[i]!);
  return new Uint8Array(h.buffer);
}

const partStart = (p: WeightPart): number => p.sizes.slice(0, p.index).reduce((a, b) => a + b, 0);
const partName = (p: WeightPart | null): string => (p ? `.${p.axis ? 'c' : 'r'}${p.index}` : '');

/** The frozen weights as one graph holds them: initializers (or inputs) created on first use. */
export class GraphWeights implements Weights {
  private readonly cache = new Map<string, Tensor | F.NBitsWeight | Tensor[]>();
  /** Base weights as graph inputs, in first-use order (full-parameter training). */
  readonly inputs = new Map<string, Tensor>();
  /** The dtype of frozen matrices and their products (DeviceOptions.computeDtype). */
  private readonly dtype: ComputeDtype;
  private readonly maxWeightBytes: number;
  private readonly trainable: boolean;
  private readonly singleStorage: boolean;
  private readonly gatherRawRows: boolean;
  private readonly int8Activations: boolean;

  constructor(private readonly g: Graph, private readonly w: FrozenWeights, o: GraphWeightsOptions = {}) {
    this.dtype = o.computeDtype ?? 'float32';
    this.maxWeightBytes = o.maxWeightBytes ?? Infinity;
    this.trainable = o.trainable ?? false;
    this.singleStorage = o.singleStorage ?? false;
    this.gatherRawRows = o.gatherRawRows ?? false;
    this.int8Activations = o.int8Activations ?? false;
    if (this.trainable && (this.dtype !== 'float32' || this.maxWeightBytes !== Infinity)) {
      throw new Error('full-parameter training (trainBase) keeps its weights float32 and whole: computeDtype and maxWeightBytes apply to frozen weights only');
    }
  }

  /** Host float32 values in the compute dtype's bytes. */
  private stored(a: Float32Array): Uint8Array {
    return this.dtype === 'float16' ? halfBytes(a) : bytes(a);
  }

  /** Bytes per element of a frozen float matrix, and of a dequantized 4-bit one. */
  private get elementBytes(): number {
    return this.dtype === 'float16' ? 2 : 4;
  }

  vector(name: string, size: number): Tensor {
    return this.tensor(name, [size], 'float32');
  }

  /** A whole frozen matrix (projection, embedding, lm_head) in the compute dtype. */
  private matrix(name: string, shape: number[]): Tensor {
    return this.tensor(name, shape, this.dtype);
  }

  private tensor(name: string, shape: number[], dtype: ComputeDtype): Tensor {
    const key = dtype === 'float32' ? name : `${name}#${dtype}`;
    const hit = this.cache.get(key);
    if (hit) return hit as Tensor;
    let t: Tensor;
    if (this.trainable) {
      t = this.g.input(name, 'float32', shape);
      this.inputs.set(name, t);
    } else {
      const raw = this.w.rawSlice(name);
      if (raw) {
        // The checkpoint's own bytes, cast in the graph (folded by ORT at load).
        t = F.cast(this.rawInitializer(name, shape, raw), dtype);
      } else {
        const iname = dtype === 'float32' ? name : `${name}.${dtype}`;
        const n = shape.reduce((a, d) => a * d, 1);
        const conv = dtype === 'float16' ? halfBytes : bytes;
        t = this.g.initializer(iname, dtype, shape, this.fromFloats(name, n * (dtype === 'float16' ? 2 : 4), conv));
      }
    }
    this.cache.set(key, t);
    return t;
  }

  /**
   * Initializer bytes made from a frozen tensor's float32 values: read from the checkpoint when the
   * graph is serialized if the weights stream (no JS copy kept), else made now.
   */
  private fromFloats(name: string, length: number, make: (full: Float32Array) => Uint8Array): InitializerData {
    return this.w.streamFloats ? { kind: 'lazy', length, read: () => make(this.w.read(name)) } : { kind: 'inline', bytes: make(this.w.f(name)) };
  }

  /** The checkpoint's bytes of a tensor as an initializer in its own dtype (one per graph). */
  private rawInitializer(name: string, shape: number[], raw: RawWeightSlice): Tensor {
    const iname = raw.dtype === 'float32' ? name : `${name}.${raw.dtype}`;
    const { path, offset, length } = raw;
    return this.g.initializers.get(iname)?.tensor ?? this.g.initializer(iname, raw.dtype, shape, { kind: 'file', path, offset, length });
  }

  /** A piece of a frozen [out, inp] matrix in the compute dtype (its own initializer; a Split of the input when trainable). */
  private floatPart(name: string, out: number, inp: number, part: WeightPart): Tensor {
    if (this.trainable) {
      const key = `${name}/split${part.axis}:${part.sizes.join(',')}`;
      let pieces = this.cache.get(key) as Tensor[] | undefined;
      if (!pieces) {
        pieces = F.split(this.tensor(name, [out, inp], 'float32'), part.sizes, part.axis);
        this.cache.set(key, pieces);
      }
      return pieces[part.index]!;
    }
    const pname = `${name}${partName(part)}`;
    const hit = this.cache.get(pname);
    if (hit) return hit as Tensor;
    const start = partStart(part), size = part.sizes[part.index]!, dtype = this.dtype;
    const iname = dtype === 'float32' ? pname : `${pname}.${dtype}`;
    let t: Tensor;
    if (part.axis === 0) {
      // Row pieces are contiguous: a byte range of the checkpoint file when streaming.
      const raw = this.w.rawSlice(name);
      if (raw) {
        const eb = raw.dtype === 'float32' ? 4 : 2;
        const slice = { kind: 'file' as const, path: raw.path, offset: raw.offset + start * inp * eb, length: size * inp * eb };
        t = F.cast(this.g.initializer(raw.dtype === 'float32' ? pname : `${pname}.${raw.dtype}`, raw.dtype, [size, inp], slice), dtype);
      } else {
        const rows = (full: Float32Array) => this.stored(full.subarray(start * inp, (start + size) * inp));
        t = this.g.initializer(iname, dtype, [size, inp], this.fromFloats(name, size * inp * this.elementBytes, rows));
      }
    } else {
      const columns = (full: Float32Array) => {
        const cols = new Float32Array(out * size);
        for (let n = 0; n < out; n++) cols.set(full.subarray(n * inp + start, n * inp + start + size), n * size);
        return this.stored(cols);
      };
      t = this.g.initializer(iname, dtype, [out, size], this.fromFloats(name, out * size * this.elementBytes, columns));
    }
    this.cache.set(pname, t);
    return t;
  }

  /** The shared all-8 zero point of a [N, K/block] scale grid (uint4, symmetric quantization). */
  private zeroPoint(N: number, blocks: number): Tensor {
    const name = `int4.zero_point.${N}x${blocks}`;
    return this.g.initializers.get(name)?.tensor
      ?? this.g.initializer(name, 'uint4', [N, blocks], { kind: 'inline', bytes: new Uint8Array(Math.ceil((N * blocks) / 2)).fill(0x88) });
  }

  /** A projection's 4-bit blocks (or a piece's) as this graph stores them. */
  private nbits(name: string, out: number, inp: number, part: WeightPart | null = null): F.NBitsWeight {
    const key = `${name}${partName(part)}`;
    // Its own cache slot: a tied head quantizes the same tensor the embedding uses in float.
    const hit = this.cache.get(`${key}#int4`);
    if (hit) return hit as F.NBitsWeight;
    // Blocks in a file (whole weight or a row piece) are referenced in place: ORT maps them, JS
    // never holds them. They are float32 scales over whole blocks; other layouts are built in JS.
    const inFile = this.w.int4File(name);
    let nb: F.NBitsWeight;
    if (inFile && (!part || part.axis === 0) && this.dtype === 'float32' && inFile.K % inFile.blockSize === 0) {
      const f = part ? int4FileRows(inFile, partStart(part), part.sizes[part.index]!) : inFile;
      const { N, K, blockSize } = f, blocks = K / blockSize;
      const packed: InitializerData = { kind: 'file', path: f.path, offset: f.packedOffset, length: (N * K) / 2 };
      const scales: InitializerData = { kind: 'file', path: f.path, offset: f.scalesOffset, length: N * blocks * 4 };
      nb = this.singleStorage
        ? {
            packed: this.g.initializer(`${key}.int4`, 'uint4', [N, K], packed),
            scales: this.g.initializer(`${key}.scales`, 'float32', [N, blocks], scales),
            zeroPoints: this.zeroPoint(N, blocks),
            K, N, blockSize,
          }
        : {
            packed: this.g.initializer(`${key}.q4`, 'uint8', [N, blocks, blockSize / 2], packed),
            scales: this.g.initializer(`${key}.scales`, 'float32', [N * blocks], scales),
            zeroPoints: null,
            K, N, blockSize,
          };
      this.cache.set(`${key}#int4`, nb);
      return nb;
    }
    let q = this.w.q(name, out, inp);
    if (part) {
      const start = partStart(part), size = part.sizes[part.index]!;
      q = part.axis === 0 ? int4Rows(q, start, size) : int4Columns(q, start, size);
    }
    const N = q.N, K = q.K, blocks = int4Blocks(K, q.blockSize);
    nb = this.singleStorage
      ? {
          packed: this.g.initializer(`${key}.int4`, 'uint4', [N, K], { kind: 'inline', bytes: q.packed }),
          scales: this.g.initializer(`${key}.scales`, this.dtype, [N, blocks], { kind: 'inline', bytes: this.stored(q.scales) }),
          zeroPoints: this.zeroPoint(N, blocks),
          K, N, blockSize: q.blockSize,
        }
      : {
          packed: this.g.initializer(`${key}.q4`, 'uint8', [N, blocks, q.blockSize / 2], { kind: 'inline', bytes: int4BlockPadded(q) }),
          scales: this.g.initializer(`${key}.scales`, this.dtype, [N * blocks], { kind: 'inline', bytes: this.stored(q.scales) }),
          zeroPoints: null,
          K, N, blockSize: q.blockSize,
        };
    this.cache.set(`${key}#int4`, nb);
    return nb;
  }

  /** A whole weight over maxWeightBytes is computed in row pieces whose outputs are concatenated. */
  linear(x: Tensor, name: string, [out, inp]: readonly [number, number], bias: string | null, part: WeightPart | null = null): Tensor {
    let b = bias ? this.vector(bias, out) : null;
    if (b && part) {
      if (part.axis === 1) throw new Error(`${name}: a bias belongs to the sum of column pieces, not to one piece`);
      b = F.split(b, part.sizes, 0)[part.index]!;
    }
    const n = part?.axis === 0 ? part.sizes[part.index]! : out, k = part?.axis === 1 ? part.sizes[part.index]! : inp;
    if (n * k * this.elementBytes > this.maxWeightBytes) {
      if (part) throw new Error(`${name}: piece [${n}, ${k}] exceeds the device's buffer limit of ${this.maxWeightBytes} bytes (chunkPlan should have cut it smaller)`);
      const sizes = piecesUnder(out, inp * this.elementBytes, this.maxWeightBytes);
      const y = F.concat(sizes.map((_, index) => this.product(x, name, out, inp, null, { axis: 0, sizes, index })), 1); // [rows, out]
      return b ? F.add(y, b) : y;
    }
    return this.product(x, name, out, inp, b, part);
  }

  /** One frozen product: Gemm / MatMulNBits in the compute dtype, float32 in and out. */
  private product(x: Tensor, name: string, out: number, inp: number, b: Tensor | null, part: WeightPart | null): Tensor {
    const half = this.dtype !== 'float32';
    const xc = half ? F.cast(x, this.dtype) : x; // [rows, in]
    let y: Tensor;
    if (this.w.quantize && !this.trainable) {
      y = F.matMulNBits(xc, this.nbits(name, out, inp, part), this.int8Activations ? 4 : 0);
    } else {
      const w = part ? this.floatPart(name, out, inp, part) : this.matrix(name, [out, inp]);
      if (!half) return F.gemm(x, w, b, { transB: true }); // the bias rides in Gemm's C
      y = F.gemm(xc, w, null, { transB: true });
    }
    if (half) y = F.cast(y, 'float32');
    return b ? F.add(y, b) : y;
  }

  bothWays(name: string, [out, inp]: readonly [number, number], part: WeightPart | null, after: Tensor): WeightBothWays {
    if (this.trainable) throw new Error(`${name}: a weight that is trained gets its gradient from autodiff, not from bothWays`);
    if (part && part.axis !== 0) throw new Error(`${name}: bothWays takes whole weights or row pieces`);
    const n = part ? part.sizes[part.index]! : out;
    if (n * inp * this.elementBytes > this.maxWeightBytes) throw new Error(`${name}: [${n}, ${inp}] exceeds the device's buffer limit of ${this.maxWeightBytes} bytes (chunkPlan should have cut it smaller)`);
    let w: Tensor; // [n, inp] in the compute dtype
    if (this.w.quantize) {
      const nb = this.nbits(name, out, inp, part);
      w = dequantizeNBits(this.g, nb.packed, nb.scales, nb.zeroPoints, nb.K, nb.N, nb.blockSize, after);
    } else {
      w = part ? this.floatPart(name, out, inp, part) : this.matrix(name, [out, inp]);
    }
    const down = (x: Tensor) => (x.dtype === w.dtype ? x : F.cast(x, w.dtype));
    const up = (y: Tensor) => (y.dtype === 'float32' ? y : F.cast(y, 'float32'));
    return {
      forward: (x) => up(F.gemm(down(x), w, null, { transB: true })), // [rows, n]
      backward: (dy) => up(F.gemm(down(dy), w)), // [rows, inp]
      rows: (ids) => up(F.gather(w, ids)), // [ids, inp]
    };
  }

  /**
   * A table over maxWeightBytes is stored in column pieces gathered with the same ids and
   * concatenated: no index arithmetic, which on int64 ids would run on the CPU under WebGPU.
   */
  embedding(ids: Tensor, name: string, [V, D]: readonly [number, number]): Tensor {
    let e: Tensor;
    const raw = !this.trainable && this.gatherRawRows ? this.w.rawSlice(name) : null;
    if (raw && raw.dtype !== 'float32' && V * D * 2 <= this.maxWeightBytes) {
      e = F.gather(this.rawInitializer(name, [V, D], raw), ids);
    } else if (V * D * this.elementBytes <= this.maxWeightBytes) {
      e = F.gather(this.matrix(name, [V, D]), ids);
    } else {
      const sizes = piecesUnder(D, V * this.elementBytes, this.maxWeightBytes);
      e = F.concat(sizes.map((_, index) => F.gather(this.floatPart(name, V, D, { axis: 1, sizes, index }), ids)), -1);
    }
    return F.cast(e, 'float32'); // [B, T, D]
  }
}
