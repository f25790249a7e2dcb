// The Llama-family decoder (Llama 2/3/3.x, Mistral, Qwen2, SmolLM) as a graph, built once per job
// shape. It reads like the architecture:
//
//   h   = embed(ids)
//   h   = h + attn(rmsnorm(h))        # per layer, RoPE on q/k, grouped-query attention
//   h   = h + mlp(rmsnorm(h))         # SiLU-gated: down(silu(gate(x)) * up(x))
//   out = lm_head(rmsnorm(h))
//
// The blocks (RMSNorm, rotary embedding, SiLU, LoRA linear, cross-entropy) are engine/nn's, which
// use only ops with kernels on both the CPU and WebGPU providers: no int64 arithmetic (targets are
// int32, shapes are constants), no SoftmaxCrossEntropyLoss or LogSoftmax. Activations are kept
// 2-D, [rows = B*T, D], so every projection is one GEMM; attention reshapes to [B, heads, T, hd]. Frozen projections are float initializers (Gemm, transB) or 4-bit
// MatMulNBits weights (QLoRA); LoRA matrices are graph inputs, so the trainer owns them.
//
// Memory (train/memory.ts models exactly this): a training graph stores each 4-bit weight once, as
// a uint4 [N, K] initializer that both the forward and the backward dequantize (onnx/writer.ts
// lowers it; ORT's own MatMulNBits would keep a second, repacked copy). Attention scores, MLP
// intermediates and logits are built in chunks (ChunkPlan) so that a checkpointed layer's backward
// holds one chunk at a time; embeddings can be gathered on the host (hostEmbeddings).

import type { DType, Dim } from '../engine/graph/dtype.js';
import { type Graph, type InitializerData, Tensor } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import * as nn from '../engine/nn/layers.js';
import { type LoraParam, type LoraSpec, type LoraTarget, loraParams, loraScale, modulePath, projectionShape } from './lora.js';
import { DEFAULT_BLOCK, type Int4File, type Int4Weight, int4BlockPadded, int4Blocks, int4Columns, int4FileRows, int4Rows, quantizeInt4, readInt4File } from './quant.js';
import type { ModelConfig } from './types.js';
import { f32ToF16Bits } from '../util/float16.js';

/** Where frozen weights come from: HF tensor name -> float32 data (streamed from safetensors). */
export type WeightSource = (name: string) => Float32Array;

/** A tensor's bytes in a checkpoint file. */
export interface RawWeightSlice {
  path: string;
  offset: number;
  length: number;
  dtype: 'float32' | 'float16' | 'bfloat16';
}

/** One row of a frozen tensor (an embedding row read from the checkpoint on demand). */
export type RowSource = (name: string, row: number) => Float32Array;

export interface ModelBuildOptions {
  config: ModelConfig;
  weights: WeightSource;
  /** Store frozen projections (and an untied lm_head) in 4 bits (QLoRA). */
  quantize?: boolean;
  blockSize?: number;
  lora?: LoraSpec | null;
}

/** Frozen weights, loaded (and quantized) once and shared by every graph built from them. */
export class FrozenWeights {
  private readonly float = new Map<string, Float32Array>();
  private readonly int4 = new Map<string, Int4Weight>();
  private readonly int4Files = new Map<string, Int4File>();

  /**
   * `rows` reads single embedding rows without loading the table (host-side embeddings for large
   * vocabularies); without it embedRows() loads the whole table once.
   */
  constructor(
    readonly cfg: ModelConfig,
    private readonly src: WeightSource,
    readonly quantize: boolean,
    readonly blockSize = DEFAULT_BLOCK,
    private readonly rows: RowSource | null = null,
  ) {}

  /** A float tensor by HF name (norms, biases, embeddings; projections when not quantized). */
  f(name: string): Float32Array {
    let w = this.float.get(name);
    if (!w) {
      w = this.src(name);
      this.float.set(name, w);
    }
    return w;
  }

  /**
   * Float initializers of the graphs built from these weights are read from the source when a
   * graph is written, not held here: a model written to disk (writeModelFile) then passes through
   * JS one tensor at a time, and no JS copy outlives the session that holds the weights.
   */
  streamFloats = false;

  /**
   * Where a tensor's raw bytes sit in its checkpoint file (float32/float16/bfloat16), when known.
   * Streamed graphs then reference those bytes directly and cast them to float32 in the graph:
   * ONNX Runtime folds the cast once at load, so no float32 copy is written or made in JS.
   */
  rawSlice: ((name: string) => RawWeightSlice | null) | null = null;

  /**
   * Gather embedding rows from a 16-bit table as it sits in the checkpoint and cast only the rows
   * (WeightScope.rows). ORT's CPU provider has the 16-bit Gather; GPU providers may not (no
   * bfloat16), so it is off unless the session runs on the CPU.
   */
  gatherRawRows = false;

  /** A float tensor read from the source without keeping it (each call reads again). */
  read(name: string): Float32Array {
    return this.float.get(name) ?? this.src(name);
  }

  /** Seeds a quantized projection (from the 4-bit cache, or a quantization done elsewhere). */
  provideInt4(name: string, w: Int4Weight): void {
    if (w.blockSize !== this.blockSize) throw new Error(`${name}: 4-bit weight has block size ${w.blockSize}, these weights use ${this.blockSize}`);
    this.int4Files.delete(name);
    this.int4.set(name, w);
  }

  /**
   * Points a quantized projection at its blocks in a file (the 4-bit cache): graphs reference the
   * file, which ONNX Runtime maps, and JS never holds the blocks.
   */
  provideInt4File(name: string, f: Int4File): void {
    if (f.blockSize !== this.blockSize) throw new Error(`${name}: 4-bit weight has block size ${f.blockSize}, these weights use ${this.blockSize}`);
    this.int4.delete(name);
    this.int4Files.set(name, f);
  }

  /** Where a quantized projection's blocks sit in a file, if they were provided that way. */
  int4File(name: string): Int4File | null {
    return this.int4Files.get(name) ?? null;
  }

  /** A projection weight [out, in] quantized to 4 bits (the float copy is dropped after quantizing). */
  q(name: string, out: number, inp: number): Int4Weight {
    let w = this.int4.get(name);
    if (!w) {
      const file = this.int4Files.get(name);
      if (file) return readInt4File(file); // read for the one graph that needs it in JS, not kept
      w = quantizeInt4(this.src(name), out, inp, this.blockSize);
      this.int4.set(name, w);
    }
    return w;
  }

  /** Embedding rows for token ids, [ids.length, D] (the host-side gather behind "inputs_embeds"). */
  embedRows(ids: ArrayLike<number | bigint>): Float32Array {
    const D = this.cfg.hiddenSize, name = 'model.embed_tokens.weight';
    const out = new Float32Array(ids.length * D);
    const table = this.rows ? null : this.f(name);
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (!(id >= 0 && id < this.cfg.vocabSize)) throw new Error(`embedRows: token id ${id} is outside the vocabulary (0..${this.cfg.vocabSize - 1})`);
      out.set(table ? table.subarray(id * D, (id + 1) * D) : this.rows!(name, id), i * D);
    }
    return out;
  }

  /** The lm_head weight name (tied models reuse the embedding). */
  get lmHeadName(): string {
    return this.cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  }
}

const bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** float32 values as float16 bytes (round to nearest even). */
function halfBytes(a: Float32Array): Uint8Array {
  const h = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) h[i] = f32ToF16Bits(a[i]!);
  return new Uint8Array(h.buffer);
}

/**
 * A piece of an [out, in] weight: output rows (axis 0) or input columns (axis 1) `sizes[index]`
 * wide, starting at the sum of the sizes before it. Chunked MLPs and vocabulary-chunked heads use
 * row pieces (contiguous in memory: views, no copy) and column pieces (copied once at build).
 */
interface Part {
  axis: 0 | 1;
  sizes: readonly number[];
  index: number;
}

const partStart = (p: Part): number => p.sizes.slice(0, p.index).reduce((a, b) => a + b, 0);
const partName = (p: Part | null): string => (p ? `.${p.axis ? 'c' : 'r'}${p.index}` : '');

/** The dtype frozen weights are stored and multiplied in on the device (see ScopeOptions). */
export type ComputeDtype = 'float32' | 'float16';

export interface ScopeOptions {
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
}

/** Sizes of pieces of `total` rows, `rowBytes` each, every piece at most `limit` bytes (near-equal). */
export function piecesUnder(total: number, rowBytes: number, limit: number): number[] {
  const perPiece = Math.floor(limit / rowBytes);
  if (perPiece < 1) throw new Error(`one row of ${rowBytes} bytes exceeds the device's buffer limit of ${limit} bytes`);
  return pieces(total, Math.ceil(total / perPiece), 1);
}

/**
 * Per-graph view of the frozen weights: initializers are created on first use. `singleStorage`
 * (training graphs) keeps each 4-bit weight as one uint4 [N, K] initializer that the forward and
 * the backward both dequantize; generation graphs use ORT's MatMulNBits layout, which the CPU EP
 * repacks once for fast decoding.
 */
class WeightScope {
  private readonly cache = new Map<string, Tensor | F.NBitsWeight | Tensor[]>();
  /** Base weights as graph inputs, in first-use order (full-parameter training). */
  readonly inputs = new Map<string, Tensor>();
  /** The dtype of frozen matrices and their products (ScopeOptions.computeDtype). */
  readonly dtype: ComputeDtype;
  readonly maxWeightBytes: number;
  constructor(readonly g: Graph, readonly w: FrozenWeights, readonly trainable = false, readonly singleStorage = false, o: ScopeOptions = {}) {
    this.dtype = o.computeDtype ?? 'float32';
    this.maxWeightBytes = o.maxWeightBytes ?? Infinity;
    if (trainable && (this.dtype !== 'float32' || this.maxWeightBytes !== Infinity)) {
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

  float(name: string, shape: number[]): Tensor {
    return this.tensor(name, shape, 'float32');
  }

  /** A frozen matrix (projection, embedding, lm_head) in the compute dtype. */
  matrix(name: string, shape: number[]): Tensor {
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
      const w = this.w;
      const raw = w.streamFloats ? w.rawSlice?.(name) : null;
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
  private floatPart(name: string, out: number, inp: number, part: Part): Tensor {
    if (this.trainable) {
      const key = `${name}/split${part.axis}:${part.sizes.join(',')}`;
      let pieces = this.cache.get(key) as Tensor[] | undefined;
      if (!pieces) {
        pieces = F.split(this.float(name, [out, inp]), part.sizes, part.axis);
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
      const raw = this.w.streamFloats ? this.w.rawSlice?.(name) : null;
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

  nbits(name: string, out: number, inp: number, part: Part | null = null): F.NBitsWeight {
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

  /**
   * y = x @ W^T (+ bias) for an HF [out, in] weight, float or 4-bit, or for a piece of it.
   * x: [rows, in] (or [rows, piece] for a column piece) -> [rows, out] (or [rows, piece]), float32.
   * A whole weight over maxWeightBytes is computed in row pieces whose outputs are concatenated.
   */
  linear(x: Tensor, name: string, out: number, inp: number, bias: string | null, part: Part | null = null): Tensor {
    let b = bias ? this.float(bias, [out]) : null;
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
  private product(x: Tensor, name: string, out: number, inp: number, b: Tensor | null, part: Part | null): Tensor {
    const half = this.dtype !== 'float32';
    const xc = half ? F.cast(x, this.dtype) : x; // [rows, in]
    let y: Tensor;
    if (this.w.quantize && !this.trainable) {
      y = F.matMulNBits(xc, this.nbits(name, out, inp, part));
    } else {
      const w = part ? this.floatPart(name, out, inp, part) : this.matrix(name, [out, inp]);
      if (!half) return F.gemm(x, w, b, { transB: true }); // the bias rides in Gemm's C
      y = F.gemm(xc, w, null, { transB: true });
    }
    if (half) y = F.cast(y, 'float32');
    return b ? F.add(y, b) : y;
  }

  /**
   * Embedding rows for ids [B, T] (int64): [B, T, D] float32. A table over maxWeightBytes is
   * stored in column pieces gathered with the same ids and concatenated: no index arithmetic,
   * which on int64 ids would run on the CPU under WebGPU.
   */
  embedding(ids: Tensor): Tensor {
    const name = 'model.embed_tokens.weight', V = this.w.cfg.vocabSize, D = this.w.cfg.hiddenSize;
    let e: Tensor;
    // On the CPU a 16-bit table is gathered as the checkpoint stores it and only the rows are cast:
    // ORT keeps the table mapped instead of folding a float32 copy of it at load (FrozenWeights.gatherRawRows).
    const raw = !this.trainable && this.w.streamFloats && this.w.gatherRawRows ? this.w.rawSlice?.(name) : null;
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

/** Graph inputs holding the LoRA matrices, by PEFT name. */
export type LoraInputs = Map<string, Tensor>;

// ---------------------------------------------------------------------------------------------
// Chunking: how a training graph splits its largest activations

/** Default size of one chunk of attention scores, MLP intermediates or logits (float32 bytes). */
export const CHUNK_BYTES = 32 * 2 ** 20;

export interface ChunkPlan {
  /** Query heads per attention chunk (numHeads = one chunk). */
  attentionHeads: number;
  /** Widths of the MLP intermediate pieces (one entry = unchunked). */
  mlpSizes: number[];
  /** Rows of the vocabulary per loss piece (one entry = one SoftmaxCrossEntropyLoss). */
  vocabSizes: number[];
}

/** `total` split into `n` near-equal pieces, each a multiple of `align` except the last. */
function pieces(total: number, n: number, align: number): number[] {
  const size = Math.ceil(total / n / align) * align;
  const out: number[] = [];
  for (let at = 0; at < total; at += size) out.push(Math.min(size, total - at));
  return out;
}

/**
 * The chunking a training graph of this shape uses (train/memory.ts prices exactly this). A tensor
 * at most twice `chunkBytes` stays whole; a larger one is cut into pieces of about `chunkBytes`.
 */
export function chunkPlan(cfg: ModelConfig, batch: number, seq: number, blockSize: number, chunkBytes = CHUNK_BYTES, maxWeightBytes = Infinity): ChunkPlan {
  const H = cfg.numHeads, G = H / cfg.numKvHeads, rows = batch * seq;
  const perHead = batch * seq * seq * 4; // one head's [B, T, T] scores
  let attentionHeads = H;
  if (perHead * H > 2 * chunkBytes) {
    // Head counts a chunk may have: a divisor of G (inside one KV group) or a multiple of G dividing H.
    const valid = Array.from({ length: H }, (_, i) => i + 1).filter((h) => (h <= G ? G % h === 0 : h % G === 0 && H % h === 0));
    attentionHeads = Math.max(1, ...valid.filter((h) => h * perHead <= chunkBytes));
  }
  // An MLP or vocabulary piece of width w holds [rows, w] activations and, 4-bit, a dequantized
  // [w, D] weight: the larger of the two sets its size.
  const span = Math.max(rows, cfg.hiddenSize) * 4;
  const mlpBytes = span * cfg.intermediateSize;
  let mlpSizes = mlpBytes > 2 * chunkBytes
    ? pieces(cfg.intermediateSize, Math.ceil(mlpBytes / chunkBytes), blockSize) // column pieces of down_proj stay block-aligned
    : [cfg.intermediateSize];
  const logitBytes = span * cfg.vocabSize;
  let vocabSizes = logitBytes > 2 * chunkBytes ? pieces(cfg.vocabSize, Math.ceil(logitBytes / chunkBytes), 1) : [cfg.vocabSize];
  // A device buffer limit: each piece's float32 weight ([w, D] rows of gate/up/lm_head, [D, w]
  // columns of down) must fit, dequantized 4-bit weights included.
  const rowBytes = cfg.hiddenSize * 4;
  for (let n = mlpSizes.length; Math.max(...mlpSizes) * rowBytes > maxWeightBytes; n++) {
    if (blockSize * rowBytes > maxWeightBytes) throw new Error(`chunkPlan: ${blockSize} rows of ${rowBytes} bytes exceed the device's buffer limit of ${maxWeightBytes} bytes`);
    mlpSizes = pieces(cfg.intermediateSize, n + 1, blockSize);
  }
  if (Math.max(...vocabSizes) * rowBytes > maxWeightBytes) vocabSizes = piecesUnder(cfg.vocabSize, rowBytes, maxWeightBytes);
  return { attentionHeads, mlpSizes, vocabSizes };
}

// ---------------------------------------------------------------------------------------------
// Layers

interface LayerContext {
  cfg: ModelConfig;
  ws: WeightScope;
  lora: { spec: LoraSpec; inputs: LoraInputs; scale: nn.LoraBranch['scale']; dropoutSeeds: Tensor | null } | null;
  /**
   * Batch and sequence dims of the activations: numbers for training; for generation B is a number
   * and T a symbol, so every reshape has a constant shape ([B, -1, ...]): shapes computed in the
   * graph (Shape, Concat on int64) would run on the CPU under WebGPU.
   */
  B: number;
  T: Dim;
  cos: Tensor; // [B, 1, T, hd]
  sin: Tensor; // [B, 1, T, hd]
  bias: Tensor; // [B, 1, T, S] additive attention mask
  /** Per-layer KV cache for generation: past [B, KV, P, hd] in, present out. */
  cache: { pastK: Tensor[]; pastV: Tensor[]; presentK: Tensor[]; presentV: Tensor[] } | null;
  moduleIndex: number;
  chunks: ChunkPlan;
  /**
   * A training graph whose sequence length T is symbolic (each batch pads only to its own longest
   * row): the longest T it accepts, and the "token_index" input [T] (0, 1, ..., T-1) that slices
   * the dropout tables. Absent for static graphs and generation.
   */
  dynamicSeq?: { maxSeq: number; tokenIndex: Tensor | null };
}

/** B*T when static, else a symbol (Reshape infers it). */
const rowsOf = (c: LayerContext): Dim => (typeof c.T === 'number' ? c.B * c.T : 'rows');

/** Reshape [rows, ...] activations to [B, T, ...tail] (a constant shape: T is inferred when symbolic). */
const toBT = (c: LayerContext, x: Tensor, tail: number[]): Tensor => F.reshape(x, [c.B, c.T, ...tail]);

/** The next dropout module index (one seed per LoRA module), or -1 when dropout is off. */
function dropoutIndex(c: LayerContext): number {
  return c.lora && c.lora.spec.dropout > 0 && c.lora.dropoutSeeds ? c.moduleIndex++ : -1;
}

/** A 32-bit integer hash (lowbias32, Chris Wellons) of an element index, as a float in [0, 1) on a 2^-24 grid. */
function uniformOf(i: number): number {
  return (uniformBits(i) >>> 8) / 2 ** 24;
}

/** lowbias32 of i: 32 well-mixed bits. */
function uniformBits(i: number): number {
  let h = i >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The uniforms of columns [col0, col0 + cols) for batch rows 0..B-1, positions 0..T-1: [B*T, cols], keyed by (row, position, column). */
function dropoutUniforms(B: number, T: number, cols: number, col0: number): Float32Array {
  const out = new Float32Array(B * T * cols);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const token = uniformBits(b * 0x10000 + t), r = b * T + t;
      for (let j = 0; j < cols; j++) out[r * cols + j] = uniformOf((token ^ Math.imul(col0 + j + 1, 0x9e3779b1)) >>> 0);
    }
  }
  return out;
}

/**
 * The dropout uniforms of x's columns [col0, col0 + cols) of a `full`-wide input: [rows, cols]. A
 * static graph holds them as an initializer [B*T, cols]; a graph with a symbolic T holds them for
 * the longest T ([B, maxSeq, cols]) and gathers the batch's T positions (token_index).
 */
function dropoutUniform(c: LayerContext, g: Graph, cols: number, col0: number, full: number): Tensor {
  const T = typeof c.T === 'number' ? c.T : c.dynamicSeq!.maxSeq;
  const piece = full === cols ? '' : `[${col0}:${col0 + cols}]`;
  const name = `dropout.uniform.${c.B}x${T}x${full}${piece}`;
  const shape = typeof c.T === 'number' ? [c.B * T, cols] : [c.B, T, cols];
  const table = g.initializers.get(name)?.tensor
    ?? g.initializer(name, 'float32', shape, { kind: 'inline', bytes: bytes(dropoutUniforms(c.B, T, cols, col0)) });
  if (typeof c.T === 'number') return table;
  return F.reshape(F.gather(table, c.dynamicSeq!.tokenIndex!, 1), [rowsOf(c), cols]); // [B, T, cols] -> [rows, cols]
}

/**
 * Dropout on LoRA inputs, reproducible and resumable, and the same mask on every execution
 * provider: each element has a fixed uniform u_i (hashed on the host, an initializer) and each
 * step a per-module shift c = frac(seed * golden ratio); the element is dropped where
 * frac(u_i + c) < p. Every op on the way is exact or correctly rounded in float32 (no sin, whose
 * GPU and CPU results differ), so CPU and WebGPU drop the same elements.
 * x may be columns [col0, col0 + cols) of a `width`-wide input: the mask is then that piece of the
 * whole input's mask, so chunking does not change it. An element's uniform is a hash of (batch row,
 * position, column), not of its flat index, so a row padded to another length drops the same
 * elements (static and symbolic-length graphs agree).
 */
function loraDropout(c: LayerContext, x: Tensor, idx: number, col0 = 0, width?: number): Tensor {
  const p = c.lora?.spec.dropout ?? 0;
  if (idx < 0 || p <= 0 || !c.lora?.dropoutSeeds) return x;
  const g = x.graph;
  const seed = F.slice(c.lora.dropoutSeeds, [idx], [idx + 1], [0]); // [1] float, fed per step
  const cols = x.shape[1] as number;
  const uniform = dropoutUniform(c, g, cols, col0, width ?? cols); // [rows, cols]
  const frac = (v: Tensor) => F.sub(v, F.cast(F.cast(v, 'int32'), 'float32')); // v >= 0: exact
  const shift = frac(F.mul(seed, 0.6180339887498949)); // [1] in [0, 1)
  const sum = F.add(uniform, shift); // [rows, cols] in [0, 2)
  const u = F.sub(sum, F.cast(F.greaterOrEqual(sum, 1), 'float32')); // frac, exact
  const keep = F.cast(F.greaterOrEqual(u, p), 'float32');
  return F.mul(x, F.mul(keep, 1 / (1 - p)));
}

/** The LoRA matrices of a module, or null when it carries no adapter. */
function loraOf(c: LayerContext, layer: number, target: LoraTarget): { a: Tensor; b: Tensor } | null {
  if (!c.lora || !c.lora.spec.targets.includes(target)) return null;
  const path = modulePath(layer, target);
  return {
    a: c.lora.inputs.get(`base_model.model.${path}.lora_A.weight`)!, // [r, in]
    b: c.lora.inputs.get(`base_model.model.${path}.lora_B.weight`)!, // [out, r]
  };
}

/** A projection with its optional LoRA branch (nn.loraLinear). x: [rows, in] -> [rows, out] */
function projection(c: LayerContext, x: Tensor, layer: number, target: LoraTarget, withBias: boolean): Tensor {
  const [out, inp] = projectionShape(c.cfg, target);
  const path = modulePath(layer, target);
  const y = c.ws.linear(x, `${path}.weight`, out, inp, withBias ? `${path}.bias` : null);
  const ab = loraOf(c, layer, target);
  if (!ab) return y;
  const xa = nn.loraDown(loraDropout(c, x, dropoutIndex(c)), ab.a); // [rows, r]
  return nn.loraLinear(y, xa, { b: ab.b, scale: c.lora!.scale }); // [rows, out]
}

/**
 * Causal attention of `hc` query heads against their `kvc` KV heads, without repeating K/V: each
 * KV head's query heads fold into rows. q [B, hc, T, hd], k/v [B, kvc, S, hd] -> [B, hc, T, hd]
 */
function attend(c: LayerContext, q: Tensor, k: Tensor, v: Tensor): Tensor {
  const hd = c.cfg.headDim, hc = q.shape[1] as number, kvc = k.shape[1] as number, gq = hc / kvc, S = k.shape[2]!;
  const rowsG = gq === 1 ? c.T : typeof c.T === 'number' ? gq * c.T : `${gq}*${c.T}`;
  const qg = F.reshape(q, [c.B, kvc, rowsG, hd]); // [B, kvc, gq*T, hd]
  const scores = F.mul(F.matmul(qg, F.transposeLast2(k)), 1 / Math.sqrt(hd)); // [B, kvc, gq*T, S]
  const probs = F.softmax(F.add(F.reshape(scores, [c.B, hc, c.T, S]), c.bias), -1); // [B, hc, T, S]
  const ctx = F.matmul(F.reshape(probs, [c.B, kvc, rowsG, S]), v); // [B, kvc, gq*T, hd]
  return F.reshape(ctx, [c.B, hc, c.T, hd]);
}

function attention(c: LayerContext, x: Tensor, layer: number): Tensor {
  const { cfg } = c;
  const H = cfg.numHeads, KV = cfg.numKvHeads, hd = cfg.headDim, G = H / KV;
  const bias = cfg.attentionBias;
  const q = F.transpose(toBT(c, projection(c, x, layer, 'q_proj', bias), [H, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
  let k = F.transpose(toBT(c, projection(c, x, layer, 'k_proj', bias), [KV, hd]), [0, 2, 1, 3]); // [B, KV, T, hd]
  let v = F.transpose(toBT(c, projection(c, x, layer, 'v_proj', bias), [KV, hd]), [0, 2, 1, 3]); // [B, KV, T, hd]
  const qr = nn.rotary(q, c.cos, c.sin);
  k = nn.rotary(k, c.cos, c.sin);
  if (c.cache) {
    k = F.concat([c.cache.pastK[layer]!, k], 2); // [B, KV, P+T, hd]
    v = F.concat([c.cache.pastV[layer]!, v], 2);
    c.cache.presentK.push(k);
    c.cache.presentV.push(v);
  }
  // Chunks of hc query heads: only one chunk's [B, hc, T, S] scores and probabilities are live.
  const hc = c.chunks.attentionHeads;
  let ctx: Tensor;
  if (hc >= H) {
    ctx = attend(c, qr, k, v);
  } else {
    const kvc = Math.max(1, hc / G); // KV heads per chunk
    const qs = F.split(qr, Array<number>(H / hc).fill(hc), 1);
    const ks = F.split(k, Array<number>(KV / kvc).fill(kvc), 1), vs = F.split(v, Array<number>(KV / kvc).fill(kvc), 1);
    const kvOf = (i: number) => Math.floor((i * hc) / G / kvc); // chunk i's KV piece
    // Each chunk is a (nested) checkpoint segment: its backward recomputes its own probabilities.
    ctx = F.concat(qs.map((qi, i) => x.graph.checkpoint(`attn.${i}`, () => attend(c, qi, ks[kvOf(i)]!, vs[kvOf(i)]!))), 1); // [B, H, T, hd]
  }
  const merged = F.reshape(F.transpose(ctx, [0, 2, 1, 3]), [rowsOf(c), H * hd]); // [rows, H*hd]
  return projection(c, merged, layer, 'o_proj', cfg.attentionOutputBias);
}

function mlp(c: LayerContext, x: Tensor, layer: number): Tensor {
  const bias = c.cfg.mlpBias;
  const sizes = c.chunks.mlpSizes;
  if (sizes.length === 1) {
    const gate = projection(c, x, layer, 'gate_proj', bias);
    const up = projection(c, x, layer, 'up_proj', bias);
    const act = F.mul(nn.silu(gate), up); // [rows, I]
    return projection(c, act, layer, 'down_proj', bias);
  }
  // Chunked over the intermediate features: piece j uses rows Ij of gate/up and columns Ij of
  // down, so only one piece's [rows, I/n] intermediates are live. Each piece is a (nested)
  // checkpoint segment that also applies its share of down's LoRA ((act_j @ A_j^T) @ B^T), so
  // nothing outside a piece reads its intermediates and its backward recomputes it once.
  // Gate/up LoRA: x @ A^T is shared by the pieces, B splits by rows.
  const D = c.cfg.hiddenSize, I = c.cfg.intermediateSize;
  const loraIn = (target: LoraTarget) => {
    const ab = loraOf(c, layer, target);
    if (!ab) return null;
    const xa = nn.loraDown(loraDropout(c, x, dropoutIndex(c)), ab.a); // [rows, r]
    return { xa, bs: F.split(ab.b, sizes, 0) }; // B pieces [I/n, r]
  };
  const gateL = loraIn('gate_proj'), upL = loraIn('up_proj');
  const downL = loraOf(c, layer, 'down_proj');
  const downDrop = downL ? dropoutIndex(c) : -1;
  const downAs = downL ? F.split(downL.a, sizes, 1) : null; // A pieces [r, I/n]
  const p = (target: LoraTarget) => `${modulePath(layer, target)}`;
  let out: Tensor | null = null;
  let col0 = 0;
  sizes.forEach((size, j) => {
    const first = col0;
    const y = x.graph.checkpoint(`mlp.${j}`, () => {
      const part: Part = { axis: 0, sizes, index: j };
      const half = (target: 'gate_proj' | 'up_proj', l: ReturnType<typeof loraIn>) => {
        const h = c.ws.linear(x, `${p(target)}.weight`, I, D, bias ? `${p(target)}.bias` : null, part); // [rows, I/n]
        return l ? nn.loraLinear(h, l.xa, { b: l.bs[j]!, scale: c.lora!.scale }) : h;
      };
      const gate = half('gate_proj', gateL), up = half('up_proj', upL);
      const act = F.mul(nn.silu(gate), up); // [rows, I/n]
      const base = c.ws.linear(act, `${p('down_proj')}.weight`, D, I, null, { axis: 1, sizes, index: j }); // [rows, D]
      if (!downL) return base;
      const xa = nn.loraDown(loraDropout(c, act, downDrop, first, I), downAs![j]!); // [rows, r]
      return nn.loraLinear(base, xa, { b: downL.b, scale: c.lora!.scale });
    });
    out = out ? F.add(out, y) : y;
    col0 += size;
  });
  return bias ? F.add(out!, c.ws.float(`${p('down_proj')}.bias`, [D])) : out!;
}

function decoderLayer(c: LayerContext, h: Tensor, layer: number): Tensor {
  const p = `model.layers.${layer}`;
  const D = c.cfg.hiddenSize, eps = c.cfg.rmsNormEps;
  const a = attention(c, nn.rmsNorm(h, c.ws.float(`${p}.input_layernorm.weight`, [D]), eps), layer);
  const h1 = F.add(h, a);
  const m = mlp(c, nn.rmsNorm(h1, c.ws.float(`${p}.post_attention_layernorm.weight`, [D]), eps), layer);
  return F.add(h1, m);
}

/** cos/sin tables [positions, hd] (HF layout: the half-frequencies repeated twice). */
export function ropeTables(invFreq: Float64Array, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length, hd = half * 2;
  const cos = new Float32Array(positions * hd), sin = new Float32Array(positions * hd);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i]!;
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(a);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(a);
    }
  }
  return { cos, sin };
}

interface ForwardInputs {
  /** Token ids [B, T] int64, or embeddings gathered on the host [rows, D]. */
  ids: Tensor;
  embeds: Tensor | null;
  positions: Tensor; // [B, T] int64
  bias: Tensor; // [B, 1, T, S] float
}

/**
 * Embedding through the final norm: hidden states [rows, D]. `checkpoint` = layers per segment:
 * 0 keeps every activation, 1 checkpoints each layer (L layer inputs kept), g > 1 nests layers in
 * segments of g (about L/g + g layer inputs kept, for one more forward pass).
 */
function trunk(c: LayerContext, inp: ForwardInputs, invFreq: Float64Array, maxPositions: number, checkpoint: number): Tensor {
  const { cfg, ws } = c;
  const g = inp.positions.graph;
  const D = cfg.hiddenSize, hd = cfg.headDim;
  const tables = ropeTables(invFreq, maxPositions);
  const cosT = g.initializer('rope.cos', 'float32', [maxPositions, hd], { kind: 'inline', bytes: bytes(tables.cos) });
  const sinT = g.initializer('rope.sin', 'float32', [maxPositions, hd], { kind: 'inline', bytes: bytes(tables.sin) });
  c.cos = F.unsqueeze(F.gather(cosT, inp.positions), [1]); // [B, 1, T, hd]
  c.sin = F.unsqueeze(F.gather(sinT, inp.positions), [1]);
  c.bias = inp.bias;
  // Gather [B, T] ids, then reshape the float rows: reshaping the int64 ids would run on the CPU.
  let h = inp.embeds ?? F.reshape(ws.embedding(inp.ids), [rowsOf(c), D]); // [rows, D]
  const layer = (l: number) => {
    const run = () => g.scope(`layers.${l}`, () => decoderLayer(c, h, l));
    h = checkpoint ? g.checkpoint(`layers.${l}`, run) : run();
  };
  for (let l = 0; l < cfg.numLayers; l += Math.max(1, checkpoint)) {
    const last = Math.min(cfg.numLayers, l + Math.max(1, checkpoint));
    if (checkpoint > 1) g.checkpoint(`group.${l}-${last - 1}`, () => { for (let k = l; k < last; k++) layer(k); });
    else layer(l);
  }
  return nn.rmsNorm(h, ws.float('model.norm.weight', [D]), cfg.rmsNormEps);
}

function lmHead(c: LayerContext, h: Tensor, part: Part | null = null): Tensor {
  const { cfg, ws } = c;
  return ws.linear(h, ws.w.lmHeadName, cfg.vocabSize, cfg.hiddenSize, null, part); // [rows, V] (or [rows, piece])
}

/**
 * Mean cross-entropy over targets != -100 with the vocabulary in pieces: each piece is a
 * checkpoint segment giving per-row log-sum-exp and target logit (nn.crossEntropyPiece), so the
 * backward recomputes one [rows, V/n] block of logits at a time (the lm_head is read once per
 * pass, unlike row chunks).
 */
function vocabChunkedLoss(c: LayerContext, h: Tensor, targets: Tensor, sizes: number[]): Tensor {
  const g = h.graph;
  let start = 0;
  const pieces = sizes.map((size, j) => {
    const first = start;
    start += size;
    // One [rows, 2] output: ORT schedules the target gather with the log-sum-exp, not at the end
    // of the step (the loss value is the last output it computes), which would keep the logits.
    return g.checkpoint(`loss.vocab${j}`, () => nn.crossEntropyPiece(lmHead(c, h, { axis: 0, sizes, index: j }), targets, first));
  });
  return nn.crossEntropyFromPieces(pieces, targets);
}

// ---------------------------------------------------------------------------------------------
// Training graph

export interface TrainGraphOptions {
  batch: number;
  seq: number;
  /** LoRA adapters to train, or null for full-parameter training (trainBase). */
  lora: LoraSpec | null;
  /** Every base weight becomes a graph input ("baseInputs"): full-parameter training. */
  trainBase?: boolean;
  /** Recompute each decoder layer in the backward instead of keeping its activations. */
  checkpointLayers?: boolean;
  /**
   * With checkpointLayers: nest the layers in outer segments of this many (two-level
   * checkpointing): about L/g + g layer inputs stay alive instead of L, for one more forward pass.
   * Default 1.
   */
  checkpointGroup?: number;
  /** Split the vocabulary projection + loss into this many row chunks (overrides the vocabulary chunks). */
  lossChunks?: number;
  /** Feed per-module dropout seeds (input "dropout_seeds") when lora.dropout > 0. */
  dropout?: boolean;
  /**
   * Take the embeddings as input "inputs_embeds" [B*T, D] (FrozenWeights.embedRows) instead of
   * storing the table in the graph: 2 GiB less for a 128k x 4096 float32 vocabulary.
   */
  hostEmbeddings?: boolean;
  /** Chunk size for attention scores, MLP intermediates and logits (default CHUNK_BYTES). */
  chunkBytes?: number;
  /** The chunking decided by the run's plan (train/plan.ts); without it, chunkPlan of this shape, chunkBytes and maxWeightBytes. */
  chunks?: ChunkPlan;
  /**
   * A symbolic sequence length: the graph runs batches of any T up to `seq` (one session, one copy
   * of the weights), so a batch pads only to its own longest row. Chunking is planned for `seq`.
   * With dropout the graph takes "token_index" int32 [T] = 0..T-1 (int32: int64 has no WebGPU Where for the checkpoint barriers).
   */
  dynamicSeq?: boolean;
  /** float16: frozen weights and their products in float16, the rest float32 (ScopeOptions). */
  computeDtype?: ComputeDtype;
  /** The device's largest buffer: frozen weights are split to fit (ScopeOptions; MLP and vocabulary pieces via chunkPlan). */
  maxWeightBytes?: number;
}

/** The symbol of a dynamic graph's sequence length ("seq") and of its B*T activation rows ("rows"). */
export const SEQ_DIM = 'seq';

export interface TrainGraph {
  /** Scalar mean cross-entropy over targets != -100. */
  loss: Tensor;
  lora: LoraParam[];
  loraInputs: LoraInputs;
  /** Base weights fed as inputs when trainBase is set, by HF name. */
  baseInputs: Map<string, Tensor>;
  /** Number of dropout seeds to feed (0 = no dropout input). */
  dropoutModules: number;
  /** How the graph chunks its largest activations. */
  chunks: ChunkPlan;
  /**
   * Builds the unchunked logits [B*T, V] of the same forward (same trunk, lm_head and LoRA), for
   * checks against a reference; a training step never calls it (the loss keeps them chunked).
   */
  logits: () => Tensor;
}

/**
 * The forward + loss of a causal LM for a static [B, T] batch. Inputs: input_ids (or
 * inputs_embeds with hostEmbeddings), position_ids (int64 [B, T]), attn_bias (float [B, 1, T, T],
 * 0 or -1e9), targets (int32 [B*T], the next token or -100), the LoRA matrices by PEFT name, and
 * dropout_seeds when dropout is on.
 */
export function buildTrainForward(g: Graph, fw: FrozenWeights, invFreq: Float64Array, o: TrainGraphOptions): TrainGraph {
  const { cfg } = fw;
  const B = o.batch, T: Dim = o.dynamicSeq ? SEQ_DIM : o.seq;
  const rowsDim: Dim = typeof T === 'number' ? B * T : 'rows';
  if (o.hostEmbeddings && o.trainBase) throw new Error('buildTrainForward: hostEmbeddings cannot be combined with trainBase (the embeddings are trained)');
  const ids = o.hostEmbeddings ? null : g.input('input_ids', 'int64', [B, T]);
  const embeds = o.hostEmbeddings ? g.input('inputs_embeds', 'float32', [rowsDim, cfg.hiddenSize]) : null;
  const positions = g.input('position_ids', 'int64', [B, T]);
  const bias = g.input('attn_bias', 'float32', [B, 1, T, T]);
  const targets = g.input('targets', 'int32', [rowsDim]);
  const params = o.lora ? loraParams(cfg, o.lora) : [];
  const loraInputs: LoraInputs = new Map(params.map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
  const nModules = o.lora ? cfg.numLayers * o.lora.targets.length : 0;
  const useDropout = (o.dropout ?? true) && !!o.lora && o.lora.dropout > 0;
  const seeds = useDropout ? g.input('dropout_seeds', 'float32', [nModules]) : null;
  const ws = new WeightScope(g, fw, !!o.trainBase, true, { computeDtype: o.computeDtype, maxWeightBytes: o.maxWeightBytes });
  const chunks = { ...(o.chunks ?? chunkPlan(cfg, B, o.seq, fw.blockSize, o.chunkBytes, o.maxWeightBytes)) };
  if (o.lossChunks && o.lossChunks > 1) chunks.vocabSizes = [cfg.vocabSize];
  const c: LayerContext = {
    cfg, ws, B, T,
    lora: o.lora ? { spec: o.lora, inputs: loraInputs, scale: loraScale(o.lora), dropoutSeeds: seeds } : null,
    cos: positions, sin: positions, bias, cache: null, moduleIndex: 0, chunks,
    dynamicSeq: o.dynamicSeq ? { maxSeq: o.seq, tokenIndex: useDropout ? g.input('token_index', 'int32', [T]) : null } : undefined,
  };
  const h = trunk(c, { ids: ids ?? positions, embeds, positions, bias }, invFreq, o.seq, o.checkpointLayers ? Math.max(1, o.checkpointGroup ?? 1) : 0); // [rows, D]
  const rowChunks = Math.max(1, o.lossChunks ?? 1);
  let loss: Tensor;
  if (chunks.vocabSizes.length > 1) {
    loss = vocabChunkedLoss(c, h, targets, chunks.vocabSizes);
  } else if (rowChunks === 1) {
    loss = nn.crossEntropy(lmHead(c, h), targets);
  } else {
    // Row chunks: each chunk's logits are recomputed in the backward, so only [rows/chunks, V] is live.
    if (typeof T !== 'number') throw new Error('buildTrainForward: row-chunked loss (lossChunks) needs a static sequence length');
    const rows = B * T, size = Math.ceil(rows / rowChunks);
    const sizes = Array.from({ length: rowChunks }, (_, i) => Math.min(size, rows - i * size)).filter((s) => s > 0);
    const hs = F.split(h, sizes, 0), ts = F.split(targets, sizes, 0);
    const valid = F.cast(F.greater(targets, F.scalar(g, 'int32', -100)), 'float32'); // [rows]
    const count = F.max2(F.reduceSum(valid, [0], false), 1);
    let total: Tensor | null = null;
    hs.forEach((hc, i) => {
      // Sum over this chunk's valid tokens.
      const part = g.checkpoint(`loss.${i}`, () => nn.crossEntropyFromPieces([nn.crossEntropyPiece(lmHead(c, hc), ts[i]!)], ts[i]!, { reduction: 'sum' }));
      total = total ? F.add(total, part) : part;
    });
    loss = F.div(total!, count);
  }
  const logits = () => lmHead(c, h); // [B*T, V]
  return { loss, lora: params, loraInputs, baseInputs: ws.inputs, dropoutModules: useDropout ? nModules : 0, chunks, logits };
}

// ---------------------------------------------------------------------------------------------
// Generation graph (prefill and decode share it: T tokens appended to a cache of P)

export interface GenerationGraph {
  logits: Tensor; // [B, V] of the last position
  presentK: Tensor[];
  presentV: Tensor[];
}

/**
 * Inputs: input_ids [B, T], position_ids [B, T], attn_bias [B, 1, T, P+T], past_k.N / past_v.N
 * [B, KV, P, hd], lora_scale [B] (0 = base model, 1 = tuned: base and tuned answers share one
 * session and one copy of the weights), and the LoRA matrices when `lora` is given.
 * Outputs the last position's logits and the present caches. The batch B is fixed (so every
 * reshape has a constant shape); T (prefill or one decoded token) and P vary per run.
 */
export function buildGeneration(g: Graph, fw: FrozenWeights, invFreq: Float64Array, maxPositions: number, lora: LoraSpec | null, batch: number, device: ScopeOptions = {}): GenerationGraph {
  const { cfg } = fw;
  const B = batch, T = 'seq', P = 'past';
  const ids = g.input('input_ids', 'int64', [B, T]);
  const positions = g.input('position_ids', 'int64', [B, T]);
  const bias = g.input('attn_bias', 'float32', [B, 1, T, `${P}+${T}`]);
  const cache = { pastK: [] as Tensor[], pastV: [] as Tensor[], presentK: [] as Tensor[], presentV: [] as Tensor[] };
  for (let l = 0; l < cfg.numLayers; l++) {
    cache.pastK.push(g.input(`past_k.${l}`, 'float32', [B, cfg.numKvHeads, P, cfg.headDim]));
    cache.pastV.push(g.input(`past_v.${l}`, 'float32', [B, cfg.numKvHeads, P, cfg.headDim]));
  }
  let loraCtx: LayerContext['lora'] = null;
  if (lora) {
    const scaleIn = g.input('lora_scale', 'float32', [B]);
    const params = loraParams(cfg, lora);
    const inputs: LoraInputs = new Map(params.map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
    // Per-row scale: rows are B*T in batch-major order, so xa [rows, r] is scaled as [B, T, r] by [B, 1, 1].
    const perBatch = F.reshape(F.mul(scaleIn, loraScale(lora)), [B, 1, 1]);
    const r = lora.rank;
    const scale = (xa: Tensor) => F.reshape(F.mul(F.reshape(xa, [B, T, r]), perBatch), ['rows', r]); // [rows, r]
    loraCtx = { spec: lora, inputs, scale, dropoutSeeds: null };
  }
  const whole: ChunkPlan = { attentionHeads: cfg.numHeads, mlpSizes: [cfg.intermediateSize], vocabSizes: [cfg.vocabSize] };
  const c: LayerContext = { cfg, ws: new WeightScope(g, fw, false, false, device), B, T, lora: loraCtx, cos: ids, sin: ids, bias, cache, moduleIndex: 0, chunks: whole };
  const h = trunk(c, { ids, embeds: null, positions, bias }, invFreq, maxPositions, 0); // [rows, D]
  // Only the last position's logits are needed: gather row t = T-1 of each sequence.
  const last = F.reshape(F.slice(toBT(c, h, [cfg.hiddenSize]), [-1], [Number.MAX_SAFE_INTEGER], [1]), [B, cfg.hiddenSize]);
  const logits = lmHead(c, last);
  return { logits, presentK: cache.presentK, presentV: cache.presentV };
}

export type { DType };
