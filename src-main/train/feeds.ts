// From a data Batch (Hugging Face conventions: unshifted labels, attention and segment ids) to
// the step graph's inputs: shifted targets, an additive attention bias, positions.

import type { Batch } from '../data/batch.js';
import type { HostTensor } from '../engine/runtime/session.js';
import { windowedBias } from '../model/llama.js';

const MASKED = -1e9;

const num = (a: Int32Array | BigInt64Array, i: number): number => Number(a[i]!);

/**
 * Feeds for a batch of B rows of T tokens (with `embed`, the token rows as "inputs_embeds" [B*T, D]) (rows beyond the batch, up to `rows`, are padding).
 * attn_bias[b, 0, i, j] = 0 where token i may attend to j: j <= i, same packed sample, j real.
 * A padding query attends to itself only (its loss is ignored; this keeps softmax finite).
 * With `window` (the graph takes the sliding layers' mask: model/llama.ts slidingWindowIn),
 * attn_bias_local is the same mask with keys `window` or more tokens back hidden too.
 * targets[b*T + t] = labels[b*T + t + 1]: the logits at t predict the next token.
 */
export function batchFeeds(batch: Batch, rows: number, T: number, embed?: (ids: BigInt64Array) => Float32Array, window: number | null = null): Record<string, HostTensor> {
  if (batch.T > T) throw new Error(`batch of ${batch.T} tokens does not fit the graph's ${T}`);
  const B = rows;
  const ids = new BigInt64Array(B * T), pos = new BigInt64Array(B * T), targets = new Int32Array(B * T).fill(-100);
  const bias = new Float32Array(B * T * T).fill(MASKED);
  const seg = new Int32Array(B * T);
  for (let b = 0; b < batch.B; b++) {
    for (let t = 0; t < batch.T; t++) {
      const src = b * batch.T + t, dst = b * T + t;
      ids[dst] = BigInt(num(batch.inputIds, src));
      pos[dst] = BigInt(num(batch.positionIds, src));
      seg[dst] = num(batch.attentionMask, src) ? batch.segmentIds[src]! : 0;
      if (t + 1 < batch.T) targets[dst] = num(batch.labels, src + 1);
    }
  }
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const si = seg[b * T + i]!;
      const row = (b * T + i) * T;
      if (si === 0) { bias[row + i] = 0; continue; }
      for (let j = 0; j <= i; j++) if (seg[b * T + j] === si) bias[row + j] = 0;
    }
  }
  const tokens: Record<string, HostTensor> = embed
    ? { inputs_embeds: { dtype: 'float32', dims: [B * T, 0], data: embed(ids) } }
    : { input_ids: { dtype: 'int64', dims: [B, T], data: ids } };
  if (embed) tokens.inputs_embeds = { ...tokens.inputs_embeds!, dims: [B * T, tokens.inputs_embeds!.data.length / (B * T)] };
  return {
    ...tokens,
    position_ids: { dtype: 'int64', dims: [B, T], data: pos },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias },
    ...(window === null ? {} : { attn_bias_local: { dtype: 'float32', dims: [B, 1, T, T], data: windowedBias(bias, B, T, T, window, MASKED) } }),
    targets: { dtype: 'int32', dims: [B * T], data: targets }, // int32: int64 arithmetic has no WebGPU kernels
  };
}
