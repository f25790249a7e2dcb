// Where a training step's memory goes, phase by phase, although the whole step is one
// session.run: ONNX Runtime's profile (Session profilePrefix) gives every node's start and
// duration, the RSS sampler's series (rss-sampler.ts) the memory over time, and the node names
// say the phase (the step graph's scopes: "<node>/grad/..." and "<segment>/recompute/..." belong
// to the backward, "optimizer/..." to the AdamW update, the rest to the forward). Each sample goes
// to the phase of the node running at its time.

import { readFileSync } from 'node:fs';
import type { RssSample } from './rss-sampler.js';

export const STEP_PHASES = ['forward', 'backward', 'optimizer'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

/** The phase a step graph's node belongs to, by its name. */
export function phaseOfNode(name: string): StepPhase {
  if (name.startsWith('optimizer/')) return 'optimizer';
  if (/\/(grad|recompute)(\/|$)/.test(name)) return 'backward';
  return 'forward';
}

/** One node run, in ms since the epoch. */
export interface NodeSpan {
  name: string;
  phase: StepPhase;
  start: number;
  end: number;
  /** Bytes of the node's outputs (the profile's output_size). */
  outputBytes: number;
}

interface TraceEvent { cat: string; name: string; ts: number; dur: number; args?: { output_size?: string } }

/**
 * The node spans of each session.run recorded in an ORT profile. `runStarts`: the wall-clock time
 * (ms since the epoch) at which each run was called, in order: the profile's clock starts at an
 * unknown moment, so each run's events are placed by its own start.
 */
export function nodeSpans(profileFile: string, runStarts: readonly number[]): NodeSpan[][] {
  const events = JSON.parse(readFileSync(profileFile, 'utf8')) as TraceEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  if (runs.length !== runStarts.length) throw new Error(`${profileFile}: ${runs.length} runs profiled, ${runStarts.length} expected`);
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  return runs.map((run, i) => {
    const at = (ts: number) => runStarts[i]! + (ts - run.ts) / 1000;
    return nodes.filter((e) => e.ts >= run.ts && e.ts <= run.ts + run.dur).sort((a, b) => a.ts - b.ts).map((e) => {
      const name = e.name.slice(0, -'_kernel_time'.length);
      return { name, phase: phaseOfNode(name), start: at(e.ts), end: at(e.ts + e.dur), outputBytes: Number(e.args?.output_size ?? 0) };
    });
  });
}

export interface PhaseMemory {
  /** Seconds the phase's nodes ran. */
  s: number;
  /** Peak RssAnon (private memory) while the phase ran, MiB. */
  anon_mb: number;
  /** Peak RssAnon over the private memory at the run's start, MiB: what the phase added. */
  added_anon_mb: number;
  /** Peak VmRSS while the phase ran, MiB. */
  rss_mb: number;
  /** The node that ran when the private memory peaked: where to look first. */
  peak_node: string | null;
}

/**
 * Peak memory per phase of one run: each sample taken between the run's first node and its last
 * goes to the phase of the node that started last before it (ORT's sequential executor runs one
 * node at a time). A phase no sample fell in (shorter than the sampling interval) reports the
 * memory of the sample closest after its first node.
 */
export function phaseMemory(spans: readonly NodeSpan[], samples: readonly RssSample[], runStart: number): Record<StepPhase, PhaseMemory> {
  if (!spans.length) throw new Error('phaseMemory: the run has no profiled nodes');
  const before = [...samples].reverse().find((s) => s.t <= runStart) ?? samples[0];
  if (!before) throw new Error('phaseMemory: no memory samples');
  const out = Object.fromEntries(STEP_PHASES.map((p) => [p, { s: 0, anon_mb: 0, added_anon_mb: 0, rss_mb: 0, peak_node: null }])) as Record<StepPhase, PhaseMemory>;
  for (const n of spans) out[n.phase].s += (n.end - n.start) / 1000;
  const first = spans[0]!.start, last = spans.at(-1)!.end;
  let k = 0;
  for (const s of samples) {
    if (s.t < first || s.t > last) continue;
    while (k + 1 < spans.length && spans[k + 1]!.start <= s.t) k++;
    const p = out[spans[k]!.phase];
    if (s.anon > p.anon_mb) p.peak_node = spans[k]!.name;
    p.anon_mb = Math.max(p.anon_mb, s.anon);
    p.rss_mb = Math.max(p.rss_mb, s.rss);
  }
  for (const phase of STEP_PHASES) {
    const p = out[phase];
    if (p.anon_mb === 0) {
      const start = spans.find((n) => n.phase === phase)?.start;
      const s = start === undefined ? undefined : samples.find((x) => x.t >= start);
      if (s) { p.anon_mb = s.anon; p.rss_mb = s.rss; p.peak_node = null; }
    }
    p.added_anon_mb = p.anon_mb ? p.anon_mb - before.anon : 0;
    p.s = Math.round(p.s * 1000) / 1000;
  }
  return out;
}
