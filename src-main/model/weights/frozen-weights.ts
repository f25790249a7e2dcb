// Where a model's frozen weights come from: float tensors by Hugging Face name (streamed from
// safetensors or held in memory), their raw bytes in the checkpoint file, single embedding rows, and
// 4-bit blocks (quantized here on first use, or given by the 4-bit cache, in memory or as places
// in its file). Loaded once and shared by every graph built from them; how one graph stores them
// on its device is graph-weights.ts.

import type { ModelConfig } from '../types.js';
import { DEFAULT_BLOCK, type Int4File, type Int4Weight, quantizeInt4, readInt4File } from '../quant.js';

/** Where frozen weights come from: HF tensor name -> float32 data (streamed from safetensors). */
export type WeightSource = (name: string) => Float32Array;

/** One row of a frozen tensor (an embedding row read from the checkpoint on demand). */
export type RowSource = (name: string, row: number) => Float32Array;

/** A tensor's bytes in a checkpoint file. */
export interface RawWeightSlice {
  path: string;
  offset: number;
  length: number;
  dtype: 'float32' | 'float16' | 'bfloat16';
}

export interface FrozenWeightsOptions {
  /** Store frozen projections (and an untied lm_head) in 4 bits (QLoRA). Default false. */
  quantize?: boolean;
  /** Input features per 4-bit scale (default DEFAULT_BLOCK). */
  blockSize?: number;
  /**
   * Reads single embedding rows without loading the table (host-side embeddings for large
   * vocabularies); without it embedRows() loads the whole table once.
   */
  rows?: RowSource | null;
  /**
   * Float initializers of the graphs built from these weights are read from the source when a
   * graph is written, not held here: a model written to disk (writeModelFile) then passes through
   * JS one tensor at a time, and no JS copy outlives the session that holds the weights.
   */
  streamFloats?: boolean;
  /**
   * Where a tensor's raw bytes sit in its checkpoint file (float32/float16/bfloat16), when known.
   * Streamed graphs then reference those bytes directly and cast them to float32 in the graph:
   * ONNX Runtime folds the cast once at load, so no float32 copy is written or made in JS.
   */
  rawSlice?: ((name: string) => RawWeightSlice | null) | null;
}

/** Frozen weights, loaded (and quantized) once and shared by every graph built from them. */
export class FrozenWeights {
  readonly quantize: boolean;
  readonly blockSize: number;
  /** FrozenWeightsOptions.streamFloats. */
  readonly streamFloats: boolean;
  private readonly rows: RowSource | null;
  private readonly rawSliceOf: ((name: string) => RawWeightSlice | null) | null;
  private readonly float = new Map<string, Float32Array>();
  private readonly int4 = new Map<string, Int4Weight>();
  private readonly int4Files = new Map<string, Int4File>();

  constructor(readonly cfg: ModelConfig, private readonly src: WeightSource, o: FrozenWeightsOptions = {}) {
    this.quantize = o.quantize ?? false;
    this.blockSize = o.blockSize ?? DEFAULT_BLOCK;
    this.rows = o.rows ?? null;
    this.streamFloats = o.streamFloats ?? false;
    this.rawSliceOf = o.rawSlice ?? null;
  }

  /** A float tensor by HF name (norms, biases, embeddings; projections when not quantized), kept. */
  f(name: string): Float32Array {
    let w = this.float.get(name);
    if (!w) {
      w = this.src(name);
      this.float.set(name, w);
    }
    return w;
  }

  /** A float tensor read from the source without keeping it (each call reads again). */
  read(name: string): Float32Array {
    return this.float.get(name) ?? this.src(name);
  }

  /** Where a tensor's bytes sit in the checkpoint, for graphs to reference: streamed weights only. */
  rawSlice(name: string): RawWeightSlice | null {
    return this.streamFloats ? (this.rawSliceOf?.(name) ?? null) : null;
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
}
