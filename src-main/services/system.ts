// What the machine offers (providers, memory), what 'auto' picks, the memory verdict of a run
// config before it starts, and the app's settings.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, freemem, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { PROVIDER_NAMES, type AppInfo, type MemoryEstimateResult, type ProviderInfo, type ProviderName, type RunConfig } from '../../src-shared/api.js';
import { availableProviders } from '../engine/runtime/session.js';
import { loadModelConfig } from '../model/config.js';
import { estimateDeviceMemory, estimateTrainingMemory, formatBytes } from '../train/memory.js';
import { type GraphDevice, planGraph } from '../train/plan.js';
import { maxWeightBytes } from '../train/precision.js';


/** CUDA is listed by onnxruntime-node on Linux x64 even when its provider libraries were never downloaded. */
function cudaInstalled(): boolean {
  try {
    const ort = dirname(createRequire(import.meta.url).resolve('onnxruntime-node'));
    const bin = join(ort, '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(bin, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

export function providers(): ProviderInfo[] {
  const listed = new Set(availableProviders().map((p) => p.name));
  return PROVIDER_NAMES.map((name): ProviderInfo => {
    if (name === 'cpu') return { name, available: true, note: 'every machine' };
    if (!listed.has(name)) return { name, available: false, note: 'not in this build of ONNX Runtime for this platform' };
    if (name === 'cuda' && !cudaInstalled()) return { name, available: false, note: 'needs the CUDA provider libraries (see README: CUDA on Linux)' };
    if (name === 'webgpu') return { name, available: true, note: process.platform === 'win32' ? 'D3D12' : process.platform === 'darwin' ? 'Metal' : 'Vulkan (needs a GPU driver)' };
    return { name, available: true, note: name === 'dml' ? 'DirectX 12 GPUs' : '' };
  });
}

/**
 * What 'auto' runs on: CUDA where its libraries are installed, DirectML on Windows, else the CPU.
 * WebGPU is offered but not picked automatically: Finch cannot yet tell a real GPU from a software
 * Vulkan driver (Mesa's lavapipe), on which the CPU provider is faster.
 */
export function autoProvider(list = providers()): { provider: ProviderName; reason: string } {
  const has = (n: ProviderName) => list.some((p) => p.name === n && p.available);
  if (has('cuda')) return { provider: 'cuda', reason: 'the CUDA provider libraries are installed (NVIDIA GPU)' };
  if (has('dml')) return { provider: 'dml', reason: 'DirectML runs on any DirectX 12 GPU on Windows' };
  return { provider: 'cpu', reason: has('webgpu') ? 'no CUDA or DirectML here; choose WebGPU yourself if this machine has a GPU with a Vulkan/Metal driver' : 'no GPU provider in this build' };
}

export function appInfo(o: { version: string; finchHome: string; browserMode: boolean; hfTokenSet: boolean }): AppInfo {
  const list = providers();
  return {
    version: o.version, platform: process.platform, arch: process.arch, cpus: cpus().length, totalMemory: totalmem(), freeMemory: freemem(),
    providers: list, auto: autoProvider(list), finchHome: o.finchHome, browserMode: o.browserMode, hfTokenSet: o.hfTokenSet,
  };
}

/** Verdict thresholds: under 70% of the memory free now fits; up to all of it is tight. */
export function estimateMemory(modelPath: string, c: RunConfig): MemoryEstimateResult {
  const cfg = loadModelConfig(modelPath);
  const provider = c.provider === 'auto' ? autoProvider().provider : c.provider;
  // The trainer's graph plan on that provider. No adapter is known here: WebGPU's default buffer
  // limit, and float16 only where asked for (it changes the GPU estimate, not the host one).
  const device: GraphDevice = { computeDtype: c.computeDtype === 'float16' ? 'float16' : 'float32', maxWeightBytes: maxWeightBytes({ provider, adapter: null }) };
  const plan = (x: RunConfig) => planGraph(x, cfg, device);
  const need = (x: RunConfig) => estimateTrainingMemory(cfg, plan(x));
  const est = need(c);
  const available = freemem(), total = totalmem();
  const verdict = est.totalBytes <= 0.7 * available ? 'fits' : est.totalBytes <= available ? 'tight' : 'will-not-fit';
  const candidates: { text: string; change: Partial<RunConfig> }[] = [];
  if (!c.quantize) candidates.push({ text: 'load the base model in 4 bits (QLoRA)', change: { quantize: true } });
  if (!c.checkpointLayers) candidates.push({ text: 'turn on gradient checkpointing (recompute activations in the backward pass)', change: { checkpointLayers: true } });
  if (c.batch > 1) candidates.push({ text: `halve the batch to ${Math.floor(c.batch / 2)} and double gradient accumulation (same effective batch)`, change: { batch: Math.floor(c.batch / 2), gradAccum: c.gradAccum * 2 } });
  if (c.seqLen > 256) candidates.push({ text: `shorten sequences to ${c.seqLen / 2} tokens`, change: { seqLen: Math.floor(c.seqLen / 2) } });
  const scored = candidates.map((s) => ({ ...s, hostBytes: need({ ...c, ...s.change }).totalBytes })).filter((s) => s.hostBytes < est.totalBytes);
  if (scored.length > 1) {
    // When no single change is enough, all of them together may be.
    const change = Object.assign({}, ...scored.map((s) => s.change)) as Partial<RunConfig>;
    scored.push({ text: 'all of these together', change, hostBytes: need({ ...c, ...change }).totalBytes });
  }
  const suggestions = verdict === 'fits' ? [] : scored
    .sort((a, b) => a.hostBytes - b.hostBytes)
    .map((s) => ({ ...s, text: `${s.text}: ${formatBytes(s.hostBytes)}` }));
  return {
    hostBytes: est.totalBytes, parts: est.parts,
    gpuBytes: provider === 'cpu' ? null : estimateDeviceMemory(cfg, plan(c)).gpuBytes,
    availableHostBytes: available, totalHostBytes: total, availableGpuBytes: null, verdict, provider, suggestions,
  };
}
