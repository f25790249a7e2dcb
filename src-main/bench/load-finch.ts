// Child process of `finch bench load`: opens a model folder as `finch generate` does (float, or 4
// bits through the quantized-weight cache), builds the generation session and decodes one token.
// Prints one JSON line with the time from process start to that token, per-phase seconds, peak RSS,
// the bytes JS still holds in ArrayBuffers once the session has the weights, and (Linux) peak
// anonymous and file-backed memory by phase. With `tokens` > 1 it also times decoding.

import { Generator } from '../infer/generate.js';
import { loadPeftAdapter } from '../model/adapter.js';
import { loadModel } from '../model/load.js';
import { prepareInt4 } from '../model/quant-cache.js';
import { RssSampler } from './rss-sampler.js';

const o = JSON.parse(process.argv[2]!) as {
  dir: string; threads: number; prompt: number[]; quantize: boolean; spawnedMs: number; adapter?: string;
  /** Tokens to generate (the first one ends the load; the rest time decoding). */
  tokens?: number;
  prepack?: boolean;
};
const sampler = RssSampler.start();
const now = () => performance.now() / 1000;
const t0 = now();
const model = loadModel(o.dir, { quantize: o.quantize });
const int4 = o.quantize ? await prepareInt4(model.dir, model.config, model.weights, { threads: o.threads }) : null;
const adapter = o.adapter ? loadPeftAdapter(o.adapter, model.config) : null;
const t1 = now();
const gen = await Generator.create(model.weights, model.invFreq, {
  maxPositions: o.prompt.length + (o.tokens ?? 1), threads: o.threads, lora: adapter?.spec ?? null, prepackWeights: o.prepack,
});
const loadRss = sampler?.phase() ?? null;
const t2 = now();
const [res] = await gen.generate({
  prompts: [o.prompt], maxNewTokens: 1, eosIds: [], adapter: adapter?.tensors, loraScales: adapter ? [1] : undefined,
});
const t3 = now();
const firstTokenS = Date.now() / 1000 - o.spawnedMs / 1000;
const firstRss = sampler?.phase() ?? null;
(globalThis as { gc?: () => void }).gc?.();
const jsBuffersMb = process.memoryUsage().arrayBuffers / 2 ** 20; // the session exists: it holds the weights
const cpuS = (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
let decodeTokensPerS: number | null = null;
if ((o.tokens ?? 1) > 1) {
  const t = now();
  const [d] = await gen.generate({
    prompts: [o.prompt], maxNewTokens: o.tokens!, eosIds: [], adapter: adapter?.tensors, loraScales: adapter ? [1] : undefined,
  });
  decodeTokensPerS = d!.ids.length / (now() - t);
}
await sampler?.stop();
await gen.release();
model.close();
console.log(JSON.stringify({
  first_token_s: firstTokenS,
  load_s: t1 - t0,
  session_s: t2 - t1,
  forward_s: t3 - t2,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  cpu_s: cpuS,
  rss: { load: loadRss, first_token: firstRss },
  decode_tokens_per_s: decodeTokensPerS,
  js_array_buffers_mb: jsBuffersMb,
  token: res!.ids[0],
  int4_source: int4?.source ?? null,
}));
