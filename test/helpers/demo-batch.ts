// Feeds for one training batch of random token ids, as the trainer builds them (train/feeds.ts):
// causal mask, int32 next-token targets with a few ignored positions, ids or host-gathered embeddings.
import type { HostTensor } from '../../src-main/engine/runtime/session.js';
import { mulberry32 } from '../../src-main/util/random.js';

export function randomBatch(seed: number, vocab: number, B: number, T: number, hostEmbed?: (ids: BigInt64Array) => Float32Array): Record<string, HostTensor> {
  const rand = mulberry32(seed);
  const ids = BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(rand() * vocab)));
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % T < 3 || i % T === T - 1 ? -100 : Number(ids[i + 1]!)));
  const bias = Float32Array.from({ length: B * T * T }, (_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -1e9));
  return {
    ...(hostEmbed
      ? { inputs_embeds: { dtype: 'float32', dims: [B * T, hostEmbed(ids).length / (B * T)], data: hostEmbed(ids) } }
      : { input_ids: { dtype: 'int64', dims: [B, T], data: ids } }),
    position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias },
    targets: { dtype: 'int32', dims: [B * T], data: targets },
  };
}
