// Dropout on the inputs of LoRA branches: reproducible, resumable, and the same mask on every
// execution provider.
//
// Each element has a fixed uniform u_i (hashed on the host, an initializer) and each step a
// per-module shift c = frac(seed * golden ratio); the element is dropped where frac(u_i + c) < p.
// Every op on the way is exact or correctly rounded in float32 (no sin, whose GPU and CPU results
// differ), so CPU and WebGPU drop the same elements. The trainer feeds one seed per module each
// step in the input "dropout_seeds"; a module's seed sits at dropoutSeedIndex(spec, layer, target),
// which runs saved with older versions of Finch rely on (their resumed steps draw the same masks).

import type { Dim } from '../engine/graph/dtype.js';
import type { Graph, Tensor } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { LORA_TARGET_ORDER, type LoraSpec, type LoraTarget } from './lora.js';

/**
 * Where the seed of layer `layer`'s `target` module sits in "dropout_seeds": layer-major, the
 * adapted projections of a layer in the model's order (LORA_TARGET_ORDER: q, k, v, o, gate, up,
 * down for the Llama family), the order in which earlier versions built them and counted seeds.
 * Never reorder.
 */
export function dropoutSeedIndex(spec: LoraSpec, layer: number, target: LoraTarget): number {
  const adapted = LORA_TARGET_ORDER.filter((t) => spec.targets.includes(t));
  const at = adapted.indexOf(target);
  if (at < 0) throw new Error(`dropoutSeedIndex: ${target} carries no LoRA adapter (targets: ${spec.targets.join(', ')})`);
  return layer * adapted.length + at;
}

/**
 * Length of "dropout_seeds": one per layer and listed target. A target listed twice adds an unused
 * slot per layer (as the seed count always had it; the indices above skip it).
 */
export const dropoutSeedCount = (spec: LoraSpec, numLayers: number): number => numLayers * spec.targets.length;

/** What dropout needs from the graph it is built into. */
export interface DropoutContext {
  /** Drop probability, > 0. */
  p: number;
  /** "dropout_seeds" [dropoutSeedCount] float32, fed per step. */
  seeds: Tensor;
  batch: number;
  /** T of a static graph, or the longest T of a graph whose T is symbolic. */
  seq: number;
  /**
   * Symbolic-length graphs: "token_index" int32 [T] (0, 1, ..., T-1) that slices the uniform
   * tables, and the symbol of the activation rows (B*T). Null for static graphs.
   */
  symbolic: { tokenIndex: Tensor; rows: Dim } | null;
}

/** lowbias32 (Chris Wellons) of i: 32 well-mixed bits. */
function uniformBits(i: number): number {
  let h = i >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash as a float in [0, 1) on a 2^-24 grid. */
function uniformOf(i: number): number {
  return (uniformBits(i) >>> 8) / 2 ** 24;
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
 * the longest T ([B, maxSeq, cols]) and gathers the batch's T positions (token_index). One table
 * per shape and piece, shared by every module of that width.
 */
function uniformTable(d: DropoutContext, g: Graph, cols: number, col0: number, full: number): Tensor {
  const B = d.batch, T = d.seq;
  const piece = full === cols ? '' : `[${col0}:${col0 + cols}]`;
  const name = `dropout.uniform.${B}x${T}x${full}${piece}`;
  const shape = d.symbolic ? [B, T, cols] : [B * T, cols];
  const u8 = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const table = g.initializers.get(name)?.tensor
    ?? g.initializer(name, 'float32', shape, { kind: 'inline', bytes: u8(dropoutUniforms(B, T, cols, col0)) });
  if (!d.symbolic) return table;
  return F.reshape(F.gather(table, d.symbolic.tokenIndex, 1), [d.symbolic.rows, cols]); // [B, T, cols] -> [rows, cols]
}

/**
 * x [rows, cols] with dropout, using seed `seedIndex` of "dropout_seeds". x may be columns
 * [col0, col0 + cols) of a `width`-wide input: the mask is then that piece of the whole input's
 * mask, so chunking does not change it. An element's uniform is a hash of (batch row, position,
 * column), not of its flat index, so a row padded to another length drops the same elements
 * (static and symbolic-length graphs agree).
 */
export function loraDropout(d: DropoutContext, x: Tensor, seedIndex: number, col0 = 0, width?: number): Tensor {
  const seed = F.slice(d.seeds, [seedIndex], [seedIndex + 1], [0]); // [1] float, fed per step
  const cols = x.shape[1] as number;
  const uniform = uniformTable(d, x.graph, cols, col0, width ?? cols); // [rows, cols]
  const frac = (v: Tensor) => F.sub(v, F.cast(F.cast(v, 'int32'), 'float32')); // v >= 0: exact
  const shift = frac(F.mul(seed, 0.6180339887498949)); // [1] in [0, 1)
  const sum = F.add(uniform, shift); // [rows, cols] in [0, 2)
  const u = F.sub(sum, F.cast(F.greaterOrEqual(sum, 1), 'float32')); // frac, exact
  const keep = F.cast(F.greaterOrEqual(u, d.p), 'float32');
  return F.mul(x, F.mul(keep, 1 / (1 - d.p)));
}
