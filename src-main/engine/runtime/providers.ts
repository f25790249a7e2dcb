// Choosing an execution provider: what this onnxruntime-node build offers, which WebGPU adapters
// the machine has, and what `auto` picks from them (and why). The one choice: `finch train`,
// `finch doctor`, the benches and the app all ask chooseAuto / decideProvider here.
//
// onnxruntime-node cannot list WebGPU adapters, so Dawn's own Node binding (the `webgpu` npm
// package) asks for them, in a process of its own (adapter-probe.ts). Both ask Dawn for the
// default adapter of the same power preference, so they normally agree; ORT has no API that names
// the adapter it opened, so Finch reports the listed adapter as "expected", never as confirmed.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROVIDERS, type Provider, availableProviders } from './session.js';
import { nodeArgsFor } from './worker.js';

export const PROVIDER_CHOICES = ['auto', ...PROVIDERS] as const;
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];

/** Validates a provider name from a flag or a config file; `where` names the source for the message. */
export function parseProviderChoice(value: unknown, where: string): ProviderChoice {
  if (typeof value === 'string' && (PROVIDER_CHOICES as readonly string[]).includes(value)) return value as ProviderChoice;
  throw new Error(`${where}: provider "${String(value)}" is not one of ${PROVIDER_CHOICES.join(', ')}`);
}

// ---- adapters ----------------------------------------------------------------------------------

/** The WebGPU spec's default maxStorageBufferBindingSize: the limit to assume for an adapter not listed. */
export const WEBGPU_DEFAULT_BINDING_BYTES = 128 * 2 ** 20;

/** The graphics API Dawn runs WebGPU over: its default backend on each system. */
export type WebGpuBackend = 'Vulkan' | 'D3D12' | 'Metal';

export function webGpuBackend(platform: NodeJS.Platform): WebGpuBackend {
  return platform === 'win32' ? 'D3D12' : platform === 'darwin' ? 'Metal' : 'Vulkan';
}

/**
 * A WebGPU adapter as Dawn's Node binding reports it. `vendor`, `architecture` and `device` are
 * normalized identifiers (lower case, dashes: "amd", "rdna-3", "amd-radeon-rx-7900-xtx-radv-navi31");
 * `description` is the driver ("radv: Mesa 24.2.8", "Metal driver on macOS Version 14.5").
 */
export interface DawnAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's own flag for its fallback (CPU) adapter. */
  fallback: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  shaderF16: boolean;
}

/** A listed adapter, judged. */
export interface GpuAdapter extends DawnAdapter {
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP): correct, but slower than the CPU provider. */
  software: boolean;
  backend: WebGpuBackend;
}

/** What the probe process answers (adapter-probe.ts). */
export type ProbeAnswer = { adapters: DawnAdapter[] } | { error: string };

/** The adapters listed here, or why none could be. */
export interface AdapterList {
  adapters: GpuAdapter[];
  error: string | null;
}

// Matched against Dawn's identifiers ("microsoft-basic-render-driver") and plain names alike.
const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|\bwarp\b|microsoft[- ]basic[- ]render/i;

/** True for adapters that run on the CPU: never chosen by `auto`. */
export function isSoftwareAdapter(a: Pick<DawnAdapter, 'vendor' | 'architecture' | 'device' | 'description' | 'fallback'>): boolean {
  return a.fallback || a.architecture === 'software' || SOFTWARE_NAMES.test(`${a.vendor} ${a.device} ${a.description}`);
}

// Words of Dawn's identifiers written as their makers write them; other words are capitalized, and
// words with a digit or of up to three letters ("rx", "xtx", "m2", "a770") are upper case.
const CASING: Record<string, string> = {
  amd: 'AMD', nvidia: 'NVIDIA', geforce: 'GeForce', intel: 'Intel', apple: 'Apple', arc: 'Arc', xe: 'Xe', ti: 'Ti',
  max: 'Max', pro: 'Pro', mesa: 'Mesa', arm: 'Arm', llvm: 'LLVM', llvmpipe: 'llvmpipe', bits: 'bits', swiftshader: 'SwiftShader',
};
/** Trademark marks, "Intel(R) Arc(TM)" -> "intel-r-arc-tm": left out of the name. */
const MARKS = new Set(['r', 'tm']);
/** Mesa's driver tag, "AMD Radeon RX 7900 XTX (RADV NAVI31)": the name ends before it. */
const DRIVER_TAGS = new Set(['radv', 'nvk']);

/**
 * The adapter's name for people: "AMD Radeon RX 7900 XTX" from Dawn's normalized device
 * identifier "amd-radeon-rx-7900-xtx-radv-navi31" (a name that already has capitals or spaces is
 * kept as it is); the vendor and architecture when the device has no name.
 */
export function adapterName(a: Pick<DawnAdapter, 'vendor' | 'architecture' | 'device'>): string {
  if (/[A-Z ]/.test(a.device)) return a.device.trim();
  const words = (id: string) => {
    const all = id.split('-').filter((w) => w && !MARKS.has(w));
    const tag = all.findIndex((w) => DRIVER_TAGS.has(w));
    return all.slice(0, tag > 0 ? tag : all.length).map((w) =>
      CASING[w] ?? (/\d/.test(w) || w.length <= 3 ? w.toUpperCase() : w[0]!.toUpperCase() + w.slice(1)));
  };
  const device = words(a.device);
  if (device.length) return device.join(' ');
  return [...words(a.vendor), a.architecture].filter(Boolean).join(' ') || 'an unnamed adapter';
}

/** "AMD Radeon RX 7900 XTX — WebGPU over Vulkan". */
export function adapterLabel(a: GpuAdapter): string {
  return `${adapterName(a)} — WebGPU over ${a.backend}`;
}

/** Judges the probe's answer: duplicates (one adapter for both power preferences) dropped, software adapters marked. */
export function adapterListFrom(answer: ProbeAnswer, platform: NodeJS.Platform): AdapterList {
  if ('error' in answer) return { adapters: [], error: answer.error };
  const seen = new Set<string>();
  const adapters: GpuAdapter[] = [];
  for (const a of answer.adapters) {
    const key = `${a.vendor}|${a.device}|${a.description}`;
    if (seen.has(key)) continue;
    seen.add(key);
    adapters.push({ ...a, software: isSoftwareAdapter(a), backend: webGpuBackend(platform) });
  }
  return { adapters, error: adapters.length ? null : `Dawn found no WebGPU adapter (no ${webGpuBackend(platform)} driver it accepts)` };
}

const PROBE = new URL('./adapter-probe.ts', import.meta.url);

/** How a Node process starts the probe: this Node binary on adapter-probe.ts (with the tsx loader in a checkout). */
export function probeCommand(): { file: string; args: string[] } {
  return { file: process.execPath, args: [...nodeArgsFor(PROBE), fileURLToPath(PROBE)] };
}

/**
 * The WebGPU adapters Dawn offers here, listed by a Node child process. Inside Electron
 * `process.execPath` is Electron itself, so there this answers with an error instead of spawning:
 * the desktop app lists adapters through a utility process (electron/jobs.ts) and hands the
 * result to its jobs (services/jobs.ts TrainPayload.machine).
 */
export async function listWebGpuAdapters(timeoutMs = 30_000): Promise<AdapterList> {
  if (process.versions.electron) {
    return { adapters: [], error: 'inside Electron, WebGPU adapters are listed by a utility process (electron/jobs.ts), not by spawning the Electron binary' };
  }
  const { file, args } = probeCommand();
  const out = await new Promise<string | Error>((done) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout) => done(err && !String(stdout).includes('FINCH_ADAPTERS') ? err : String(stdout)));
  });
  if (out instanceof Error) return { adapters: [], error: `listing WebGPU adapters failed: ${out.message.split('\n')[0]}` };
  const line = out.split('\n').find((l) => l.startsWith('FINCH_ADAPTERS '));
  if (!line) return { adapters: [], error: 'listing WebGPU adapters printed nothing' };
  return adapterListFrom(JSON.parse(line.slice('FINCH_ADAPTERS '.length)) as ProbeAnswer, process.platform);
}

// ---- the machine ---------------------------------------------------------------------------------

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

/** What this machine offers: plain data, so a job can be handed the app's instead of probing again. */
export interface MachineProviders {
  /** Execution providers of this onnxruntime-node build. */
  built: readonly string[];
  /** Those whose libraries are here: the bundled ones, CUDA when its libraries were downloaded. */
  installed: readonly string[];
  adapters: readonly GpuAdapter[];
  /** Why no adapter could be listed (null when the probe answered). */
  adapterError: string | null;
  platform: NodeJS.Platform;
}

/** Probes this machine: the build's providers, CUDA's libraries and (in a process of its own) the WebGPU adapters. */
export async function probeMachine(listAdapters: () => Promise<AdapterList> = listWebGpuAdapters): Promise<MachineProviders> {
  const backends = availableProviders();
  const built = backends.map((p) => p.name);
  const cuda = cudaLibrariesInstalled();
  const installed = backends.filter((p) => p.bundled || (p.name === 'cuda' && cuda)).map((p) => p.name);
  const { adapters, error } = built.includes('webgpu') ? await listAdapters() : { adapters: [], error: 'this build has no webgpu provider' };
  return { built, installed, adapters, adapterError: error, platform: process.platform };
}

let machine: Promise<MachineProviders> | null = null;

/** This process's machine, probed once, on first use (the probe spawns a process). */
export function machineProviders(): Promise<MachineProviders> {
  return (machine ??= probeMachine());
}

/** Adopts a machine probed elsewhere: a job gets its app's, so both decide alike and the job spawns no probe. */
export function useMachineProviders(m: MachineProviders): void {
  machine = Promise.resolve(m);
}

// ---- the choice ----------------------------------------------------------------------------------

export interface ProviderDecision {
  provider: Provider;
  /** The WebGPU adapter expected to run the graphs (ORT cannot confirm which one it opened). */
  adapter: GpuAdapter | null;
  /** Why this provider, in one sentence. */
  reason: string;
}

/**
 * The GPU providers usable here, in `auto`'s order: WebGPU on a hardware adapter, DirectML (the
 * Windows build), CUDA where its libraries are installed. A software adapter never counts: on the
 * CPU, ORT's CPU provider is faster than a Vulkan emulation of a GPU.
 */
export function usableGpuProviders(m: MachineProviders): { provider: Provider; adapter: GpuAdapter | null }[] {
  const hardware = m.adapters.find((a) => !a.software) ?? null;
  const out: { provider: Provider; adapter: GpuAdapter | null }[] = [];
  if (m.installed.includes('webgpu') && hardware) out.push({ provider: 'webgpu', adapter: hardware });
  if (m.installed.includes('dml')) out.push({ provider: 'dml', adapter: null });
  if (m.installed.includes('cuda')) out.push({ provider: 'cuda', adapter: null });
  return out;
}

/** `auto`: the first usable GPU provider (usableGpuProviders), else the CPU; always with the reason. */
export function chooseAuto(m: MachineProviders): ProviderDecision {
  const [first] = usableGpuProviders(m);
  if (first?.adapter) return { provider: 'webgpu', adapter: first.adapter, reason: `WebGPU on ${adapterName(first.adapter)} over ${first.adapter.backend}: a hardware GPU adapter, auto's first choice` };
  const skipped = m.adapters.filter((a) => a.software).map((a) => adapterName(a));
  const why = skipped.length ? `software adapter skipped: ${skipped.join(', ')}` : `no WebGPU adapter${m.adapterError ? `: ${m.adapterError}` : ''}`;
  if (first?.provider === 'dml') return { provider: 'dml', adapter: null, reason: `DirectML: no hardware WebGPU adapter (${why}); DirectML runs on any DirectX 12 GPU` };
  if (first?.provider === 'cuda') return { provider: 'cuda', adapter: null, reason: `CUDA: its provider libraries are installed and no hardware WebGPU adapter was found (${why})` };
  return { provider: 'cpu', adapter: null, reason: `the CPU: no GPU provider is usable here (${why})` };
}

const CPU_REQUESTED: ProviderDecision = { provider: 'cpu', adapter: null, reason: 'the CPU (requested)' };

/** A `--provider` choice on this machine; a provider it lacks is an error naming what it has. */
export function decideProvider(choice: ProviderChoice, m: MachineProviders): ProviderDecision {
  if (choice === 'cpu') return CPU_REQUESTED;
  if (choice === 'auto') return chooseAuto(m);
  if (!m.built.includes(choice)) {
    throw new Error(`--provider ${choice}: this onnxruntime-node build has no ${choice} execution provider (it has ${m.built.join(', ')}); use --provider auto or one of those`);
  }
  if (!m.installed.includes(choice)) {
    throw new Error(choice === 'cuda'
      ? '--provider cuda: ONNX Runtime\'s CUDA provider libraries are not installed (onnxruntime-node downloads them at install time when the CUDA 12 toolkit is present)'
      : `--provider ${choice}: ONNX Runtime's ${choice} provider libraries are not installed`);
  }
  if (choice !== 'webgpu') return { provider: choice, adapter: null, reason: `${choice} (requested)` };
  const adapter = m.adapters.find((a) => !a.software) ?? m.adapters[0] ?? null;
  if (!adapter) throw new Error(`--provider webgpu: ${m.adapterError ?? 'no WebGPU adapter'}`);
  return { provider: 'webgpu', adapter, reason: `WebGPU (requested) on ${adapterName(adapter)} over ${adapter.backend}${adapter.software ? ', a software adapter: slower than --provider cpu' : ''}` };
}

/** Resolves `--provider` on this process's machine (machineProviders: probed once). */
export async function resolveProvider(choice: ProviderChoice): Promise<ProviderDecision> {
  return choice === 'cpu' ? CPU_REQUESTED : decideProvider(choice, await machineProviders());
}
