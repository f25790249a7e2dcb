// Choosing an execution provider: what this onnxruntime-node build offers, which WebGPU adapters
// the machine has, and what `--provider auto` picks from them (and why).
//
// onnxruntime-node cannot list WebGPU adapters, so Dawn's own Node binding (the `webgpu` npm
// package) asks for them, in a child process: a broken driver must not take the training process
// down, and the binding's Dawn instance stays apart from the one inside ONNX Runtime. Both ask
// Dawn for the default adapter of the same power preference, so they normally agree; ORT has no
// API that names the adapter it opened, so Finch reports the listed adapter as "expected", never
// as confirmed.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Provider, availableProviders } from './session.js';

export const PROVIDER_CHOICES = ['auto', 'cpu', 'webgpu', 'dml', 'cuda', 'coreml'] as const;
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];

/** Validates a provider name from a flag or a config file; `where` names the source for the message. */
export function parseProviderChoice(value: unknown, where: string): ProviderChoice {
  if (typeof value === 'string' && (PROVIDER_CHOICES as readonly string[]).includes(value)) return value as ProviderChoice;
  throw new Error(`${where}: provider "${String(value)}" is not one of ${PROVIDER_CHOICES.join(', ')}`);
}

/** A WebGPU adapter as Dawn describes it. */
export interface GpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP): correct, but slower than the CPU provider. */
  software: boolean;
  /** Dawn's own flag for its fallback adapter. */
  fallback: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  shaderF16: boolean;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|\bwarp\b|microsoft basic render/i;

/** True for adapters that run on the CPU: never chosen by `auto`. */
export function isSoftwareAdapter(a: Pick<GpuAdapter, 'vendor' | 'architecture' | 'device' | 'description' | 'fallback'>): boolean {
  return a.fallback || a.architecture === 'software' || SOFTWARE_NAMES.test(`${a.vendor} ${a.device} ${a.description}`);
}

// Runs in the child: request the adapter of each power preference, print one JSON line.
const LIST_SCRIPT = `
const { create } = await import(process.argv[1]);
const gpu = create([]);
const out = [];
for (const o of [{ powerPreference: 'high-performance' }, { powerPreference: 'low-power' }]) {
  const a = await gpu.requestAdapter(o);
  if (!a) continue;
  const i = a.info;
  out.push({ vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    fallback: !!(i.isFallbackAdapter ?? a.isFallbackAdapter), maxBufferSize: a.limits.maxBufferSize,
    maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize, shaderF16: a.features.has('shader-f16') });
}
process.stdout.write('FINCH_ADAPTERS ' + JSON.stringify(out) + '\\n');
process.exit(0);
`;

/** The WebGPU adapters Dawn offers here (deduplicated), or the reason none could be listed. */
export async function listWebGpuAdapters(timeoutMs = 30_000): Promise<{ adapters: GpuAdapter[]; error: string | null }> {
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return { adapters: [], error: 'the `webgpu` package (Dawn\'s Node binding) is not installed' };
  }
  const stdout = await new Promise<string | Error>((done) => {
    execFile(process.execPath, ['--input-type=module', '-e', LIST_SCRIPT, entry], { timeout: timeoutMs }, (err, out) => done(err && !String(out).includes('FINCH_ADAPTERS') ? err : String(out)));
  });
  if (stdout instanceof Error) return { adapters: [], error: `listing WebGPU adapters failed: ${stdout.message.split('\n')[0]}` };
  const line = stdout.split('\n').find((l) => l.startsWith('FINCH_ADAPTERS '));
  if (!line) return { adapters: [], error: 'listing WebGPU adapters printed nothing' };
  const seen = new Set<string>();
  const adapters: GpuAdapter[] = [];
  for (const a of JSON.parse(line.slice('FINCH_ADAPTERS '.length)) as Omit<GpuAdapter, 'software'>[]) {
    const key = `${a.vendor}|${a.device}|${a.description}`;
    if (seen.has(key)) continue;
    seen.add(key);
    adapters.push({ ...a, software: isSoftwareAdapter(a) });
  }
  return { adapters, error: adapters.length ? null : 'Dawn found no WebGPU adapter (no Vulkan/D3D12/Metal driver it accepts)' };
}

/** True when ONNX Runtime's CUDA provider library sits beside the binding (downloaded at install). */
export function cudaLibrariesInstalled(): boolean {
  try {
    const binding = createRequire(import.meta.url).resolve('onnxruntime-node');
    const root = join(dirname(binding), '..'); // dist/index.js -> the package folder
    const dir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    return ['libonnxruntime_providers_cuda.so', 'onnxruntime_providers_cuda.dll'].some((f) => existsSync(join(dir, f)));
  } catch {
    return false;
  }
}

export interface ProviderDecision {
  provider: Provider;
  /** The WebGPU adapter expected to run the graphs (ORT cannot confirm which one it opened). */
  adapter: GpuAdapter | null;
  /** Why this provider, in one sentence. */
  reason: string;
}

export interface MachineProviders {
  /** Execution providers of this onnxruntime-node build. */
  built: readonly string[];
  adapters: readonly GpuAdapter[];
  platform: NodeJS.Platform;
  cuda: boolean;
}

/**
 * `auto`: a hardware WebGPU adapter, else DirectML on Windows, else CUDA where its libraries are
 * installed, else the CPU. A software adapter is never chosen: on the CPU, ORT's CPU provider is
 * faster than a Vulkan emulation of a GPU.
 */
export function chooseAuto(m: MachineProviders): ProviderDecision {
  const hardware = m.adapters.find((a) => !a.software);
  if (m.built.includes('webgpu') && hardware) {
    return { provider: 'webgpu', adapter: hardware, reason: `WebGPU on ${hardware.vendor} ${hardware.description || hardware.device} (a hardware adapter)` };
  }
  const skipped = m.adapters.filter((a) => a.software).map((a) => a.description || a.device);
  const why = skipped.length ? ` (software adapter skipped: ${skipped.join(', ')})` : hardware ? '' : ' (no WebGPU adapter)';
  if (m.platform === 'win32' && m.built.includes('dml')) return { provider: 'dml', adapter: null, reason: `DirectML: no hardware WebGPU adapter${why}` };
  if (m.built.includes('cuda') && m.cuda) return { provider: 'cuda', adapter: null, reason: `CUDA: its provider libraries are installed and no hardware WebGPU adapter was found${why}` };
  return { provider: 'cpu', adapter: null, reason: `the CPU: no GPU provider is usable here${why}` };
}

/** What this machine offers (builds, adapters, CUDA libraries), gathered once per call. */
export async function machineProviders(): Promise<MachineProviders & { adapterError: string | null }> {
  const built = availableProviders().map((p) => p.name);
  const { adapters, error } = built.includes('webgpu') ? await listWebGpuAdapters() : { adapters: [], error: 'this build has no webgpu provider' };
  return { built, adapters, platform: process.platform, cuda: cudaLibrariesInstalled(), adapterError: error };
}

/** Resolves `--provider` to a provider this build has; an unavailable one is an error naming what is. */
export async function resolveProvider(choice: ProviderChoice): Promise<ProviderDecision> {
  if (choice === 'cpu') return { provider: 'cpu', adapter: null, reason: 'the CPU (requested)' };
  const m = await machineProviders();
  if (choice === 'auto') return chooseAuto(m);
  if (!m.built.includes(choice)) {
    throw new Error(`--provider ${choice}: this onnxruntime-node build has no ${choice} execution provider (it has ${m.built.join(', ')}); use --provider auto or one of those`);
  }
  if (choice === 'cuda' && !m.cuda) {
    throw new Error('--provider cuda: ONNX Runtime\'s CUDA provider libraries are not installed (onnxruntime-node downloads them at install time when the CUDA 12 toolkit is present)');
  }
  if (choice !== 'webgpu') return { provider: choice, adapter: null, reason: `${choice} (requested)` };
  const adapter = m.adapters.find((a) => !a.software) ?? m.adapters[0] ?? null;
  if (!adapter) throw new Error(`--provider webgpu: ${m.adapterError ?? 'no WebGPU adapter'}`);
  return { provider: 'webgpu', adapter, reason: `WebGPU (requested) on ${adapter.vendor} ${adapter.description || adapter.device}${adapter.software ? ', a software adapter: slower than --provider cpu' : ''}` };
}
