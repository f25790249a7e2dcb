// `finch bench engine`: is Finch's engine (ONNX Runtime's CPU provider) as fast as the reference
// peer, PyTorch, on the matrix products that dominate LoRA training? In one run, on one machine,
// with one thread count, it measures MatMul GFLOP/s for the shapes of a small Llama layer on both
// sides, plus the fixed cost of one session.run (what a graph of many small ops pays per step).
//
// Both sides run as child processes with the same environment (timing.ts: benchEnv), one after
// the other, so neither competes with the other nor with this process for the cores.

import { parseCommand } from '../cli/args.js';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import { benchEnv, runJsonChild, type Timing, type TimingOptions } from './timing.js';

export interface MatMulCase {
  name: string;
  /** y[M, N] = x[M, K] @ w[K, N] */
  m: number;
  k: number;
  n: number;
}

const TOKENS = 1024;

/** A small Llama layer (hidden 512, MLP 1376) at 1024 tokens, and one 4096-hidden projection. */
export const CASES: readonly MatMulCase[] = [
  { name: 'attn q/k/v/o, hidden 512', m: TOKENS, k: 512, n: 512 },
  { name: 'mlp gate/up 512->1376', m: TOKENS, k: 512, n: 1376 },
  { name: 'mlp down 1376->512', m: TOKENS, k: 1376, n: 512 },
  { name: 'LoRA A r=16, hidden 4096', m: TOKENS, k: 4096, n: 16 },
  { name: 'attn proj, hidden 4096', m: TOKENS, k: 4096, n: 4096 },
];

export interface EngineChildConfig {
  threads: number;
  cases: MatMulCase[];
  timing: TimingOptions;
  overheadRuns: number;
}

export interface OrtChildResult {
  ortVersion: string;
  matmul: { name: string; constW: Timing; inputW: Timing; checksum: number }[];
  overhead: { runUs: number; hostRunUs: number };
}

interface TorchChildResult {
  torchVersion: string;
  threads: number;
  blas: string;
  matmul: { name: string; timing: Timing; checksum: number }[];
  overhead: { opUs: number };
}

export interface EngineBenchResult {
  /** loadAverage: the 1-minute load before the run (other work on the machine skews both sides). */
  machine: { cpu: string; cores: number; loadAverage: number };
  threads: number;
  env: { unset: string[] };
  ort: { version: string; provider: 'cpu' };
  torch: { version: string; threads: number; blas: string } | { error: string };
  matmul: {
    name: string;
    m: number;
    k: number;
    n: number;
    gflop: number;
    /** GFLOP/s: ORT with w a frozen initializer, ORT with w a graph input, PyTorch. */
    ortConstW: number;
    ortInputW: number;
    torch: number | null;
    /** Best ORT variant over PyTorch (>1: ORT faster). */
    ortOverTorch: number | null;
    /** Relative difference of sum|y| between the sides (both compute the same product). */
    checksumRelDiff: number | null;
    /** GFLOP/s of the fastest run of each (less sensitive to other load on the machine). */
    best: { ortConstW: number; ortInputW: number; torch: number | null };
  }[];
  overhead: { ortRunUs: number; sessionHostRunUs: number; torchOpUs: number | null };
}

const USAGE = `Usage: finch bench engine [--threads N] [--quick] [--no-torch] [--json]

MatMul GFLOP/s of ONNX Runtime (CPU provider) against PyTorch (/usr/bin/python3 with torch and
OpenBLAS) on the shapes of a small Llama layer, and the per-session.run overhead.

  --threads N   intra-op threads for both sides (default: all cores, ${availableParallelism()} here)
  --quick       short timings, no 4096x4096 shape (a smoke test, not a measurement)
  --no-torch    ORT only
  --json        print one JSON object instead of the table`;

const gflops = (c: MatMulCase, ms: number) => (2 * c.m * c.k * c.n) / (ms * 1e-3) / 1e9;

export async function benchEngine(o: { threads: number; quick: boolean; torch: boolean; log?: (s: string) => void }): Promise<EngineBenchResult> {
  const log = o.log ?? (() => {});
  const loadAverage = loadavg()[0] ?? 0;
  const cases = o.quick ? CASES.filter((c) => c.k * c.n < 4096 * 4096) : [...CASES];
  const cfg: EngineChildConfig = {
    threads: o.threads,
    cases,
    timing: o.quick ? { warmup: 1, minSeconds: 0.05, minReps: 2 } : { warmup: 2, minSeconds: 1, minReps: 5 },
    overheadRuns: o.quick ? 2000 : 20000,
  };
  const env = benchEnv(o.threads);
  const ortEntry = new URL('./engine-ort.ts', import.meta.url);
  log(`measuring ONNX Runtime (${cases.length} shapes, ${o.threads} threads)...`);
  const ort = await runJsonChild<OrtChildResult>(process.execPath, [...nodeArgsFor(ortEntry), fileURLToPath(ortEntry), JSON.stringify(cfg)], env);
  let torch: TorchChildResult | { error: string };
  if (o.torch) {
    log('measuring PyTorch...');
    torch = await runJsonChild<TorchChildResult>('/usr/bin/python3', [fileURLToPath(new URL('./engine_torch.py', import.meta.url)), JSON.stringify(cfg)], env)
      .catch((err: Error) => ({ error: `${err.message} (install: apt-get install python3-torch libopenblas0-pthread)` }));
  } else {
    torch = { error: 'skipped (--no-torch)' };
  }
  const t = 'error' in torch ? null : torch;
  return {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), loadAverage },
    threads: o.threads,
    env: { unset: ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] },
    ort: { version: ort.ortVersion, provider: 'cpu' },
    torch: t ? { version: t.torchVersion, threads: t.threads, blas: t.blas } : torch as { error: string },
    matmul: cases.map((c, i) => {
      const r = ort.matmul[i]!;
      const p = t?.matmul[i];
      const best = Math.max(gflops(c, r.constW.medianMs), gflops(c, r.inputW.medianMs));
      const tg = p ? gflops(c, p.timing.medianMs) : null;
      return {
        name: c.name, m: c.m, k: c.k, n: c.n,
        gflop: (2 * c.m * c.k * c.n) / 1e9,
        ortConstW: gflops(c, r.constW.medianMs),
        ortInputW: gflops(c, r.inputW.medianMs),
        torch: tg,
        ortOverTorch: tg ? best / tg : null,
        checksumRelDiff: p ? Math.abs(r.checksum - p.checksum) / Math.max(Math.abs(p.checksum), 1e-30) : null,
        best: { ortConstW: gflops(c, r.constW.minMs), ortInputW: gflops(c, r.inputW.minMs), torch: p ? gflops(c, p.timing.minMs) : null },
      };
    }),
    overhead: { ortRunUs: ort.overhead.runUs, sessionHostRunUs: ort.overhead.hostRunUs, torchOpUs: t?.overhead.opUs ?? null },
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  // First column left-aligned (names), the rest right-aligned (numbers).
  return rows.map((r) => r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join('  ')).join('\n');
}

export function formatEngineBench(r: EngineBenchResult): string {
  const f1 = (v: number | null) => (v === null ? 'n/a' : v.toFixed(1));
  const torch = 'error' in r.torch
    ? `PyTorch: not measured: ${r.torch.error}`
    : `PyTorch ${r.torch.version} (${r.torch.threads} threads; BLAS ${r.torch.blas})`;
  const busy = r.machine.loadAverage > 0.25 * r.machine.cores;
  const mismatch = r.matmul.filter((m) => m.checksumRelDiff !== null && m.checksumRelDiff > 1e-3);
  return [
    `Engine benchmark on ${r.machine.cpu} (${r.machine.cores} cores), ${r.threads} threads each side, float32`,
    `ONNX Runtime ${r.ort.version} (CPU provider) vs ${torch}`,
    `Both in child processes with ${r.env.unset.join(' and ')} unset.`,
    ...(busy ? [`WARNING: the machine was busy (load average ${r.machine.loadAverage.toFixed(1)} on ${r.machine.cores} cores): these numbers are not reliable.`] : []),
    '',
    table([
      ['MatMul  y[M,N] = x[M,K] @ w[K,N]', 'M x K x N', 'GFLOP', 'ORT w const', 'ORT w input', 'PyTorch', 'ORT/torch'],
      ...r.matmul.map((m) => [m.name, `${m.m}x${m.k}x${m.n}`, m.gflop.toFixed(2), f1(m.ortConstW), f1(m.ortInputW), f1(m.torch), m.ortOverTorch === null ? 'n/a' : `${m.ortOverTorch.toFixed(2)}x`]),
    ]),
    '(GFLOP/s from the median run; "w const": w is an initializer, as frozen base weights are; "w input": fed per run)',
    ...(mismatch.length ? [`WARNING: ORT and PyTorch results differ for ${mismatch.map((m) => m.name).join(', ')}`] : []),
    '',
    `session.run overhead (one-element Add): ${r.overhead.ortRunUs.toFixed(1)} us in-thread, ` +
      `${r.overhead.sessionHostRunUs.toFixed(1)} us through SessionHost (worker round trip)` +
      (r.overhead.torchOpUs === null ? '' : `; PyTorch eager x+1: ${r.overhead.torchOpUs.toFixed(1)} us`),
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench engine', argv, {
    threads: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const threads = values.threads === undefined ? availableParallelism() : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) {
    console.error(`finch bench engine: --threads must be a positive integer, got "${values.threads}"`);
    return 2;
  }
  const result = await benchEngine({
    threads,
    quick: values.quick,
    torch: !values['no-torch'],
    log: values.json ? undefined : (s) => process.stderr.write(`${s}\n`),
  });
  console.log(values.json ? JSON.stringify(result) : formatEngineBench(result));
  return 0;
}
