// What the machine offers (providers, memory), what 'auto' picks, the memory verdict of a run
// config before it starts, and the app's settings. The provider choice is the engine's
// (engine/runtime/providers.ts chooseAuto), the one `finch doctor` and `finch train` make.

import { cpus, freemem, totalmem } from 'node:os';
import {
  PROVIDER_NAMES, type AppInfo, type MemoryEstimateResult, type ProviderChoice, type ProviderInfo, type ProviderName, type WebGpuAdapterInfo,
} from '../../src-shared/api.js';
import type { RunSettings } from '../../src-shared/run-config.js';
import { type GpuMemoryReading, gpuForRun } from '../engine/runtime/gpu-memory.js';
import { type GpuAdapter, type MachineProviders, type ProviderDecision, adapterLabel, adapterName, chooseAuto } from '../engine/runtime/providers.js';
import { PROVIDERS } from '../engine/runtime/session.js';
import { loadModelConfigAsync } from '../model/config.js';
import type { ModelConfig } from '../model/types.js';
import { estimateDeviceMemory, estimateTrainingMemory, formatBytes, frozenBytes, projectionShapes } from '../train/memory.js';
import { type GraphDevice, planGraph, seqLenRefusal } from '../train/plan.js';
import { graphDevice } from '../train/precision.js';
import { ServiceError } from './errors.js';

// The engine's provider list and the contract's are one list written twice (the renderer cannot
// import the engine): these lines stop compiling when the two differ in any name or in order.
PROVIDERS satisfies typeof PROVIDER_NAMES;
PROVIDER_NAMES satisfies typeof PROVIDERS;

export function providers(m: MachineProviders): ProviderInfo[] {
  return PROVIDER_NAMES.map((name): ProviderInfo => {
    if (name === 'cpu') return { name, available: true, note: 'every machine' };
    if (!m.built.includes(name)) return { name, available: false, note: 'not in this build of ONNX Runtime for this platform' };
    if (!m.installed.includes(name)) return { name, available: false, note: name === 'cuda' ? 'needs the CUDA provider libraries (see README: CUDA on Linux)' : 'its libraries are not installed' };
    if (name === 'webgpu') {
      const hardware = m.adapters.find((a) => !a.software);
      if (hardware) return { name, available: true, note: adapterLabel(hardware) };
      if (m.adapters[0]) return { name, available: true, note: `only a software adapter (${adapterName(m.adapters[0])}): slower than the CPU` };
      return { name, available: false, note: m.adapterError ?? 'no WebGPU adapter' };
    }
    return { name, available: true, note: name === 'dml' ? 'DirectX 12 GPUs' : '' };
  });
}

export function adapterInfo(a: GpuAdapter): WebGpuAdapterInfo {
  return { name: adapterName(a), backend: a.backend, vendor: a.vendor, architecture: a.architecture, software: a.software };
}

/** Where an app run goes: its own choice, else the settings' default; `auto` decided as `finch doctor` decides it. */
export function runProvider(choice: ProviderChoice, settingsDefault: ProviderChoice, m: MachineProviders): ProviderName {
  return runDecision(choice, settingsDefault, m).provider;
}

export function appInfo(o: Pick<AppInfo, 'version' | 'finchHome' | 'browserMode' | 'hfTokenSet' | 'hfTokenStorage'>, m: MachineProviders): AppInfo {
  const auto = chooseAuto(m);
  return {
    version: o.version, platform: process.platform, arch: process.arch, cpus: cpus().length, totalMemory: totalmem(), freeMemory: freemem(),
    providers: providers(m), auto: { provider: auto.provider, reason: auto.reason, adapter: auto.adapter && adapterInfo(auto.adapter) },
    finchHome: o.finchHome, browserMode: o.browserMode, hfTokenSet: o.hfTokenSet, hfTokenStorage: o.hfTokenStorage,
  };
}

/** Where an app run goes, with its WebGPU adapter (runProvider); a provider this machine lacks is kept, as the run would fail with its own message. */
export function runDecision(choice: ProviderChoice, settingsDefault: ProviderChoice, m: MachineProviders): Pick<ProviderDecision, 'provider' | 'adapter'> {
  const c = choice === 'auto' ? settingsDefault : choice;
  if (c === 'auto') return chooseAuto(m);
  return { provider: c, adapter: c === 'webgpu' ? m.adapters.find((a) => !a.software) ?? m.adapters[0] ?? null : null };
}

/** A need against what is free: under 70% fits, up to all of it is tight. */
function judge(need: number, free: number): MemoryEstimateResult['verdict'] {
  return need <= 0.7 * free ? 'fits' : need <= free ? 'tight' : 'will-not-fit';
}
const WORST: readonly MemoryEstimateResult['verdict'][] = ['will-not-fit', 'unknown', 'tight', 'fits'];

/**
 * Refuses, before a run is queued, what cannot work, saying why and what to do: a sequence length
 * beyond the model's positions (train/plan.ts seqLenRefusal, the trainer's rule too), and a run whose memory
 * verdict is 'will-not-fit' unless its config sets ignoreMemoryEstimate. `finch train` refuses the
 * same (memoryRefusal).
 */
export async function refuseUnfit(modelPath: string, c: RunSettings, decision: Pick<ProviderDecision, 'provider' | 'adapter'>, gpus: GpuMemoryReading): Promise<void> {
  const tooLong = seqLenRefusal(c.seqLen, await loadModelConfigAsync(modelPath), modelPath);
  if (tooLong) throw new ServiceError('invalid_argument', tooLong.message, tooLong.hint, '0.seqLen');
  const refusal = memoryRefusal(await estimateMemory(modelPath, c, decision, gpus), c);
  if (refusal) throw new ServiceError('conflict', refusal.message, refusal.hint, '0.ignoreMemoryEstimate');
}

/** Why a run with this estimate should not start (verdict 'will-not-fit', no override), with the suggestions; null when it may. */
export function memoryRefusal(est: MemoryEstimateResult, c: Pick<RunSettings, 'ignoreMemoryEstimate'>): { message: string; hint: string } | null {
  if (est.verdict !== 'will-not-fit' || c.ignoreMemoryEstimate) return null;
  const gpu = est.gpuBytes !== null ? ` (and ${formatBytes(est.gpuBytes)} of GPU memory)` : '';
  return {
    message: `this run needs about ${formatBytes(est.hostBytes)} of memory${gpu}, and ${formatBytes(est.availableHostBytes)} is free` +
      `${est.availableGpuBytes !== null ? ` (${formatBytes(est.availableGpuBytes)} of ${est.gpuName ?? 'the GPU'}'s memory)` : ''}: it will not fit`,
    hint: `${est.suggestions.length ? `try: ${est.suggestions.map((s) => s.text).join('; ')}. ` : ''}` +
      'To start it anyway, set ignoreMemoryEstimate (--ignore-memory-estimate): it may then fail, or swap and crawl',
  };
}

/** How many times the machine's memory a floor (floorBytes) may be before the full plan is skipped. */
const HOPELESS = 64;

/**
 * Memory no plan of `x` does without, two parts of estimateTrainingMemory's total: the [B, 1, T, T]
 * attention mask and the frozen layer weights (4-bit or float32). Past HOPELESS times the machine's
 * memory the estimate is this floor: the full plan of such a run (a 1M-token vocabulary over 4096
 * × 131072 rows is cut into a million pieces) is seconds of work that would hold up the server's
 * other calls to say what the floor already says, "will not fit".
 */
function floorBytes(cfg: ModelConfig, x: RunSettings): { parts: Record<string, number>; totalBytes: number } {
  const parts = {
    'inputs (ids, mask)': x.batch * x.seqLen * x.seqLen * 4,
    'frozen weights (layers)': cfg.numLayers * projectionShapes(cfg).reduce((s, [n, k]) => s + frozenBytes(n, k, x.quantize, x.blockSize), 0),
  };
  return { parts, totalBytes: parts['inputs (ids, mask)'] + parts['frozen weights (layers)'] };
}

/**
 * The memory verdict of a run where it would run (`decision`: runDecision). On the CPU the step's
 * host memory against free host memory. On a GPU the step as the trainer would build it there
 * (train/precision.ts graphDevice: `auto` is float16 on a shader-f16 adapter) against the free
 * memory of the GPU it runs on (`gpus`: engine/runtime/gpu-memory.ts), and the host memory beside
 * it against free host memory; on unified memory (Apple) or a software adapter both together
 * against the host's. A GPU whose memory cannot be read gives the verdict 'unknown', with the
 * reason in gpuNote.
 */
export async function estimateMemory(modelPath: string, c: RunSettings, decision: Pick<ProviderDecision, 'provider' | 'adapter'>, gpus: GpuMemoryReading,
  host: { free: number; total: number } = { free: freemem(), total: totalmem() }): Promise<MemoryEstimateResult> {
  // A config is read within Finch's limits (model/config.ts CONFIG_LIMITS): every size below is bounded.
  const cfg = await loadModelConfigAsync(modelPath);
  const { provider } = decision;
  const onGpu = provider !== 'cpu';
  // The trainer's graph plan on that provider; a float16 request a GPU cannot run is estimated as float32 (the run itself will refuse it).
  let device: GraphDevice;
  try { device = graphDevice(decision, c.computeDtype); } catch { device = graphDevice(decision, 'float32'); }
  const plan = (x: RunSettings) => planGraph(x, cfg, device);
  const run = gpuForRun(decision, gpus);
  const gpu = run?.gpu ?? null;
  // Unified memory, or a software WebGPU adapter (its buffers are host memory): one pool for both needs.
  const sharesHost = gpu?.unified === true || (decision.provider === 'webgpu' && decision.adapter?.software === true);
  // What the verdict is judged on: [GPU bytes or null, host bytes] of a config.
  const need = (x: RunSettings): { gpuBytes: number | null; hostBytes: number; parts: Record<string, number> } => {
    const floor = floorBytes(cfg, x);
    if (floor.totalBytes > HOPELESS * host.total) return { gpuBytes: onGpu ? floor.totalBytes : null, hostBytes: floor.totalBytes, parts: floor.parts };
    if (!onGpu) {
      const e = estimateTrainingMemory(cfg, plan(x));
      return { gpuBytes: null, hostBytes: e.totalBytes, parts: e.parts };
    }
    const e = estimateDeviceMemory(cfg, plan(x));
    return { gpuBytes: e.gpuBytes, hostBytes: e.hostBytes, parts: e.gpuParts };
  };
  const verdictOf = (n: ReturnType<typeof need>): MemoryEstimateResult['verdict'] => {
    if (n.gpuBytes === null) return judge(n.hostBytes, host.free);
    if (sharesHost) return judge(n.gpuBytes + n.hostBytes, host.free);
    const onHost = judge(n.hostBytes, host.free);
    const onDevice = gpu ? judge(n.gpuBytes, gpu.totalBytes - gpu.usedBytes) : 'unknown';
    return WORST.find((v) => v === onHost || v === onDevice)!;
  };
  // The figure suggestions are ranked by: the GPU's need on a GPU, else the host's.
  const key = (n: ReturnType<typeof need>) => n.gpuBytes ?? n.hostBytes;
  const est = need(c);
  const verdict = verdictOf(est);
  const candidates: { text: string; change: Partial<RunSettings> }[] = [];
  if (!c.quantize) candidates.push({ text: 'load the base model in 4 bits (QLoRA)', change: { quantize: true } });
  if (!c.checkpointLayers) candidates.push({ text: 'turn on gradient checkpointing (recompute activations in the backward pass)', change: { checkpointLayers: true } });
  if (c.batch > 1) candidates.push({ text: `halve the batch to ${Math.floor(c.batch / 2)} and double gradient accumulation (same effective batch)`, change: { batch: Math.floor(c.batch / 2), gradAccum: c.gradAccum * 2 } });
  if (c.seqLen > 256) candidates.push({ text: `shorten sequences to ${c.seqLen / 2} tokens`, change: { seqLen: Math.floor(c.seqLen / 2) } });
  const scored = candidates.map((s) => ({ ...s, n: need({ ...c, ...s.change }) })).filter((s) => key(s.n) < key(est));
  if (scored.length > 1) {
    // When no single change is enough, all of them together may be.
    const change = Object.assign({}, ...scored.map((s) => s.change)) as Partial<RunSettings>;
    scored.push({ text: 'all of these together', change, n: need({ ...c, ...change }) });
  }
  const suggestions = verdict === 'fits' ? [] : scored
    .sort((a, b) => key(a.n) - key(b.n))
    .map((s) => ({ text: `${s.text}: ${formatBytes(key(s.n))}`, change: s.change, hostBytes: s.n.hostBytes, gpuBytes: s.n.gpuBytes }));
  return {
    hostBytes: est.hostBytes, parts: est.parts, gpuBytes: est.gpuBytes,
    availableHostBytes: host.free, totalHostBytes: host.total,
    availableGpuBytes: gpu ? gpu.totalBytes - gpu.usedBytes : null, totalGpuBytes: gpu?.totalBytes ?? null,
    gpuName: gpu?.name ?? null, gpuNote: run?.note ?? null, unifiedMemory: sharesHost,
    computeDtype: device.computeDtype, verdict, provider, suggestions,
  };
}
