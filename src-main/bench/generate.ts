// `finch bench generate`: Finch's generation (KV-cache session on ONNX Runtime) against llama.cpp
// (node-llama-cpp) on the same weights and thread count, in the same run: the `small` preset's
// random weights in float32 (Finch float32 vs GGUF f32), and Finch's 4-bit against GGUF q4_0.
// Each side runs in its own child process (timing.ts: benchEnv), so peak RSS is its own.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import { exportGguf } from '../model/gguf/export.js';
import { writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { parseCommand } from '../cli/args.js';
import { PRESETS } from './train-presets.js';
import { benchEnv, runJsonChild } from './timing.js';

/** One side's measurement. */
export interface GenerateSide {
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  peak_rss_mb: number;
}

const USAGE = `Usage: finch bench generate [--preset small] [--threads N] [--prompt N] [--decode N] [--reps N] [--json]

Prompt processing (prefill) and decode tokens/s of Finch against llama.cpp on the same random
weights and threads: float32 against GGUF f32, Finch's 4-bit against GGUF q4_0; peak RSS of each.
--json prints one object; decode_ratio / prefill_ratio are Finch f32 over llama.cpp f32,
decode_ratio_4bit / prefill_ratio_4bit Finch 4-bit over llama.cpp q4_0.`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench generate', argv, {
    preset: { type: 'string', default: 'small' }, threads: { type: 'string', default: String(Math.min(4, os.availableParallelism())) },
    prompt: { type: 'string', default: '128' }, decode: { type: 'string', default: '32' }, reps: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  const preset = PRESETS[v.preset];
  // 4-bit and q4_0 quantize blocks of 32 inputs; llama3-8b would take minutes to write and load.
  if (!preset || preset.name === 'llama3-8b' || preset.intermediate % 32 !== 0) { console.error('finch bench generate: --preset must be small'); return 2; }
  const [threads, promptLen, decode, reps] = [v.threads, v.prompt, v.decode, v.reps].map(Number) as [number, number, number, number];
  const log = (s: string) => { if (!v.json) console.error(s); };

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'finch-bench-generate-'));
  try {
    log(`writing the ${preset.name} preset's random weights and their GGUF files...`);
    const ck = writeSyntheticCheckpoint(path.join(dir, 'model'), {
      hiddenSize: preset.hidden, numLayers: preset.layers, numHeads: preset.heads, numKvHeads: preset.kvHeads,
      intermediateSize: preset.intermediate, modelVocabSize: preset.vocab, maxPositionEmbeddings: 4096, seed: 1,
    });
    const f32 = exportGguf({ model: ck.dir, dtype: 'f32', out: path.join(dir, 'f32.gguf') }).out;
    const q4 = exportGguf({ model: ck.dir, dtype: 'q4_0', out: path.join(dir, 'q4_0.gguf') }).out;
    // A fixed pseudo-random prompt of ordinary token ids (the same for both sides).
    const prompt = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7919) % (ck.tokenizer.vocabSize - 16)));
    const env = benchEnv(threads);
    const finchEntry = new URL('./generate-finch.ts', import.meta.url), llamaEntry = new URL('./generate-llama.ts', import.meta.url);
    const finch = (quantize: boolean) => runJsonChild<GenerateSide>(process.execPath, [...nodeArgsFor(finchEntry), fileURLToPath(finchEntry), JSON.stringify({ model: ck.dir, quantize, threads, prompt, decode, reps })], env);
    const llama = (gguf: string) => runJsonChild<GenerateSide>(process.execPath, [...nodeArgsFor(llamaEntry), fileURLToPath(llamaEntry), JSON.stringify({ gguf, threads, prompt, decode, reps })], env);
    log(`finch f32 (${threads} threads)...`);
    const finchF32 = await finch(false);
    log('llama.cpp f32...');
    const llamaF32 = await llama(f32);
    log('finch 4-bit...');
    const finch4 = await finch(true);
    log('llama.cpp q4_0...');
    const llamaQ4 = await llama(q4);
    const result = {
      preset: preset.name, threads, prompt_tokens: promptLen, decode_tokens: decode,
      finch_f32: finchF32, llama_cpp_f32: llamaF32, finch_4bit: finch4, llama_cpp_q4_0: llamaQ4,
      decode_ratio: finchF32.decode_tokens_per_s / llamaF32.decode_tokens_per_s,
      prefill_ratio: finchF32.prefill_tokens_per_s / llamaF32.prefill_tokens_per_s,
      decode_ratio_4bit: finch4.decode_tokens_per_s / llamaQ4.decode_tokens_per_s,
      prefill_ratio_4bit: finch4.prefill_tokens_per_s / llamaQ4.prefill_tokens_per_s,
    };
    if (v.json) console.log(JSON.stringify(result));
    else {
      const row = (name: string, s: GenerateSide) =>
        `${name.padEnd(16)} prefill ${s.prefill_tokens_per_s.toFixed(0).padStart(7)} tok/s   decode ${s.decode_tokens_per_s.toFixed(1).padStart(7)} tok/s   peak RSS ${s.peak_rss_mb.toFixed(0)} MB`;
      console.log(`${preset.name} preset, ${threads} threads, ${promptLen}-token prompt, ${decode} decoded tokens`);
      console.log(row('Finch f32', finchF32));
      console.log(row('llama.cpp f32', llamaF32));
      console.log(row('Finch 4-bit', finch4));
      console.log(row('llama.cpp q4_0', llamaQ4));
      console.log(`decode ratio ${result.decode_ratio.toFixed(2)} (4-bit ${result.decode_ratio_4bit.toFixed(2)}), prefill ratio ${result.prefill_ratio.toFixed(2)} (4-bit ${result.prefill_ratio_4bit.toFixed(2)})`);
    }
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
