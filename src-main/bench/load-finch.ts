// Child process of `finch bench load`: opens a model folder as `finch generate` does (float, or 4
// bits through the quantized-weight cache), builds the generation session and decodes one token.
// Prints one JSON line with the time from process start to that token, per-phase seconds, peak RSS,
// and the bytes JS still holds in ArrayBuffers once the session has the weights.

import { Generator } from '../infer/generate.js';
import { loadPeftAdapter } from '../model/adapter.js';
import { loadModel } from '../model/load.js';
import { prepareInt4 } from '../model/quant-cache.js';

const o = JSON.parse(process.argv[2]!) as { dir: string; threads: number; prompt: number[]; quantize: boolean; spawnedMs: number; adapter?: string };
const now = () => performance.now() / 1000;
const t0 = now();
const model = loadModel(o.dir, { quantize: o.quantize });
const int4 = o.quantize ? await prepareInt4(model.dir, model.config, model.weights, { threads: o.threads }) : null;
const adapter = o.adapter ? loadPeftAdapter(o.adapter, model.config) : null;
const t1 = now();
const gen = await Generator.create(model.weights, model.invFreq, {
  maxPositions: o.prompt.length + 1, threads: o.threads, lora: adapter?.spec ?? null,
});
const t2 = now();
(globalThis as { gc?: () => void }).gc?.();
const jsBuffersMb = process.memoryUsage().arrayBuffers / 2 ** 20;
const [res] = await gen.generate({
  prompts: [o.prompt], maxNewTokens: 1, eosIds: [], adapter: adapter?.tensors, loraScales: adapter ? [1] : undefined,
});
const t3 = now();
const firstTokenS = Date.now() / 1000 - o.spawnedMs / 1000;
await gen.release();
model.close();
console.log(JSON.stringify({
  first_token_s: firstTokenS,
  load_s: t1 - t0,
  session_s: t2 - t1,
  forward_s: t3 - t2,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  cpu_s: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  js_array_buffers_mb: jsBuffersMb,
  token: res!.ids[0],
  int4_source: int4?.source ?? null,
}));
