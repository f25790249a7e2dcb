// What every Finch benchmark shares: one timing rule (so ORT and its peers are measured alike),
// and child processes with a controlled environment (so both sides of a comparison run with the
// same threads and the same BLAS settings, and neither inherits the parent's warm state).

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { withTunedAllocator } from '../engine/runtime/allocator.js';

export interface TimingOptions {
  /** Untimed runs first (allocations, ORT's first-run planning, page faults). */
  warmup: number;
  /** Keep timing until this much time has been spent... */
  minSeconds: number;
  /** ...and at least this many timed runs. */
  minReps: number;
}

export interface Timing {
  medianMs: number;
  minMs: number;
  reps: number;
}

/** Times `fn` per run; the median is robust to the odd descheduled run. engine_torch.py mirrors this. */
export async function measure(fn: () => unknown, o: TimingOptions, now: () => number = () => performance.now()): Promise<Timing> {
  for (let i = 0; i < o.warmup; i++) await fn();
  const times: number[] = [];
  const start = now();
  while (times.length < o.minReps || now() - start < o.minSeconds * 1000) {
    const t0 = now();
    await fn();
    times.push(now() - t0);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const medianMs = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
  return { medianMs, minMs: times[0]!, reps: times.length };
}

/** Mean time per call over `n` back-to-back calls (for overheads of microseconds). */
export async function perCall(fn: () => unknown, n: number): Promise<number> {
  for (let i = 0; i < Math.min(100, n); i++) await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / n;
}

/**
 * The environment for a benchmark's child processes: `threads` for every thread pool, and
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed. Some machines set those two for their own
 * reasons and they slow OpenBLAS; the tests and CI leave them alone, a benchmark unsets them
 * for both sides alike (docs/ort-notes.md). The C allocator is set as for a training job
 * (engine/runtime/allocator.ts), for both sides alike too.
 */
export function benchEnv(threads: number): NodeJS.ProcessEnv {
  const env = withTunedAllocator(process.env);
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  env.OMP_NUM_THREADS = String(threads);
  env.OPENBLAS_NUM_THREADS = String(threads);
  env.MKL_NUM_THREADS = String(threads);
  return env;
}

/** Runs a child that prints one JSON object as its last stdout line; returns it. */
export async function runJsonChild<T>(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.on('error', fail);
    child.on('close', (c) => done({ code: c, stdout, stderr }));
  });
  const last = stdout.trimEnd().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`${command} ${args[0] ?? ''} failed (exit ${code}): ${stderr.trim().split('\n').slice(-4).join('\n') || stdout.slice(-400)}`);
  }
  return JSON.parse(last) as T;
}

/**
 * Restarts this process's peak-RSS record (Linux: VmHWM, through /proc/self/clear_refs), so that
 * peakRssMb() reports the peak from here on. Returns false where that is not possible (the peak
 * then stays the process's whole-life one).
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak RSS in MiB since the last resetPeakRss() (or since the process started). */
export function peakRssMb(): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
  } catch {
    return process.resourceUsage().maxRSS / 1024;
  }
}
