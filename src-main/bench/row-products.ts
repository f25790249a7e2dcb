// How fast ONNX Runtime streams float32 weights through single-row products: the ceiling of
// float32 decoding, where each new token multiplies one row by every weight matrix once and the
// weights' bytes, not the arithmetic, set the time. `finch bench generate` reports it beside the
// rate each side read its weights while decoding (docs/perf.md "Why f32 decode trails llama.cpp").

import { Graph } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { Session } from '../engine/runtime/session.js';
import type { ModelConfig } from '../model/types.js';
import { projectionShapes } from '../train/memory.js';
import { mulberry32 } from '../util/random.js';
import { measure } from './timing.js';

/** Weights the chain streams: 8x the largest last-level cache of common desktop CPUs, so they come from memory. */
const CHAIN_BYTES = 256 * 2 ** 20;

/**
 * Bytes of float32 matrices one decode run reads: every projection of every layer (the family's
 * own, train/memory.ts projectionShapes) and the LM head (a tied head reads the embedding table).
 * The embedding lookup gathers one row; norms and biases are left out (well under 0.1% of a real model).
 */
export function decodeMatrixBytes(cfg: ModelConfig): number {
  const perLayer = projectionShapes(cfg).reduce((s, [n, k]) => s + n * k, 0);
  return 4 * (cfg.numLayers * perLayer + cfg.vocabSize * cfg.hiddenSize);
}

/**
 * GB/s of a chain of [1, D] x [I, D]^T and [1, I] x [D, I]^T products (Gemm with transB, the layout
 * of Finch's float32 generation graphs) over CHAIN_BYTES of distinct weights: the model's own MLP
 * shapes, median of the timed runs.
 */
export async function rowProductGBps(cfg: ModelConfig, threads: number): Promise<number> {
  const D = cfg.hiddenSize, I = cfg.intermediateSize;
  const pairs = Math.max(1, Math.ceil(CHAIN_BYTES / (2 * 4 * D * I)));
  const g = new Graph('row-products');
  let h = g.input('x', 'float32', [1, D]); // [1, D]
  // Random weights: ONNX Runtime shares identical initializers, so equal constant matrices would be
  // one matrix read from the cache (measured: 45 GB/s against 25). Weights in [0.5, 1.5) / K keep the
  // chain's values near 1.
  const random = mulberry32(1);
  const matrix = (name: string, out: number, inp: number) =>
    g.initializer(name, 'float32', [out, inp], { kind: 'inline', bytes: new Uint8Array(new Float32Array(out * inp).map(() => (random() + 0.5) / inp).buffer) });
  for (let p = 0; p < pairs; p++) {
    h = F.gemm(h, matrix(`up.${p}`, I, D), null, { transB: true }); // [1, I]
    h = F.gemm(h, matrix(`down.${p}`, D, I), null, { transB: true }); // [1, D]
  }
  g.output(h, 'y');
  const session = await Session.create(serializeModel(g), { threads, cpuMemArena: true });
  try {
    const feed = { x: { dtype: 'float32' as const, dims: [1, D], data: new Float32Array(D).fill(1) } };
    const t = await measure(() => session.run(feed), { warmup: 2, minSeconds: 1, minReps: 10 });
    return (pairs * 2 * 4 * D * I) / (t.medianMs / 1000) / 1e9;
  } finally {
    await session.release();
  }
}
