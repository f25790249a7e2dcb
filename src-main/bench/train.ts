// `finch bench train`: Finch's compiled LoRA training step against a PyTorch peer (the same
// architecture, frozen float32 base, LoRA on all seven projections, AdamW) in the same run, each
// in its own child process with the same threads and BLAS environment (timing.ts: benchEnv).
// `--estimate` prints the predicted peak memory of a preset instead of running it. `--method dpo`
// (or orpo) measures the preference step against an SFT step over the same rows instead of a peer.

import { parseCommand } from '../cli/args.js';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import { describePlan, estimateDeviceMemory, estimateTrainingMemory, formatBytes } from '../train/memory.js';
import { CPU_DEVICE, leanQloraSettings, planGraph } from '../train/plan.js';
import { COMPUTE_DTYPE_CHOICES, type ComputeDtypeChoice, graphDevice } from '../train/precision.js';
import type { ComputeDtype } from '../model/weights/graph-weights.js';
import { PROVIDER_OPTIONS, PROVIDER_USAGE, chooseProvider, providerFlags } from '../cli/provider.js';
import { PRESETS, type TrainPreset, planJson, presetConfig } from './train-presets.js';
import { type ProfileSummary, formatProfile } from './ort-profile.js';
import { benchEnv, runJsonChild } from './timing.js';
import type { Provider } from '../engine/runtime/session.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseColumnMap } from '../data/formats.js';
import { writeBenchBatches } from './train-data.js';
import type { Method } from '../train/objective.js';
import { METHODS } from '../../src-shared/choices.js';

export interface SideResult {
  tokens_per_s: number; step_s: number; peak_rss_mb: number; loss: number; real_tokens_per_s?: number; padding_fraction?: number;
  /** The Hugging Face peer: its package versions, torch.compile, the attention implementation. */
  versions?: Record<string, string>; compiled?: boolean; attention?: string;
}
export interface FinchResult extends SideResult {
  gflops: number; matmul_peak_gflops: number; estimate_mb: number; host_device_bytes_per_step: number; state_on_device: boolean;
  /** On a GPU provider: the estimated GPU memory and the host memory beside it (train/memory.ts estimateDeviceMemory); null on the CPU. */
  estimate_gpu_mb: number | null; estimate_host_mb: number | null;
  /** With --profile: where the timed steps' time went (ort-profile.ts). */
  profile?: ProfileSummary;
}

const USAGE = `Usage: finch bench train [--preset small|tiny|llama3.2-1b|llama3-8b] [--threads N] [--steps N] [--seq N] [--4bit] [--gradient-checkpointing] [--peer torch|hf] [--peer-compile] [--python PATH] [--no-peer] [--profile DIR] [--estimate] [--host-state] [--provider P] [--strict-provider] [--compute-dtype D] [--json]
       finch bench train --data FILE [--map prompt=COL,completion=COL] [--batch N] [--group-by-length] [--static-seq] [--seed N] [...]
       finch bench train --method dpo|orpo [--batch P] [...]

Tokens/s of Finch's LoRA training step (forward, backward, AdamW: one session.run) against a
PyTorch peer on the same model, batch and thread count, plus MFU: Finch's achieved GFLOP/s as a
fraction of the MatMul peak measured in the same run.
  --peer torch the hand-written PyTorch LoRA step (peers/torch_lora_train.py; default), on Debian's
               python3 unless --python names another
  --peer hf    Hugging Face transformers + PEFT (peers/hf_peft_train.py): LlamaForCausalLM of the
               same shape, LoRA on all seven projections, AdamW, the model's own loss; on --python,
               else $FINCH_PYTHON, else the checkout's .venv/bin/python
  --peer-compile  the hf peer under torch.compile (compiling falls in its warm-up step)
  --profile DIR   ONNX Runtime's profiler on Finch's timed steps: DIR gets the trace and a summary
               by op type and by node (profile.json), and the JSON output gains "profile" (with
               --method dpo|orpo: the preference step's)
  --estimate   print the estimated peak memory (QLoRA, gradient checkpointing) instead of running
  --seq N      tokens per sequence (default: the preset's); with --data, the cap on a row's length
  --gradient-checkpointing  the trainer's memory-saving step (as finch train's flag): two-level
               checkpointing in groups of about sqrt(layers), no ORT memory arena
  --data FILE  train on this dataset's rows (as \`finch train\` prepares them; generated Llama-3
               style tokenizer) and report real (non-padding) tokens/s: Finch pads each batch to
               its own longest row (one symbolic-length session); the peer takes the rows in a
               seeded random order and pads each batch to its own longest row (Hugging Face's
               default collator). GSM8K-shaped rows: npx tsx src-main/bench/gsm8k-shaped.ts FILE
  --map, --batch N, --seed N   the dataset's columns, rows per batch (default: the preset's), order seed
  --group-by-length            Finch puts rows of similar length in the same step (as finch train)
  --static-seq                 Finch pads every batch to the longest row instead (static graph)
  --host-state feed the LoRA parameters and AdamW moments from the host each step, as on the CPU,
               instead of keeping them on the device between steps (WebGPU)
  --compute-dtype D   float32 (default) | float16 | auto: the frozen path's dtype on a GPU (finch train --help)
  --method M   sft (default) | dpo | orpo: with dpo or orpo, time the preference step on --batch
               pairs of random rows (2 x batch rows; DPO adds the reference forward, LoRA off, in the
               same graph) and, in place of the peer, an SFT step over the same 2 x batch rows:
               their peak RSS side by side (DPO's memory cost). Random tokens only (no --data).
${PROVIDER_USAGE}
(the PyTorch peer runs on the CPU)

--preset llama3-8b runs the lean QLoRA plan (the --estimate plan) on random weights generated
straight into 4-bit blocks, and reports the measured peak RSS beside the estimate (no peer:
PyTorch cannot hold an 8B float32 model here).`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench train', argv, {
    preset: { type: 'string', default: 'small' }, threads: { type: 'string', default: '2' }, steps: { type: 'string', default: '5' },
    '4bit': { type: 'boolean', default: false }, 'gradient-checkpointing': { type: 'boolean', default: false }, 'no-peer': { type: 'boolean', default: false }, estimate: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false }, seq: { type: 'string' }, 'host-state': { type: 'boolean', default: false },
    'compute-dtype': { type: 'string', default: 'float32' }, ...PROVIDER_OPTIONS,
    data: { type: 'string' }, map: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string', default: '1' },
    'group-by-length': { type: 'boolean', default: false }, 'static-seq': { type: 'boolean', default: false },
    peer: { type: 'string', default: 'torch' }, 'peer-compile': { type: 'boolean', default: false }, python: { type: 'string' }, profile: { type: 'string' },
    method: { type: 'string', default: 'sft' },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const named = PRESETS[values.preset];
  if (!named) { console.error(`finch bench train: unknown preset "${values.preset}" (choose ${Object.keys(PRESETS).join(', ')})`); return 2; }
  // With --data, --seq caps a row's length (default: room for GSM8K-length rows).
  const seq = values.seq === undefined ? (values.data ? 1024 : named.seq) : Number(values.seq);
  if (!Number.isInteger(seq) || seq < 2) { console.error(`finch bench train: --seq must be an integer >= 2, got "${values.seq}"`); return 2; }
  const batch = values.batch === undefined ? named.batch : Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1) { console.error(`finch bench train: --batch must be an integer >= 1, got "${values.batch}"`); return 2; }
  const preset: TrainPreset = { ...named, seq, batch };
  const method = values.method as Method;
  if (!METHODS.includes(method)) { console.error(`finch bench train: --method must be one of ${METHODS.join(', ')}, got "${values.method}"`); return 2; }
  if (method !== 'sft' && (values.data || preset.name === 'llama3-8b')) { console.error(`finch bench train: --method ${method} times random pairs on a float or 4-bit preset: leave out --data and --preset llama3-8b`); return 2; }
  const peerName = values.peer as PeerName;
  if (!PEER_NAMES.includes(peerName)) { console.error(`finch bench train: --peer must be one of ${PEER_NAMES.join(', ')}, got "${values.peer}"`); return 2; }
  if (values['peer-compile'] && peerName !== 'hf') { console.error('finch bench train: --peer-compile compiles the Hugging Face peer: use it with --peer hf'); return 2; }
  // Before Finch's step (minutes on large presets): a peer that cannot start is a usage error now.
  const peerPython = peerName === 'hf' ? hfPeerPython(values.python) : values.python;
  if (!values['no-peer'] && peerPython?.includes('/') && !existsSync(peerPython)) {
    console.error(`finch bench train: no Python at ${peerPython} for the ${PEER_LABELS[peerName]} peer: name one with --python${peerName === 'hf' ? ' or FINCH_PYTHON, or build the checkout\'s venv (.ci/run venv)' : ''}, or pass --no-peer`);
    return 2;
  }
  const dtypeChoice = values['compute-dtype'] as ComputeDtypeChoice;
  if (!COMPUTE_DTYPE_CHOICES.includes(dtypeChoice)) { console.error(`finch bench train: --compute-dtype must be one of ${COMPUTE_DTYPE_CHOICES.join(', ')}, got "${dtypeChoice}"`); return 2; }
  if (values.estimate) {
    // On a GPU with the dtype asked for (auto: float32, as no adapter is looked at here).
    const cfg = presetConfig(preset);
    const plan = planGraph({ ...leanQloraSettings(preset.batch, preset.seq), method }, cfg, { ...CPU_DEVICE, computeDtype: dtypeChoice === 'float16' ? 'float16' : 'float32' });
    const est = estimateTrainingMemory(cfg, plan);
    const onGpu = estimateDeviceMemory(cfg, plan);
    if (values.json) console.log(JSON.stringify({ preset: preset.name, plan: planJson(plan), ...est, gpu: onGpu }));
    else {
      console.log(`Estimated peak memory, ${preset.name} QLoRA (${describePlan(plan)}):`);
      for (const [k, v] of Object.entries(est.parts)) console.log(`  ${k.padEnd(28)} ${formatBytes(v)}`);
      console.log(`  ${'total'.padEnd(28)} ${formatBytes(est.totalBytes)}`);
      console.log(`On a GPU provider: ${formatBytes(onGpu.gpuBytes)} GPU memory + ${formatBytes(onGpu.hostBytes)} host memory`);
    }
    return 0;
  }
  const threads = Number(values.threads), steps = Number(values.steps);
  const device = await chooseProvider(providerFlags(values), values.json ? () => {} : undefined);
  let onDevice: ReturnType<typeof graphDevice>;
  try { onDevice = graphDevice(device, dtypeChoice); } catch (e) { console.error(`finch bench train: ${(e as Error).message}`); return 2; }
  const { computeDtype } = onDevice;
  const env = benchEnv(threads);
  const log = (s: string) => { if (!values.json) console.error(s); };
  if (preset.name === 'llama3-8b') return leanStep(preset, threads, steps, env, values.json, log);
  const stepOptions = {
    threads, steps, quantize: values['4bit'], checkpointLayers: values['gradient-checkpointing'], provider: device.provider, strict: device.strict, hostState: values['host-state'], computeDtype, maxWeightBytes: onDevice.maxWeightBytes,
    profile: values.profile ? resolve(values.profile) : undefined,
  };
  if (method !== 'sft') return preferenceStep(preset, method, stepOptions, env, values.json, log);
  const work = values.data ? mkdtempSync(join(tmpdir(), 'finch-bench-train-')) : null;
  try {
    let data: Awaited<ReturnType<typeof writeBenchBatches>> | null = null;
    if (values.data) {
      const seed = Number(values.seed);
      log(`data: preparing ${values.data}...`);
      data = await writeBenchBatches(work!, values.data, { map: values.map ? parseColumnMap(values.map) : undefined, batch, count: steps + 1, seqCap: seq, seed, groupByLength: values['group-by-length'] });
      log(`data: ${data.info.rows} rows, ${data.info.lengths.min}-${data.info.lengths.max} tokens (mean ${data.info.lengths.mean.toFixed(0)}); padding ${(data.info.finchPadding * 100).toFixed(1)}% Finch, ${(data.info.peerPadding * 100).toFixed(1)}% peer`);
    }
    const dataOpts = data ? { batches: data.path, staticSeq: values['static-seq'] } : {};
    if (data) preset.vocab = Math.max(preset.vocab, data.info.vocab); // the tokenizer's ids must be embedding rows
    log(`finch: ${preset.name} preset, batch ${batch}, ${threads} threads, ${steps} steps...`);
    const finch = await runFinchStep(preset, { ...stepOptions, ...dataOpts }, env);
    let peer: SideResult | null = null;
    if (!values['no-peer']) {
      log(`peer: ${PEER_LABELS[peerName]}${values['peer-compile'] ? ' under torch.compile' : ''}...`);
      peer = await runPeer(peerName, preset, { threads, steps, env, python: values.python, compile: values['peer-compile'], checkpointing: values['gradient-checkpointing'], batches: data?.path });
    }
    const result = {
      preset: preset.name,
      threads,
      finch: {
        tokens_per_s: finch.tokens_per_s, peak_rss_mb: finch.peak_rss_mb, step_s: finch.step_s, loss: finch.loss, gflops: finch.gflops,
        estimate_mb: finch.estimate_mb, estimate_gpu_mb: finch.estimate_gpu_mb, estimate_host_mb: finch.estimate_host_mb, compute_dtype: computeDtype,
        provider: device.provider, adapter: device.adapter, host_device_bytes_per_step: finch.host_device_bytes_per_step,
        state_on_device: finch.state_on_device,
        ...(data ? { real_tokens_per_s: finch.real_tokens_per_s, padding_fraction: finch.padding_fraction,
          batch_shape: values['static-seq'] ? 'dataset-longest' : 'own-longest', group_by_length: values['group-by-length'] } : {}),
      },
      // loss: the last timed step's, on each side (the same model from random weights: about ln(vocab) at first).
      peer: peer ? { tokens_per_s: peer.tokens_per_s, peak_rss_mb: peer.peak_rss_mb, step_s: peer.step_s, loss: peer.loss,
        ...(peer.versions ? { versions: peer.versions, compiled: peer.compiled, attention: peer.attention } : {}),
        ...(data ? { real_tokens_per_s: peer.tokens_per_s, padding_fraction: data.info.peerPadding } : {}) } : null,
      // Which peer the ratio is against: "torch" (the hand-written step), "hf" or "hf-compiled".
      peer_name: peer ? (peerName === 'hf' && values['peer-compile'] ? 'hf-compiled' : peerName) : null,
      ...(data ? { data: { file: values.data, rows: data.info.rows, batch, max_seq: data.info.maxSeq, lengths: data.info.lengths } } : {}),
      ratio: peer ? finch.tokens_per_s / peer.tokens_per_s : null,
      mfu: finch.gflops / finch.matmul_peak_gflops,
      matmul_peak_gflops: finch.matmul_peak_gflops,
      ...(finch.profile ? { profile: finch.profile } : {}),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(`Finch   ${finch.tokens_per_s.toFixed(0)} tokens/s, ${finch.step_s.toFixed(3)} s/step, peak RSS ${finch.peak_rss_mb.toFixed(0)} MB (estimated ${finch.estimate_mb.toFixed(0)} MB), ${finch.gflops.toFixed(0)} GFLOP/s on ${device.provider}`);
      if (device.provider !== 'cpu') {
        console.log(`        ${(finch.host_device_bytes_per_step / 2 ** 10).toFixed(1)} KiB host<->device per step (LoRA state ${finch.state_on_device ? 'kept on the device' : 'fed from the host'})`);
        console.log(`        estimated ${finch.estimate_gpu_mb!.toFixed(0)} MB GPU + ${finch.estimate_host_mb!.toFixed(0)} MB host memory (frozen path ${computeDtype})`);
      }
      if (peer) console.log(`${peer.versions ? 'HF+PEFT' : 'PyTorch'} ${peer.tokens_per_s.toFixed(0)} tokens/s, ${peer.step_s.toFixed(3)} s/step, peak RSS ${peer.peak_rss_mb.toFixed(0)} MB`);
      if (result.ratio) console.log(`ratio   ${result.ratio.toFixed(2)}x`);
      console.log(`MFU     ${(result.mfu * 100).toFixed(0)}% of the measured MatMul peak (${finch.matmul_peak_gflops.toFixed(0)} GFLOP/s)`);
      if (finch.profile) console.log(formatProfile(finch.profile));
      if (data) console.log(`(tokens/s count real tokens; padding ${((finch.padding_fraction ?? 0) * 100).toFixed(1)}% Finch, ${(data.info.peerPadding * 100).toFixed(1)}% peer)`);
    }
    return 0;
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `--method dpo|orpo`: the preference step on `preset.batch` pairs, then an SFT step on the same
 * 2 x batch rows, each in its own child process; their peak RSS side by side.
 */
async function preferenceStep(preset: TrainPreset, method: Exclude<Method, 'sft'>, o: FinchStepOptions, env: NodeJS.ProcessEnv, json: boolean, log: (s: string) => void): Promise<number> {
  const rows = 2 * preset.batch;
  log(`finch: ${preset.name} preset, ${method} on ${preset.batch} pairs (${rows} rows of ${preset.seq} tokens), ${o.threads} threads, ${o.steps} steps...`);
  const pref = await runFinchStep(preset, { ...o, method }, env);
  log(`finch: the SFT step on the same ${rows} rows...`);
  // --profile is the preference step's: the SFT step beside it is there for its peak RSS.
  const sft = await runFinchStep({ ...preset, batch: rows }, { ...o, profile: undefined }, env);
  const side = (r: FinchResult) => ({ tokens_per_s: r.tokens_per_s, step_s: r.step_s, peak_rss_mb: r.peak_rss_mb, estimate_mb: r.estimate_mb, loss: r.loss });
  const result = {
    preset: preset.name, threads: o.threads, method, pairs: preset.batch, rows, seq: preset.seq, quantize: o.quantize, gradient_checkpointing: o.checkpointLayers ?? false, provider: o.provider,
    finch: side(pref), sft: side(sft),
    /** The preference step's peak RSS over the SFT step's (the bound for DPO: at most 1.15). */
    rss_ratio: pref.peak_rss_mb / sft.peak_rss_mb,
    time_ratio: pref.step_s / sft.step_s,
    ...(pref.profile ? { profile: pref.profile } : {}),
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(`${method.toUpperCase().padEnd(4)} ${preset.batch} pairs: ${pref.step_s.toFixed(3)} s/step, peak RSS ${pref.peak_rss_mb.toFixed(0)} MB (estimated ${pref.estimate_mb.toFixed(0)} MB)`);
    console.log(`SFT  ${rows} rows:  ${sft.step_s.toFixed(3)} s/step, peak RSS ${sft.peak_rss_mb.toFixed(0)} MB (estimated ${sft.estimate_mb.toFixed(0)} MB)`);
    console.log(`${method.toUpperCase()} / SFT: peak RSS ${result.rss_ratio.toFixed(3)}x, step time ${result.time_ratio.toFixed(2)}x`);
    if (pref.profile) console.log(formatProfile(pref.profile));
  }
  return 0;
}

type FinchStepOptions = {
  threads: number; steps: number; quantize: boolean; checkpointLayers?: boolean; provider: Provider; strict: boolean; hostState?: boolean; computeDtype?: ComputeDtype; maxWeightBytes?: number;
  batches?: string; staticSeq?: boolean; method?: Method;
  /** A folder for ONNX Runtime's profile of the step session (train-finch.ts). */
  profile?: string;
};

/** One measured Finch LoRA step of a preset (train-finch.ts) in a child process. */
export async function runFinchStep(preset: TrainPreset,
  o: FinchStepOptions,
  env: NodeJS.ProcessEnv): Promise<FinchResult> {
  const entry = new URL('./train-finch.ts', import.meta.url);
  return runJsonChild<FinchResult>(process.execPath, ['--expose-gc', ...nodeArgsFor(entry), fileURLToPath(entry),
    JSON.stringify({ preset, threads: o.threads, steps: o.steps, warmup: 1, quantize: o.quantize, checkpointLayers: o.checkpointLayers ?? false, provider: o.provider, strict: o.strict, hostState: o.hostState ?? false,
      computeDtype: o.computeDtype, maxWeightBytes: o.maxWeightBytes !== undefined && Number.isFinite(o.maxWeightBytes) ? o.maxWeightBytes : undefined,
      batches: o.batches, staticSeq: o.staticSeq, method: o.method, profile: o.profile })], env);
}

export const PEER_NAMES = ['torch', 'hf'] as const;
export type PeerName = (typeof PEER_NAMES)[number];
const PEER_LABELS: Record<PeerName, string> = { torch: 'PyTorch (hand-written LoRA)', hf: 'transformers + PEFT' };

/** The checkout's Python venv (.ci/run venv: torch 2.13 CPU, transformers, peft). */
const CHECKOUT_VENV_PYTHON = fileURLToPath(new URL('../../.venv/bin/python', import.meta.url));

/** The Python of the Hugging Face peer: the one named, else $FINCH_PYTHON, else the checkout's venv. */
export function hfPeerPython(named?: string): string {
  return named || process.env.FINCH_PYTHON || CHECKOUT_VENV_PYTHON;
}

export interface PeerOptions {
  threads: number; steps: number; env: NodeJS.ProcessEnv;
  /** The Python to run (default: Debian's python3 for torch, hfPeerPython() for hf). */
  python?: string;
  /** hf: torch.compile the model. */
  compile?: boolean;
  /** hf: the model's gradient checkpointing, as Finch's --gradient-checkpointing (the torch peer has none). */
  checkpointing?: boolean;
  batches?: string;
}

/** The chosen CPU peer's step on the same preset and data. */
export async function runPeer(name: PeerName, preset: TrainPreset, o: PeerOptions): Promise<SideResult> {
  if (name === 'torch') return runTorchPeer(preset, o.threads, o.steps, o.env, 'cpu', o.python, o.batches);
  return runHfPeer(preset, o);
}

/** transformers + PEFT on the preset's shape (peers/hf_peft_train.py). */
export async function runHfPeer(preset: TrainPreset, o: PeerOptions): Promise<SideResult> {
  const python = hfPeerPython(o.python);
  if (python.includes('/') && !existsSync(python)) {
    throw new Error(`no Python at ${python} for the transformers + PEFT peer: name one with --python or FINCH_PYTHON, or build the checkout's venv (.ci/run venv)`);
  }
  return runJsonChild<SideResult>(python, [fileURLToPath(new URL('./peers/hf_peft_train.py', import.meta.url)), JSON.stringify({
    threads: o.threads, hidden: preset.hidden, layers: preset.layers, heads: preset.heads, kv_heads: preset.kvHeads, intermediate: preset.intermediate,
    vocab: preset.vocab, batch: preset.batch, seq: preset.seq, rank: preset.rank, alpha: preset.alpha, rope_theta: presetConfig(preset).ropeTheta,
    // torch.compile may compile again on the second call (its guards see the optimizer's state change).
    warmup: o.compile ? 2 : 1, steps: o.steps, compile: o.compile ?? false, checkpointing: o.checkpointing ?? false, batches: o.batches,
  })], o.env);
}

/** The PyTorch peer's step on the same preset; `device` is a torch device ('cpu', 'cuda'; ROCm builds also call theirs 'cuda'). */
export async function runTorchPeer(preset: TrainPreset, threads: number, steps: number, env: NodeJS.ProcessEnv, device = 'cpu', python = '/usr/bin/python3', batches?: string): Promise<SideResult & { gpu_peak_mb?: number }> {
  return runJsonChild<SideResult>(python, [fileURLToPath(new URL('./peers/torch_lora_train.py', import.meta.url)), JSON.stringify({
    threads, hidden: preset.hidden, layers: preset.layers, heads: preset.heads, kv_heads: preset.kvHeads, intermediate: preset.intermediate,
    vocab: preset.vocab, batch: preset.batch, seq: preset.seq, rank: preset.rank, alpha: preset.alpha, warmup: 1, steps, device, batches,
  })], env);
}

interface LeanResult { seq: number; peak_rss_mb: number; estimate_mb: number; build_peak_rss_mb: number; build_s: number; session_s: number; step_s: number; tokens_per_s: number; loss: number }

/** The measured lean QLoRA step (train-lean.ts) of a preset too large for float weights or a peer. */
async function leanStep(preset: TrainPreset, threads: number, steps: number, env: NodeJS.ProcessEnv, json: boolean, log: (s: string) => void): Promise<number> {
  const entry = new URL('./train-lean.ts', import.meta.url);
  log(`finch: ${preset.name}, lean QLoRA plan, 1 x ${preset.seq} tokens, ${threads} threads, ${steps} step(s)...`);
  const r = await runJsonChild<LeanResult>(process.execPath, ['--expose-gc', ...nodeArgsFor(entry), fileURLToPath(entry),
    JSON.stringify({ preset, threads, steps, seq: preset.seq })], env);
  if (json) {
    console.log(JSON.stringify({ preset: preset.name, threads, seq: r.seq, finch: r, peer: null, ratio: null }));
    return 0;
  }
  console.log(`Finch ${preset.name} QLoRA step, 1 x ${r.seq}: peak RSS ${(r.peak_rss_mb / 1024).toFixed(2)} GiB measured, ${(r.estimate_mb / 1024).toFixed(2)} GiB estimated ` +
    `(${((r.estimate_mb / r.peak_rss_mb - 1) * 100).toFixed(0)}%); step ${r.step_s.toFixed(1)} s (${r.tokens_per_s.toFixed(1)} tokens/s), ` +
    `session ${r.session_s.toFixed(1)} s, graph build and write ${r.build_s.toFixed(1)} s (peak ${(r.build_peak_rss_mb / 1024).toFixed(2)} GiB)`);
  return 0;
}
