// Feeds for one training batch of random token ids, as the trainer builds them (train/feeds.ts):
// causal mask, int32 next-token targets with a few ignored positions, ids or host-gathered embeddings;
// and for one batch of random preference pairs.
import { PairSet } from '../../src-main/data/batch.js';
import { SampleStore } from '../../src-main/data/samples.js';
import type { HostTensor } from '../../src-main/engine/runtime/session.js';
import { batchFeeds } from '../../src-main/train/feeds.js';
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

/**
 * Feeds for a batch of P random preference pairs (data/batch.ts layout: chosen rows, then rejected
 * rows), as the trainer builds them: each pair's rows share a prompt of random length and end in
 * different answers of different lengths, right-padded to T; the last pair is missing (padding
 * rows) when `missing` is set.
 */
export function randomPairBatch(seed: number, vocab: number, P: number, T: number, o: { hostEmbed?: (ids: BigInt64Array) => Float32Array; missing?: boolean } = {}): Record<string, HostTensor> {
  const rand = mulberry32(seed);
  const store = new SampleStore();
  const real = o.missing ? P - 1 : P;
  for (let i = 0; i < real; i++) {
    const prompt = Array.from({ length: 3 + Math.floor(rand() * (T / 2 - 3)) }, () => Math.floor(rand() * vocab));
    for (let side = 0; side < 2; side++) {
      const answer = Array.from({ length: 2 + Math.floor(rand() * (T - prompt.length - 2)) }, () => Math.floor(rand() * vocab));
      store.push([...prompt, ...answer], [...prompt.map(() => 0), ...answer.map(() => 1)], i + 1);
    }
  }
  const pairs = new PairSet(store, Int32Array.from({ length: real }, (_, i) => 2 * i), 0);
  return batchFeeds(pairs.batch(Array.from({ length: real }, (_, i) => i), { T, size: P }), 2 * P, T, o.hostEmbed);
}
