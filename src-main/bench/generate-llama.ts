// Child process of `finch bench generate`, llama.cpp's side (node-llama-cpp's prebuilt CPU build):
// loads a GGUF file, then times prefill of the prompt (one batch) and greedy decoding, with the
// same thread count as Finch. Prints one JSON line.

import { getLlama, type Token } from 'node-llama-cpp';
import { measure } from './timing.js';
import type { GenerateSide } from './generate.js';

const o = JSON.parse(process.argv[2]!) as { gguf: string; threads: number; prompt: number[]; decode: number; reps: number };
const llama = await getLlama({ build: 'never', gpu: false });
const model = await llama.loadModel({ modelPath: o.gguf, gpuLayers: 0 });
const ctx = await model.createContext({ contextSize: o.prompt.length + o.decode + 8, threads: o.threads, batchSize: o.prompt.length });
const seq = ctx.getSequence();
const timing = { warmup: 1, minSeconds: 0, minReps: o.reps };
const prompt = o.prompt as Token[];
const prefill = await measure(async () => {
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
}, timing);
// Decode: `decode` tokens after an untimed prefill of the same prompt.
const decodeTimes: number[] = [];
for (let r = 0; r < o.reps + 1; r++) {
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  const t0 = performance.now();
  let n = 0;
  for await (const _ of seq.evaluate(prompt.slice(-1), { temperature: 0, yieldEogToken: true })) if (++n === o.decode) break;
  if (r > 0) decodeTimes.push(performance.now() - t0); // the first is warm-up
}
decodeTimes.sort((a, b) => a - b);
const decodeMs = decodeTimes[decodeTimes.length >> 1]!;
const side: GenerateSide = {
  prefill_tokens_per_s: o.prompt.length / (prefill.medianMs / 1000),
  decode_tokens_per_s: o.decode / (decodeMs / 1000),
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
};
await ctx.dispose();
await model.dispose();
await llama.dispose();
console.log(JSON.stringify(side));
