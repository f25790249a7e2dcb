// Child process of `finch bench generate`, llama.cpp's side (node-llama-cpp's prebuilt CPU build):
// loads a GGUF file with the same thread count as Finch, then answers each {op: 'run'} as Finch's
// side does: the time from the prompt (one batch) to the first token, and of `decode` more greedy
// tokens (each one decode run).

import { getLlama, type Token } from 'node-llama-cpp';
import { serveBenchRequests } from './child.js';
import type { GenerateRun, SideArg } from './generate.js';

const o = JSON.parse(process.argv[2]!) as SideArg & { gguf: string };
const t0 = performance.now();
const llama = await getLlama({ build: 'never', gpu: false });
const model = await llama.loadModel({ modelPath: o.gguf, gpuLayers: 0 });
const ctx = await model.createContext({ contextSize: o.prompt.length + o.decode + 8, threads: o.threads, batchSize: o.prompt.length });
const seq = ctx.getSequence();
const run = async (): Promise<GenerateRun> => {
  await seq.clearHistory();
  const ids: number[] = [];
  const start = performance.now();
  let first = 0;
  // The first token comes after the prompt's run; each later one after one decode run.
  for await (const id of seq.evaluate(o.prompt as Token[], { temperature: 0, yieldEogToken: true })) {
    if (ids.length === 0) first = performance.now();
    ids.push(id);
    if (ids.length === o.decode + 1) break;
  }
  return { prompt_tokens: o.prompt.length, prefill_ms: first - start, decode_ms: performance.now() - first, decode_runs: o.decode, ids };
};
await run(); // warm-up, as Finch's side
serveBenchRequests({ load_s: (performance.now() - t0) / 1000 }, run, async () => {
  const peak = process.resourceUsage().maxRSS / 1024;
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { peak_rss_mb: peak };
});
