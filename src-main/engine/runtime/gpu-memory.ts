// How much memory the machine's GPUs have and use, where the system says so, and which of them a
// provider decision (providers.ts) will run on: the GPU side of the app's "will this fit" verdict
// (services/system.ts estimateMemory).
//
// Read by hand rather than through a general system-information package: two sources cover the
// GPUs Finch trains on, and each gives exact bytes. amdgpu publishes VRAM in sysfs
// (/sys/class/drm/cardN/device/mem_info_vram_total and _used, bytes); NVIDIA's driver ships
// nvidia-smi on Linux and Windows (MiB). Apple silicon has unified memory: the GPU's is the host's.
// Unknown, and said so: Intel's i915/xe drivers publish no VRAM size in sysfs, and DirectX's DXGI
// budget needs native code (Windows without NVIDIA).

import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ProviderDecision } from './providers.js';

export type GpuVendor = 'amd' | 'nvidia' | 'intel' | 'apple' | 'other';

export interface GpuMemory {
  vendor: GpuVendor;
  /** For people: nvidia-smi's name, amdgpu's product name, or the card and its PCI ids. */
  name: string;
  totalBytes: number;
  usedBytes: number;
  source: 'sysfs' | 'nvidia-smi' | 'unified';
  /** The GPU's memory is the host's (Apple silicon): a GPU run's host and GPU parts come from one pool. */
  unified: boolean;
}

/** The GPUs whose memory could be read, and what could not be read, in words. */
export interface GpuMemoryReading {
  gpus: GpuMemory[];
  notes: string[];
}

// PCI vendor ids, as sysfs writes them.
const PCI_VENDORS: Record<string, GpuVendor> = { '0x1002': 'amd', '0x10de': 'nvidia', '0x8086': 'intel' };

/**
 * The GPUs under a sysfs drm directory that publish their VRAM (amdgpu). `root` is
 * /sys/class/drm on a live system, a recorded copy in tests; connectors (card0-DP-1) are skipped.
 */
export function readSysfsGpus(root = '/sys/class/drm'): GpuMemory[] {
  if (!existsSync(root)) return [];
  const gpus: GpuMemory[] = [];
  for (const card of readdirSync(root).filter((c) => /^card\d+$/.test(c)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))) {
    const dev = join(root, card, 'device');
    const read = (f: string) => { try { return readFileSync(join(dev, f), 'utf8').trim(); } catch { return null; } };
    const total = Number(read('mem_info_vram_total')), used = Number(read('mem_info_vram_used'));
    if (!(total > 0) || !Number.isFinite(used)) continue; // not amdgpu, or no dedicated VRAM published
    const vendorId = read('vendor') ?? '';
    const name = read('product_name') || `${card} (PCI ${vendorId}:${read('device') ?? '?'})`;
    gpus.push({ vendor: PCI_VENDORS[vendorId] ?? 'other', name, totalBytes: total, usedBytes: used, source: 'sysfs', unified: false });
  }
  return gpus;
}

/** The query nvidia-smi answers (one CSV line per GPU, MiB without units). */
export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,memory.total,memory.used', '--format=csv,noheader,nounits'];

/** nvidia-smi's answer to NVIDIA_SMI_ARGS; a line it cannot read throws, naming it. */
export function parseNvidiaSmi(csv: string): GpuMemory[] {
  const MiB = 2 ** 20;
  return csv.split(/\r?\n/).filter((l) => l.trim()).map((line) => {
    const cells = line.split(',').map((c) => c.trim());
    // The name may hold commas: the index first, the two numbers last.
    const total = Number(cells.at(-2)), used = Number(cells.at(-1));
    if (cells.length < 4 || !Number.isFinite(total) || !Number.isFinite(used)) throw new Error(`nvidia-smi: unreadable line "${line}" (expected index, name, memory.total, memory.used)`);
    return { vendor: 'nvidia', name: cells.slice(1, -2).join(', '), totalBytes: total * MiB, usedBytes: used * MiB, source: 'nvidia-smi', unified: false } satisfies GpuMemory;
  });
}

/** Runs nvidia-smi: its output, or null where it is not installed, fails or takes over 5 s. */
export function runNvidiaSmi(): Promise<string | null> {
  return new Promise((done) => {
    execFile('nvidia-smi', NVIDIA_SMI_ARGS, { timeout: 5000, windowsHide: true }, (err, stdout) => done(err ? null : stdout));
  });
}

export interface GpuMemorySources {
  platform: NodeJS.Platform;
  arch: string;
  sysfsRoot?: string;
  nvidiaSmi?: () => Promise<string | null>;
  hostTotal?: number;
  hostFree?: number;
}

/** Every GPU memory this machine reports (`o` replaces the machine's sources in tests). */
export async function readGpuMemory(o: GpuMemorySources = { platform: process.platform, arch: process.arch }): Promise<GpuMemoryReading> {
  const gpus: GpuMemory[] = [], notes: string[] = [];
  if (o.platform === 'darwin' && o.arch === 'arm64') {
    const total = o.hostTotal ?? totalmem();
    gpus.push({ vendor: 'apple', name: 'Apple silicon GPU', totalBytes: total, usedBytes: total - (o.hostFree ?? freemem()), source: 'unified', unified: true });
  }
  if (o.platform === 'linux') gpus.push(...readSysfsGpus(o.sysfsRoot));
  if (o.platform === 'linux' || o.platform === 'win32') {
    const out = await (o.nvidiaSmi ?? runNvidiaSmi)();
    if (out === null) notes.push('nvidia-smi did not answer (no NVIDIA driver)');
    else {
      try { gpus.push(...parseNvidiaSmi(out)); } catch (e) { notes.push((e as Error).message); }
    }
  }
  return { gpus, notes };
}

/** The GPU a run will use, or why it is unknown. */
export type RunGpu = { gpu: GpuMemory; note: string } | { gpu: null; note: string };

// Dawn's normalized vendor identifiers (providers.ts DawnAdapter.vendor) of the vendors read here.
const DAWN_VENDORS: Record<string, GpuVendor> = { amd: 'amd', ati: 'amd', nvidia: 'nvidia', intel: 'intel', apple: 'apple' };

/**
 * Which GPU reading a provider decision runs on: CUDA on an NVIDIA GPU, WebGPU on its adapter's
 * vendor, Core ML on Apple's unified memory, DirectML on the one GPU read. With several GPUs of
 * the vendor, the one with the least free memory: the verdict errs towards "will not fit".
 * Null for the CPU provider.
 */
export function gpuForRun(d: Pick<ProviderDecision, 'provider' | 'adapter'>, r: GpuMemoryReading): RunGpu | null {
  if (d.provider === 'cpu') return null;
  const why = r.notes.length ? ` (${r.notes.join('; ')})` : '';
  let vendor: GpuVendor | null;
  if (d.provider === 'cuda') vendor = 'nvidia';
  else if (d.provider === 'coreml') vendor = 'apple';
  else if (d.provider === 'webgpu') {
    if (!d.adapter) return { gpu: null, note: `GPU memory unknown: no WebGPU adapter was listed${why}` };
    if (d.adapter.software) return { gpu: null, note: `a software WebGPU adapter runs on the CPU: host memory decides` };
    vendor = DAWN_VENDORS[d.adapter.vendor] ?? null;
    if (!vendor) return { gpu: null, note: `GPU memory unknown: Finch cannot read the memory of ${d.adapter.vendor} GPUs` };
  } else vendor = null; // DirectML: no adapter identity is known
  const candidates = r.gpus.filter((g) => vendor === null || g.vendor === vendor);
  if (vendor === null && new Set(candidates.map((g) => g.vendor)).size > 1) {
    return { gpu: null, note: `GPU memory unknown: ${d.provider} may run on any of ${candidates.map((g) => g.name).join(', ')}` };
  }
  if (!candidates.length) {
    const unread = vendor === 'intel' ? 'Intel\'s drivers publish no GPU memory size'
      : vendor === 'amd' ? 'amdgpu published no mem_info_vram_total'
      : d.provider === 'dml' ? 'DirectX\'s memory budget is not read by Finch' : 'no GPU memory could be read';
    return { gpu: null, note: `GPU memory unknown: ${unread}${why}` };
  }
  const free = (g: GpuMemory) => g.totalBytes - g.usedBytes;
  const gpu = candidates.reduce((a, b) => (free(b) < free(a) ? b : a));
  const from = gpu.source === 'unified' ? 'unified with host memory' : `read from ${gpu.source}`;
  return { gpu, note: `${gpu.name}, ${from}${candidates.length > 1 ? `; the fullest of ${candidates.length} such GPUs` : ''}` };
}
