// `finch bench load`: time from process start to the first generated token, and peak RSS, for
// generated checkpoints of real model shapes (Qwen2.5-0.5B, Llama-3.2-1B; bf16 and f16
// safetensors), float and 4-bit (cold: quantizing; warm: from the quantized-weight cache), against
// a PyTorch peer in the same run (peers/torch_load.py: map the file, convert to float32 once, one
// forward). Each side runs in its own child process with the same threads and BLAS environment.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand } from '../cli/args.js';
import { savePeftAdapter } from '../model/adapter.js';
import { loadModelConfig } from '../model/config.js';
import { initLora, loraParams, modelTargets } from '../model/lora.js';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import { type StorageDtype, type SyntheticCheckpointOptions, writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { firstStep } from './first-step.js';
import { benchEnv, runJsonChild } from './timing.js';

/** Real models' shapes (their config.json), with the synthetic tokenizer padded to the real vocabulary. */
export const LOAD_SHAPES: Record<string, SyntheticCheckpointOptions> = {
  'qwen2.5-0.5b': {
    modelType: 'qwen2', hiddenSize: 896, numLayers: 24, numHeads: 14, numKvHeads: 2, intermediateSize: 4864,
    modelVocabSize: 151936, tieWordEmbeddings: true, ropeTheta: 1_000_000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768,
  },
  'llama3.2-1b': {
    modelType: 'llama', hiddenSize: 2048, numLayers: 16, numHeads: 32, numKvHeads: 8, intermediateSize: 8192,
    modelVocabSize: 128256, tieWordEmbeddings: true, ropeTheta: 500_000, ropeScaling: 'llama3', maxPositionEmbeddings: 131072,
  },
};

export const DTYPES: Record<string, StorageDtype> = { bf16: 'bfloat16', f16: 'float16' };

interface FinchRun { decode_tokens_per_s: number | null; first_token_s: number; load_s: number; session_s: number; forward_s: number; peak_rss_mb: number; cpu_s: number; js_array_buffers_mb: number; token: number }
interface PeerRun { first_token_s: number; load_s: number; forward_s: number; peak_rss_mb: number; cpu_s: number; token: number }

const USAGE = `Usage: finch bench load [--shape NAME]... [--dtype bf16|f16]... [--threads N] [--models-dir DIR] [--no-4bit] [--adapter] [--tokens N] [--json]

Time from process start to the first generated token and peak RSS: Finch float, Finch 4-bit cold
(quantizing) and warm (quantized-weight cache), and PyTorch loading the same safetensors into
float32 and running one forward. Checkpoints are generated once into --models-dir
(default: the system temp folder) and reused.
  --shape     ${Object.keys(LOAD_SHAPES).join(', ')} (default: all)
  --dtype     bf16, f16 (default: both)
  --adapter   also load with a LoRA adapter (r=16, all projections): what it adds
  --tokens    tokens to generate after the first, to time decoding too (default 1: none)
  --first-step  also time \`finch train\` to the end of its first LoRA step against PyTorch
              loading the checkpoint and running one LoRA step (--train-seq tokens, default 128)`;

/**
 * A PEFT adapter for the checkpoint in `dir` (r=16 on all its projections, B non-zero so it
 * changes the output), written once next to it.
 */
function adapterFor(dir: string): string {
  const out = `${dir}-adapter`;
  if (existsSync(join(out, 'adapter_model.safetensors'))) return out;
  const cfg = loadModelConfig(dir);
  const spec = { rank: 16, alpha: 32, dropout: 0, rslora: false, targets: modelTargets(cfg) };
  const tensors = initLora(loraParams(cfg, spec), 1);
  for (const [name, t] of tensors) if (name.includes('lora_B')) t.fill(1e-3);
  savePeftAdapter(out, { spec, baseModel: dir, tensors, cfg });
  return out;
}

/** The synthetic checkpoint of `shape` in `dtype`, generated on first use (bench generate reuses it). */
export function checkpointFor(modelsDir: string, shape: string, dtype: StorageDtype, log: (s: string) => void): string {
  const dir = join(modelsDir, `${shape}-${dtype}`);
  const spec = JSON.stringify({ ...LOAD_SHAPES[shape], dtype });
  const marker = join(dir, 'finch-bench-shape.json');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === spec) return dir;
  log(`generating ${shape} (${dtype}) in ${dir}...`);
  rmSync(dir, { recursive: true, force: true });
  writeSyntheticCheckpoint(dir, { ...LOAD_SHAPES[shape], dtype });
  writeFileSync(marker, spec);
  return dir;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench load', argv, {
    shape: { type: 'string', multiple: true }, dtype: { type: 'string', multiple: true }, threads: { type: 'string', default: '2' },
    'models-dir': { type: 'string' }, 'no-4bit': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
    adapter: { type: 'boolean', default: false }, tokens: { type: 'string', default: '1' },
    'first-step': { type: 'boolean', default: false }, 'train-seq': { type: 'string', default: '128' },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const shapes = values.shape ?? Object.keys(LOAD_SHAPES);
  const dtypes = values.dtype ?? Object.keys(DTYPES);
  for (const s of shapes) if (!LOAD_SHAPES[s]) { console.error(`finch bench load: unknown shape "${s}" (choose ${Object.keys(LOAD_SHAPES).join(', ')})`); return 2; }
  for (const d of dtypes) if (!DTYPES[d]) { console.error(`finch bench load: unknown dtype "${d}" (choose bf16, f16)`); return 2; }
  const threads = Number(values.threads);
  const modelsDir = values['models-dir'] ?? join(tmpdir(), 'finch-bench-models');
  const home = join(modelsDir, 'finch-home'); // the bench's own FINCH_HOME: its cache, not the user's
  mkdirSync(home, { recursive: true });
  const env = { ...benchEnv(threads), FINCH_HOME: home };
  const log = (s: string) => { if (!values.json) console.error(s); };
  const prompt = Array.from({ length: 16 }, (_, i) => 3 + 7 * i); // the same ids on both sides

  const entry = new URL('./load-finch.ts', import.meta.url);
  const tokens = Number(values.tokens);
  const finch = (dir: string, quantize: boolean, adapter?: string) => runJsonChild<FinchRun>(process.execPath,
    ['--expose-gc', ...nodeArgsFor(entry), fileURLToPath(entry), JSON.stringify({ dir, threads, prompt, quantize, adapter, tokens, spawnedMs: Date.now() })], env);
  const peer = (dir: string) => runJsonChild<PeerRun>('/usr/bin/python3',
    [fileURLToPath(new URL('./peers/torch_load.py', import.meta.url)), JSON.stringify({ dir, threads, prompt, spawned_ms: Date.now() })], env);

  const rows = [];
  for (const shape of shapes) {
    for (const d of dtypes) {
      const dir = checkpointFor(modelsDir, shape, DTYPES[d]!, log);
      log(`${shape} ${d}: PyTorch...`);
      const p = await peer(dir);
      log(`${shape} ${d}: Finch float...`);
      const f = await finch(dir, false);
      let cold: FinchRun | null = null, warm: FinchRun | null = null, adapted: FinchRun | null = null, warmAdapted: FinchRun | null = null;
      if (values.adapter) {
        log(`${shape} ${d}: Finch float with a LoRA adapter...`);
        adapted = await finch(dir, false, adapterFor(dir));
      }
      if (!values['no-4bit']) {
        rmSync(join(home, 'cache'), { recursive: true, force: true });
        log(`${shape} ${d}: Finch 4-bit, cold...`);
        cold = await finch(dir, true);
        log(`${shape} ${d}: Finch 4-bit, warm...`);
        warm = await finch(dir, true);
        if (values.adapter) {
          log(`${shape} ${d}: Finch 4-bit, warm, with a LoRA adapter...`);
          warmAdapted = await finch(dir, true, adapterFor(dir));
        }
      }
      let first: Awaited<ReturnType<typeof firstStep>> | null = null;
      if (values['first-step']) {
        log(`${shape} ${d}: time to the first training step, PyTorch and Finch...`);
        first = await firstStep(dir, threads, Number(values['train-seq']), env);
      }
      rows.push({
        first_step: first,
        shape, dtype: d, peer: p, finch_float: f, finch_4bit_cold: cold, finch_4bit_warm: warm,
        float_time_ratio: f.first_token_s / p.first_token_s, float_cpu_ratio: f.cpu_s / p.cpu_s, float_rss_ratio: f.peak_rss_mb / p.peak_rss_mb,
        warm_vs_float_time: warm ? warm.first_token_s / f.first_token_s : null,
        warm_vs_float_cpu: warm ? warm.cpu_s / f.cpu_s : null,
        finch_float_adapter: adapted, finch_4bit_warm_adapter: warmAdapted,
        // What a LoRA adapter adds: to the first token (CPU seconds) and, with --tokens, to decoding.
        adapter_cpu_ratio: adapted ? adapted.cpu_s / f.cpu_s : null,
        adapter_4bit_cpu_ratio: warmAdapted && warm ? warmAdapted.cpu_s / warm.cpu_s : null,
        adapter_decode_ratio: adapted?.decode_tokens_per_s && f.decode_tokens_per_s ? f.decode_tokens_per_s / adapted.decode_tokens_per_s : null,
        same_token: p.token === f.token,
      });
    }
  }
  if (values.json) { console.log(JSON.stringify({ threads, rows })); return 0; }
  // Wall time to the first token, CPU seconds (all threads: fairer on a shared machine), peak RSS.
  const fmt = (r: { first_token_s: number; cpu_s: number; peak_rss_mb: number } | null) => (r
    ? `${r.first_token_s.toFixed(1).padStart(5)} s ${r.cpu_s.toFixed(1).padStart(5)} cpu ${(r.peak_rss_mb / 1024).toFixed(2).padStart(5)} GB`
    : '-'.padEnd(26)).padEnd(26);
  console.log(`${'model'.padEnd(18)} ${'PyTorch float32'.padEnd(26)} ${'Finch float'.padEnd(26)} ${'Finch 4-bit cold'.padEnd(26)} ${'Finch 4-bit warm'.padEnd(26)} Finch float / PyTorch: wall, cpu, RSS`);
  for (const r of rows) {
    console.log(`${`${r.shape} ${r.dtype}`.padEnd(18)} ${fmt(r.peer)} ${fmt(r.finch_float)} ${fmt(r.finch_4bit_cold)} ${fmt(r.finch_4bit_warm)} ${r.float_time_ratio.toFixed(2)}x, ${r.float_cpu_ratio.toFixed(2)}x, ${r.float_rss_ratio.toFixed(2)}x`);
  }
  for (const r of rows) {
    const x = (v: number | null) => (v === null ? '-' : `${v.toFixed(2)}x`);
    console.log(`${r.shape} ${r.dtype}: 4-bit warm / float ${x(r.warm_vs_float_time)} wall, ${x(r.warm_vs_float_cpu)} cpu` +
      (r.adapter_cpu_ratio !== null ? `; with an adapter: float ${x(r.adapter_cpu_ratio)} cpu, 4-bit ${x(r.adapter_4bit_cpu_ratio)} cpu, decoding ${x(r.adapter_decode_ratio)} time per token` : '') +
      (r.first_step ? `; first ${r.first_step.seq}-token LoRA step: Finch ${r.first_step.finch.first_step_s.toFixed(1)} s, PyTorch ${r.first_step.peer.first_step_s.toFixed(1)} s (${x(r.first_step.ratio)})` : ''));
  }
  return 0;
}
