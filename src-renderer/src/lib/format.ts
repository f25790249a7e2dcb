// Numbers as people read them: sizes, durations, losses, counts; and where a run runs.

import type { AppInfo, ProviderName, WebGpuAdapterInfo } from '../../../src-shared/api.ts';

export function bytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function loss(v: number | null | undefined): string {
  return v == null || !Number.isFinite(v) ? '–' : v.toFixed(v < 10 ? 3 : 1);
}

export function count(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}K`;
  return n.toLocaleString('en-US');
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function percent(x: number | null | undefined): string {
  return x == null || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(0)}%`;
}

const PROVIDER_LABELS: Record<ProviderName, string> = { cpu: 'the CPU', webgpu: 'WebGPU', dml: 'DirectML', cuda: 'CUDA', coreml: 'Core ML' };

/** "AMD Radeon RX 7900 XTX — WebGPU over Vulkan". */
export function adapterLabel(a: WebGpuAdapterInfo): string {
  return `${a.name} — WebGPU over ${a.backend}`;
}

/** Where a run on `provider` goes: the WebGPU adapter by name when 'auto' found one, else the provider. */
export function device(provider: ProviderName, info: AppInfo | null): string {
  const adapter = provider === 'webgpu' ? info?.auto.adapter : null;
  return adapter ? adapterLabel(adapter) : PROVIDER_LABELS[provider];
}
