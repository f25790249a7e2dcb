// Where a session's run time goes, from ONNX Runtime's profiler (SessionOptions.profilePrefix):
// the trace holds one "model_run" event per run and one "<node>_kernel_time" event per node and run
// (its op type, shapes and provider in args). The summary takes each node's median over the timed runs (the
// warm-up runs left out) and adds them up by op type, by phase of the training step and by node, so
// the next optimisation is chosen from data (docs/perf.md).

import { readFileSync } from 'node:fs';
import { phaseOfNode } from './step-phases.js';

/** One event of ORT's Chrome-trace profile (the fields read here). */
interface TraceEvent {
  cat: string;
  name: string;
  ts: number; // microseconds
  dur: number;
  args?: { op_name?: string; provider?: string; output_type_shape?: Record<string, number[]>[] };
}

export interface ProfileRow { ms: number; share: number }

export interface ProfileSummary {
  /** Runs summarized (the profile's runs less the warm-up). */
  runs: number;
  /** Median wall time of a run (ORT's model_run event). */
  run_ms: number;
  /** Sum of the nodes' median kernel times; run_ms less this is ORT's own time between kernels (and noise). */
  kernel_ms: number;
  /** Per op type as ORT ran it (after its fusions: FusedMatMul, Gemm from MatMul + Add, ...), largest first. */
  by_op: (ProfileRow & { op: string; nodes: number })[];
  /** Per phase of a training step (step-phases.ts phaseOfNode): forward, backward, optimizer (AdamW, clipping). */
  by_phase: (ProfileRow & { phase: string })[];
  /** The most expensive nodes, largest first. */
  top_nodes: (ProfileRow & { node: string; op: string; output: string })[];
}

const shapeText = (e: TraceEvent): string =>
  (e.args?.output_type_shape ?? []).map((o) => Object.entries(o).map(([t, d]) => `${t}[${d.join(',')}]`).join('')).join(' ');

/** Summarizes a trace file, leaving out the first `warmup` runs. */
export function summarizeProfile(file: string, warmup: number, topNodes = 30): ProfileSummary {
  return summarizeTrace(JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[], warmup, topNodes);
}

export function summarizeTrace(events: readonly TraceEvent[], warmup: number, topNodes = 30): ProfileSummary {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts).slice(warmup);
  if (!runs.length) throw new Error(`summarizeTrace: no run after the ${warmup} warm-up run(s) in the profile`);
  const runOf = (e: TraceEvent) => runs.findIndex((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
  // Each node's kernel time per run (microseconds); a node's figure is its median over the runs,
  // so a run in which the thread was descheduled in the middle of one kernel does not charge it.
  const perNode = new Map<string, { op: string; output: string; us: number[] }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const run = runOf(e);
    if (run < 0) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    const b = perNode.get(node) ?? { op: e.args?.op_name ?? '?', output: shapeText(e), us: new Array<number>(runs.length).fill(0) };
    b.us[run]! += e.dur;
    perNode.set(node, b);
  }
  const runMs = median(runs.map((r) => r.dur)) / 1000;
  const nodes = [...perNode].map(([node, b]) => ({ node, op: b.op, output: b.output, ms: median(b.us) / 1000 }));
  const total = (rows: { ms: number }[]) => rows.reduce((s, r) => s + r.ms, 0);
  const group = <K extends string>(key: K, of: (n: (typeof nodes)[number]) => string) => {
    const m = new Map<string, typeof nodes>();
    for (const n of nodes) m.set(of(n), [...(m.get(of(n)) ?? []), n]);
    return [...m].map(([k, rows]) => ({ [key]: k, ms: total(rows), share: total(rows) / runMs, nodes: rows.length }) as Record<K, string> & ProfileRow & { nodes: number })
      .sort((a, b) => b.ms - a.ms);
  };
  return {
    runs: runs.length,
    run_ms: runMs,
    kernel_ms: total(nodes),
    by_op: group('op', (n) => n.op),
    by_phase: group('phase', (n) => phaseOfNode(n.node)).map(({ phase, ms, share }) => ({ phase, ms, share })),
    top_nodes: nodes.sort((a, b) => b.ms - a.ms).slice(0, topNodes).map((n) => ({ ...n, share: n.ms / runMs })),
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b), mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The summary as a few lines of text: phases, then op types down to 1% of a run. */
export function formatProfile(p: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  const lines = [`Profile: ${p.run_ms.toFixed(1)} ms per run (${p.runs} runs), kernels ${p.kernel_ms.toFixed(1)} ms`];
  for (const r of p.by_phase) lines.push(`  ${r.phase.padEnd(22)} ${r.ms.toFixed(1).padStart(9)} ms ${pct(r.share)}`);
  for (const r of p.by_op.filter((r) => r.share >= 0.01)) lines.push(`  ${`${r.op} (${r.nodes})`.padEnd(22)} ${r.ms.toFixed(1).padStart(9)} ms ${pct(r.share)}`);
  return lines.join('\n');
}
