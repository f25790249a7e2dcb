// `finch bench generate`: Finch's generation (KV-cache session on ONNX Runtime) against llama.cpp
// (node-llama-cpp) on the same weights and thread count, in the same run: float32 against GGUF f32,
// and Finch's 4-bit against GGUF q4_0 (the same checkpoint, exported by `finch export gguf`).
// Weights: the `small` preset's (written to a temp folder per run), or a real model's shape
// (--shape; random weights generated once and cached with `bench load`'s checkpoints, the GGUF
// files next to them).
//
// Each side is a child process that loads once and then runs on request (child.ts), and the two
// sides of a pair run in turn, A B B A ..., so both see the same machine load; each repetition gives
// one Finch / llama.cpp ratio, and the ratios' median is what the `*_ratio` keys report.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseCommand } from '../cli/args.js';
import { exportGguf } from '../model/gguf/export.js';
import { loadModelConfig } from '../model/config.js';
import { writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { BenchChild } from './child.js';
import { DTYPES, LOAD_SHAPES, checkpointFor } from './load.js';
import { PRESETS } from './train-presets.js';
import { decodeMatrixBytes } from './row-products.js';
import { benchEnv } from './timing.js';

/** What both sides are started with (JSON in argv[2]). */
export interface SideArg {
  threads: number;
  prompt: number[];
  decode: number;
}

/** One repetition of one side: the prompt's run, then `decode_runs` decode runs. */
export interface GenerateRun {
  prompt_tokens: number;
  prefill_ms: number;
  decode_ms: number;
  decode_runs: number;
  /** The greedy ids: the first from the prompt's run, then one per decode run. */
  ids: number[];
}

type Request = { op: 'run' } | { op: 'exit' };

/** One side's measurement. */
export interface GenerateSide {
  /** Medians over the repetitions (the keys every version of this bench reported). */
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  /** From the fastest repetition. */
  prefill_tokens_per_s_best: number;
  decode_tokens_per_s_best: number;
  load_s: number;
  peak_rss_mb: number;
  /** Float32 pair: the matrices' bytes one decode run reads (decode_matrix_bytes) x the median decode rate, in GB/s. */
  decode_gb_per_s?: number;
  /** Finch float32: ONNX Runtime's single-row products over weights from memory (bench/row-products.ts), the decode's ceiling. */
  row_product_gb_per_s?: number;
}

/** Finch / llama.cpp, one value per repetition (the two sides ran back to back). */
export interface RatioStats {
  median: number;
  min: number;
  max: number;
}

export interface GeneratePair {
  finch: GenerateSide;
  llama_cpp: GenerateSide;
  prefill_ratio: RatioStats;
  decode_ratio: RatioStats;
  /** Leading greedy ids both sides agree on (first repetition): a check that they ran the same weights. */
  same_greedy_prefix: number;
  /** Float32 pair: bytes of the matrices one decode run reads (bench/row-products.ts decodeMatrixBytes). */
  decode_matrix_bytes?: number;
}

const USAGE = `Usage: finch bench generate [--preset small | --shape NAME] [--threads N] [--prompt N] [--decode N] [--reps N] [--json]

Prompt processing (prefill) and decode tokens/s of Finch against llama.cpp on the same random
weights and threads: float32 against GGUF f32, Finch's 4-bit against GGUF q4_0; peak RSS of each.
The two sides of each pair stay loaded and run in turn, so each repetition gives one ratio.
  --preset      small (default without --shape): written to a temp folder per run
  --shape       ${Object.keys(LOAD_SHAPES).join(', ')}: real models' shapes, generated once into
                --models-dir (shared with \`finch bench load\`; default: the system temp folder)
  --dtype       the shape's checkpoint dtype: bf16 (default), f16
  --threads     intra-op threads of both sides (default: min(4, cores))
  --prompt, --decode   prompt tokens (default 128), greedy tokens decoded after it (default 32)
  --reps        timed repetitions per side (default 5, after one warm-up)
  --no-f32, --no-4bit  skip a pair
  --int8        Finch's 4-bit with int8 activations (MatMulNBits accuracy level 4) instead of exact
--json prints one object; decode_ratio / prefill_ratio are Finch f32 over llama.cpp f32,
decode_ratio_4bit / prefill_ratio_4bit Finch 4-bit over llama.cpp q4_0 (medians of the paired
ratios; "f32" / "q4" hold each pair's sides and min / median / max ratios). In the f32 pair each
side's decode_gb_per_s is the rate it read the weights (decode_matrix_bytes per token), and
Finch's row_product_gb_per_s the rate ONNX Runtime's single-row products reach: the ceiling.`;

/** Finch's 4-bit and llama.cpp's q4_0 are different formats; the JSON says how. */
const FOUR_BIT = {
  finch: 'int4, blocks of 32 along the input, one float32 scale per block, symmetric; the seven projections and the LM head (a tied head too; the embedding lookup stays 16-bit); MatMulNBits',
  llama_cpp: 'q4_0, blocks of 32, one float16 scale per block, symmetric; the projections; the LM head (or the tied embedding) as q8_0',
};

const DEFAULT_MODELS_DIR = path.join(os.tmpdir(), 'finch-bench-models');

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench generate', argv, {
    preset: { type: 'string' }, shape: { type: 'string' }, dtype: { type: 'string', default: 'bf16' },
    'models-dir': { type: 'string' }, threads: { type: 'string', default: String(Math.min(4, os.availableParallelism())) },
    prompt: { type: 'string', default: '128' }, decode: { type: 'string', default: '32' }, reps: { type: 'string', default: '5' },
    'no-f32': { type: 'boolean', default: false }, 'no-4bit': { type: 'boolean', default: false }, int8: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  const fail = (msg: string) => { console.error(`finch bench generate: ${msg}`); return 2; };
  if (v.preset !== undefined && v.shape !== undefined) return fail('give --preset or --shape, not both');
  if (v.shape !== undefined && !LOAD_SHAPES[v.shape]) return fail(`unknown shape "${v.shape}" (choose ${Object.keys(LOAD_SHAPES).join(', ')})`);
  const preset = v.shape === undefined ? PRESETS[v.preset ?? 'small'] : null;
  // 4-bit and q4_0 quantize blocks of 32 inputs; llama3-8b would take minutes to write and load.
  if (v.shape === undefined && (!preset || preset.name === 'llama3-8b' || preset.intermediate % 32 !== 0)) return fail('--preset must be small (or use --shape)');
  if (!DTYPES[v.dtype]) return fail(`unknown dtype "${v.dtype}" (choose ${Object.keys(DTYPES).join(', ')})`);
  const [threads, promptLen, decode, reps] = [v.threads, v.prompt, v.decode, v.reps].map(Number) as [number, number, number, number];
  for (const [name, n] of [['threads', threads], ['prompt', promptLen], ['decode', decode], ['reps', reps]] as const) {
    if (!Number.isInteger(n) || n < 1) return fail(`--${name} must be a whole number >= 1 (got ${v[name]})`);
  }
  const log = (s: string) => { if (!v.json) console.error(s); };

  const temp = preset ? fs.mkdtempSync(path.join(os.tmpdir(), 'finch-bench-generate-')) : null;
  try {
    const modelsDir = temp ?? v['models-dir'] ?? DEFAULT_MODELS_DIR;
    let model: string;
    if (preset) {
      log(`writing the ${preset.name} preset's random weights...`);
      model = writeSyntheticCheckpoint(path.join(modelsDir, 'model'), {
        hiddenSize: preset.hidden, numLayers: preset.layers, numHeads: preset.heads, numKvHeads: preset.kvHeads,
        intermediateSize: preset.intermediate, modelVocabSize: preset.vocab, maxPositionEmbeddings: 4096, seed: 1,
      }).dir;
    } else {
      model = checkpointFor(modelsDir, v.shape!, DTYPES[v.dtype]!, log);
    }
    const cfg = loadModelConfig(model);
    // A fixed pseudo-random prompt of ordinary token ids (the same for both sides).
    const prompt = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7919) % Math.min(cfg.vocabSize - 16, 5000)));
    const home = path.join(modelsDir, 'finch-home'); // the bench's own FINCH_HOME: its 4-bit cache, not the user's
    fs.mkdirSync(home, { recursive: true });
    const env = { ...benchEnv(threads), FINCH_HOME: home };
    const side: SideArg = { threads, prompt, decode };
    // Float32 decoding reads every matrix once per token: its rate in GB/s says how near each side runs to the memory.
    const matrixBytes = decodeMatrixBytes(cfg);
    const pairOf = async (label: string, quantize: boolean, gguf: string): Promise<GeneratePair> => {
      log(`${label}: loading both sides (${threads} threads)...`);
      const [finch, llama] = await Promise.all([
        BenchChild.start<{ load_s: number }, Request, GenerateRun>(new URL('./generate-finch.ts', import.meta.url),
          { ...side, model, quantize, int8Activations: v.int8 }, env, `Finch ${label}`),
        BenchChild.start<{ load_s: number }, Request, GenerateRun>(new URL('./generate-llama.ts', import.meta.url), { ...side, gguf }, env, `llama.cpp ${label}`),
      ]);
      try {
        const runs: { finch: GenerateRun; llama: GenerateRun }[] = [];
        for (let r = 0; r < reps; r++) {
          // A B, then B A: drift in the machine's load cancels over pairs of repetitions.
          const order = r % 2 === 0 ? [finch, llama] : [llama, finch];
          const first = await order[0]!.request({ op: 'run' }), second = await order[1]!.request({ op: 'run' });
          runs.push(r % 2 === 0 ? { finch: first, llama: second } : { finch: second, llama: first });
          log(`  rep ${r + 1}/${reps}: decode ${tokensPerS(runs[r]!.finch).decode.toFixed(2)} vs ${tokensPerS(runs[r]!.llama).decode.toFixed(2)} tok/s, prefill ${tokensPerS(runs[r]!.finch).prefill.toFixed(1)} vs ${tokensPerS(runs[r]!.llama).prefill.toFixed(1)} tok/s`);
        }
        const [fEnd, lEnd] = await Promise.all([finch.close<{ peak_rss_mb: number; row_product_gb_per_s?: number }>(), llama.close<{ peak_rss_mb: number }>()]);
        const fIds = runs[0]!.finch.ids, lIds = runs[0]!.llama.ids;
        let same = 0;
        while (same < fIds.length && fIds[same] === lIds[same]) same++;
        const bytes = quantize ? null : matrixBytes;
        const finchSide = summarize(runs.map((x) => x.finch), finch.ready.load_s, fEnd.peak_rss_mb, bytes);
        return {
          finch: fEnd.row_product_gb_per_s === undefined ? finchSide : { ...finchSide, row_product_gb_per_s: fEnd.row_product_gb_per_s },
          llama_cpp: summarize(runs.map((x) => x.llama), llama.ready.load_s, lEnd.peak_rss_mb, bytes),
          prefill_ratio: stats(runs.map((x) => tokensPerS(x.finch).prefill / tokensPerS(x.llama).prefill)),
          decode_ratio: stats(runs.map((x) => tokensPerS(x.finch).decode / tokensPerS(x.llama).decode)),
          same_greedy_prefix: same,
          ...(bytes === null ? {} : { decode_matrix_bytes: bytes }),
        };
      } finally {
        finch.kill();
        llama.kill();
      }
    };

    let f32: GeneratePair | null = null, q4: GeneratePair | null = null;
    if (!v['no-f32']) f32 = await pairOf('f32', false, ggufFor(model, 'f32', !temp, log));
    if (!v['no-4bit']) q4 = await pairOf(v.int8 ? '4-bit (int8 activations) / q4_0' : '4-bit / q4_0', true, ggufFor(model, 'q4_0', !temp, log));
    const result = {
      preset: preset?.name ?? null, shape: v.shape ?? null, dtype: preset ? null : v.dtype,
      threads, prompt_tokens: promptLen, decode_tokens: decode, reps,
      finch_int8_activations: v.int8, four_bit: FOUR_BIT,
      finch_f32: f32?.finch ?? null, llama_cpp_f32: f32?.llama_cpp ?? null, finch_4bit: q4?.finch ?? null, llama_cpp_q4_0: q4?.llama_cpp ?? null,
      decode_ratio: f32?.decode_ratio.median ?? null,
      prefill_ratio: f32?.prefill_ratio.median ?? null,
      decode_ratio_4bit: q4?.decode_ratio.median ?? null,
      prefill_ratio_4bit: q4?.prefill_ratio.median ?? null,
      f32, q4,
    };
    if (v.json) console.log(JSON.stringify(result));
    else {
      const row = (name: string, s: GenerateSide) =>
        `${name.padEnd(16)} prefill ${s.prefill_tokens_per_s.toFixed(1).padStart(7)} tok/s   decode ${s.decode_tokens_per_s.toFixed(2).padStart(7)} tok/s   peak RSS ${s.peak_rss_mb.toFixed(0)} MB`;
      const ratio = (r: RatioStats) => `${r.median.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)})`;
      console.log(`${v.shape ?? `${preset!.name} preset`}, ${threads} threads, ${promptLen}-token prompt, ${decode} decoded tokens, ${reps} repetitions`);
      for (const [name, p] of [['f32', f32], [v.int8 ? '4-bit int8' : '4-bit', q4]] as const) {
        if (!p) continue;
        console.log(row(`Finch ${name}`, p.finch));
        console.log(row(name === 'f32' ? 'llama.cpp f32' : 'llama.cpp q4_0', p.llama_cpp));
        console.log(`${''.padEnd(16)} Finch / llama.cpp: decode ${ratio(p.decode_ratio)}, prefill ${ratio(p.prefill_ratio)}; same greedy ids for ${p.same_greedy_prefix} tokens`);
        if (p.finch.decode_gb_per_s !== undefined && p.llama_cpp.decode_gb_per_s !== undefined) {
          const ceiling = p.finch.row_product_gb_per_s === undefined ? '' : `; ONNX Runtime's single-row products stream ${p.finch.row_product_gb_per_s.toFixed(1)}`;
          console.log(`${''.padEnd(16)} decode reads the weights at ${p.finch.decode_gb_per_s.toFixed(1)} GB/s (Finch) and ${p.llama_cpp.decode_gb_per_s.toFixed(1)} GB/s (llama.cpp)${ceiling}`);
        }
      }
    }
    return 0;
  } finally {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** The GGUF export of `model`, written next to it once when `cached` (else beside it, every run). */
function ggufFor(model: string, dtype: 'f32' | 'q4_0', cached: boolean, log: (s: string) => void): string {
  const out = `${model}.${dtype}.gguf`;
  const marker = path.join(model, 'finch-bench-shape.json');
  // Rewritten when the checkpoint was regenerated after it (exportGguf writes atomically).
  if (cached && fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(marker).mtimeMs) return out;
  log(`exporting ${path.basename(model)} as GGUF ${dtype}...`);
  return exportGguf({ model, dtype, out }).out;
}

function tokensPerS(r: GenerateRun): { prefill: number; decode: number } {
  return { prefill: r.prompt_tokens / (r.prefill_ms / 1000), decode: r.decode_runs / (r.decode_ms / 1000) };
}

function summarize(runs: GenerateRun[], loadS: number, peakRssMb: number, matrixBytes: number | null): GenerateSide {
  const prefill = runs.map((r) => tokensPerS(r).prefill), dec = runs.map((r) => tokensPerS(r).decode);
  const decode = stats(dec).median;
  return {
    prefill_tokens_per_s: stats(prefill).median, decode_tokens_per_s: decode,
    prefill_tokens_per_s_best: Math.max(...prefill), decode_tokens_per_s_best: Math.max(...dec),
    load_s: loadS, peak_rss_mb: peakRssMb,
    ...(matrixBytes === null ? {} : { decode_gb_per_s: (matrixBytes * decode) / 1e9 }),
  };
}

function stats(xs: number[]): RatioStats {
  const s = [...xs].sort((a, b) => a - b), mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}
