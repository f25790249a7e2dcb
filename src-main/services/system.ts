// What the machine offers (providers, memory), what 'auto' picks, the memory verdict of a run
// config before it starts, and the app's settings. The provider choice is the engine's
// (engine/runtime/providers.ts chooseAuto), the one `finch doctor` and `finch train` make.

import { cpus, freemem, totalmem } from 'node:os';
import {
  PROVIDER_NAMES, type AppInfo, type MemoryEstimateResult, type ProviderChoice, type ProviderInfo, type ProviderName, type RunConfig, type WebGpuAdapterInfo,
} from '../../src-shared/api.js';
import { type GpuAdapter, type MachineProviders, adapterLabel, adapterName, chooseAuto } from '../engine/runtime/providers.js';
import { PROVIDERS } from '../engine/runtime/session.js';
import { loadModelConfig } from '../model/config.js';
import { estimateDeviceMemory, estimateTrainingMemory, formatBytes } from '../train/memory.js';
import { type GraphDevice, planGraph } from '../train/plan.js';
import { maxWeightBytes } from '../train/precision.js';

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
  const c = choice === 'auto' ? settingsDefault : choice;
  return c === 'auto' ? chooseAuto(m).provider : c;
}

export function appInfo(o: Pick<AppInfo, 'version' | 'finchHome' | 'browserMode' | 'hfTokenSet' | 'hfTokenStorage'>, m: MachineProviders): AppInfo {
  const auto = chooseAuto(m);
  return {
    version: o.version, platform: process.platform, arch: process.arch, cpus: cpus().length, totalMemory: totalmem(), freeMemory: freemem(),
    providers: providers(m), auto: { provider: auto.provider, reason: auto.reason, adapter: auto.adapter && adapterInfo(auto.adapter) },
    finchHome: o.finchHome, browserMode: o.browserMode, hfTokenSet: o.hfTokenSet, hfTokenStorage: o.hfTokenStorage,
  };
}

/** Verdict thresholds: under 70% of the memory free now fits; up to all of it is tight. `provider`: where the run would go (runProvider). */
export function estimateMemory(modelPath: string, c: RunConfig, provider: ProviderName): MemoryEstimateResult {
  const cfg = loadModelConfig(modelPath);
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
