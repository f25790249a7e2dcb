// How a training graph splits its largest activations: attention scores by query heads, MLP
// intermediates by features, logits by vocabulary rows. A checkpointed layer's backward then holds
// one chunk at a time (model/llama.ts builds the chunks; train/memory.ts prices exactly this).

import type { ModelConfig } from './types.js';
import { pieces, piecesUnder } from './weights/pieces.js';

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

/** No chunking: what generation graphs use. */
export const wholePlan = (cfg: ModelConfig): ChunkPlan => ({ attentionHeads: cfg.numHeads, mlpSizes: [cfg.intermediateSize], vocabSizes: [cfg.vocabSize] });

/**
 * The chunking a training graph of this shape uses. A tensor at most twice `chunkBytes` stays
 * whole; a larger one is cut into pieces of about `chunkBytes`. With a device buffer limit, every
 * piece's float32 weight fits it too.
 */
export function chunkPlan(cfg: ModelConfig, batch: number, seq: number, blockSize: number, chunkBytes = CHUNK_BYTES, maxWeightBytes = Infinity): ChunkPlan {
  const H = cfg.numHeads, G = H / cfg.numKvHeads, rows = batch * seq;
  const perHead = batch * seq * seq * 4; // one head's [B, T, T] scores
  let attentionHeads = H;
  if (perHead * H > 2 * chunkBytes) {
    // Head counts a chunk may have: a divisor of G (inside one KV group) or a multiple of G dividing H.
    const valid = Array.from({ length: H }, (_, i) => i + 1).filter((h) => (h <= G ? G % h === 0 : h % G === 0 && H % h === 0));
    attentionHeads = largest([1, ...valid.filter((h) => h * perHead <= chunkBytes)]);
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
  for (let n = mlpSizes.length; largest(mlpSizes) * rowBytes > maxWeightBytes; n++) {
    if (blockSize * rowBytes > maxWeightBytes) throw new Error(`chunkPlan: ${blockSize} rows of ${rowBytes} bytes exceed the device's buffer limit of ${maxWeightBytes} bytes`);
    mlpSizes = pieces(cfg.intermediateSize, n + 1, blockSize);
  }
  if (largest(vocabSizes) * rowBytes > maxWeightBytes) vocabSizes = piecesUnder(cfg.vocabSize, rowBytes, maxWeightBytes);
  return { attentionHeads, mlpSizes, vocabSizes };
}

/** The largest of `xs` (Math.max(...xs) overflows the stack past ~100k pieces: a vocabulary cut row by row). */
function largest(xs: readonly number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  return m;
}
