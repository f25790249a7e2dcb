// Child process of `finch bench generate`, Finch's side: loads the model folder (float32, or 4-bit
// with --quantize as QLoRA loads it), builds the KV-cache generation session and times prefill of
// a prompt and greedy decoding. Prints one JSON line.

import { Generator } from '../infer/generate.js';
import { loadModel } from '../model/load.js';
import { measure } from './timing.js';
import type { GenerateSide } from './generate.js';

const o = JSON.parse(process.argv[2]!) as { model: string; quantize: boolean; threads: number; prompt: number[]; decode: number; reps: number };
const m = loadModel(o.model, { quantize: o.quantize });
const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: o.prompt.length + o.decode + 1, threads: o.threads });
const run = (n: number) => gen.generate({ prompts: [o.prompt], maxNewTokens: n, eosIds: [] });
const timing = { warmup: 1, minSeconds: 0, minReps: o.reps };
// Prefill = one run over the prompt (plus choosing one token); decode = the extra time of `decode` more tokens.
const prefill = await measure(() => run(1), timing);
const full = await measure(() => run(o.decode + 1), timing);
const side: GenerateSide = {
  prefill_tokens_per_s: o.prompt.length / (prefill.medianMs / 1000),
  decode_tokens_per_s: o.decode / ((full.medianMs - prefill.medianMs) / 1000),
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
};
await gen.release();
m.close();
console.log(JSON.stringify(side));
