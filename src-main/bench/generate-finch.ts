// Child process of `finch bench generate`, Finch's side: loads the model folder as `finch generate`
// does (float32, or 4-bit through the quantized-weight cache), builds the KV-cache generation
// session, then answers each {op: 'run'} with the time of one prefill over the prompt and of
// `decode` greedy decode runs after it (Generator.lastTimings: session runs only). Float32's side
// ends by measuring how fast ONNX Runtime streams weights through single-row products.

import { Generator } from '../infer/generate.js';
import { loadModel } from '../model/load.js';
import { prepareInt4 } from '../model/quant-cache.js';
import { serveBenchRequests } from './child.js';
import type { GenerateRun, SideArg } from './generate.js';
import { rowProductGBps } from './row-products.js';

const o = JSON.parse(process.argv[2]!) as SideArg & { model: string; quantize: boolean; int8Activations: boolean; profile?: string };
const t0 = performance.now();
const m = loadModel(o.model, { quantize: o.quantize });
if (o.quantize) await prepareInt4(m.dir, m.config, m.weights, { threads: o.threads });
const gen = await Generator.create(m.weights, m.invFreq, {
  maxPositions: o.prompt.length + o.decode + 1, threads: o.threads, int8Activations: o.int8Activations, profilePrefix: o.profile,
});
const run = async (): Promise<GenerateRun> => {
  const [res] = await gen.generate({ prompts: [o.prompt], maxNewTokens: o.decode + 1, eosIds: [] });
  const t = gen.lastTimings!;
  return { prompt_tokens: o.prompt.length, prefill_ms: t.prefillMs, decode_ms: t.decodeMs, decode_runs: t.decodeRuns, ids: res!.ids };
};
await run(); // warm-up: ORT plans its first runs; pages of the weights come in
serveBenchRequests({ load_s: (performance.now() - t0) / 1000 }, run, async () => {
  const peak = process.resourceUsage().maxRSS / 1024;
  await gen.release();
  m.close();
  // After the peak is read and the model is gone: float32 decoding's ceiling on this machine.
  return { peak_rss_mb: peak, ...(o.quantize ? {} : { row_product_gb_per_s: await rowProductGBps(m.config, o.threads) }) };
});
