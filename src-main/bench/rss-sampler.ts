// Peak resident memory by phase, split into anonymous (heap, ORT's buffers and copies) and
// file-backed (mapped weights) pages, for the load and training benchmarks (Linux only).
// A worker thread samples /proc/self/status every few milliseconds into shared memory, so the
// samples keep coming while the main thread is blocked in native code (ONNX Runtime's session
// creation and session.run run synchronously on it). With `series`, it also keeps every sample
// with its wall-clock time, so a phase inside one session.run (a training step's forward,
// backward, update: bench/step-phases.ts) can be cut out afterwards by time.

import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export interface RssPeak {
  /** Peak VmRSS since the phase began, MiB. */
  rss_mb: number;
  /** Peak RssAnon (private memory), MiB. */
  anon_mb: number;
  /** Peak RssFile (mapped file pages), MiB. */
  file_mb: number;
  /** The last sample's VmRSS, RssAnon and RssFile, MiB: where the next phase starts. */
  end: [number, number, number];
}

/** One sample of the series: wall-clock time (ms since the epoch, performance.timeOrigin + now()) and VmRSS, RssAnon, RssFile in MiB. */
export interface RssSample {
  t: number;
  rss: number;
  anon: number;
  file: number;
}

// Slots of the shared Float64Array: the three maxima since the last reset, then the last sample's three.
const FIELDS = ['VmRSS', 'RssAnon', 'RssFile'] as const;
// Flags: [0] reset the maxima, [1] stop, [2] samples written to the series.
const SAMPLER = `
const { workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const peaks = new Float64Array(workerData.buffer);
const flags = new Int32Array(workerData.flags);
const series = workerData.series ? new Float64Array(workerData.series) : null;
const fields = ${JSON.stringify(FIELDS)};
const tick = () => {
  if (Atomics.exchange(flags, 0, 0) === 1) peaks.fill(0, 0, 3);
  const s = readFileSync('/proc/self/status', 'utf8');
  fields.forEach((f, i) => {
    const m = s.match(new RegExp(f + ':\\\\s+(\\\\d+)'));
    if (!m) return;
    peaks[3 + i] = Number(m[1]) / 1024;
    peaks[i] = Math.max(peaks[i], peaks[3 + i]);
  });
  const n = Atomics.load(flags, 2);
  if (series && 4 * (n + 1) <= series.length) {
    series.set([performance.timeOrigin + performance.now(), peaks[3], peaks[4], peaks[5]], 4 * n);
    Atomics.store(flags, 2, n + 1);
  }
  if (Atomics.load(flags, 1) === 0) setTimeout(tick, workerData.everyMs);
};
tick();
`;

export class RssSampler {
  private readonly peaks = new Float64Array(new SharedArrayBuffer(2 * FIELDS.length * 8));
  private readonly flags = new Int32Array(new SharedArrayBuffer(3 * 4));
  private readonly samples: Float64Array | null;
  private readonly worker: Worker | null;

  /**
   * Null where /proc/self/status does not exist (not Linux). `series`: how many samples to keep
   * (4 doubles each; sampling goes on without recording once it is full), 0 for none.
   */
  static start(everyMs = 20, o: { series?: number } = {}): RssSampler | null {
    return existsSync('/proc/self/status') ? new RssSampler(everyMs, o.series ?? 0) : null;
  }

  private constructor(readonly everyMs: number, series: number) {
    this.samples = series > 0 ? new Float64Array(new SharedArrayBuffer(series * 4 * 8)) : null;
    this.worker = new Worker(SAMPLER, { eval: true, workerData: { buffer: this.peaks.buffer, flags: this.flags.buffer, everyMs, series: this.samples?.buffer } });
    this.worker.unref();
  }

  /** The peaks since the last call (or the start), and a new phase from now. */
  phase(): RssPeak {
    const [rss, anon, file, ...end] = [...this.peaks].map(Math.round) as number[];
    Atomics.store(this.flags, 0, 1);
    return { rss_mb: rss!, anon_mb: anon!, file_mb: file!, end: end as [number, number, number] };
  }

  /** The samples recorded so far (empty without `series`). */
  series(): RssSample[] {
    const n = Atomics.load(this.flags, 2), s = this.samples;
    if (!s) return [];
    return Array.from({ length: n }, (_, i) => ({ t: s[4 * i]!, rss: s[4 * i + 1]!, anon: s[4 * i + 2]!, file: s[4 * i + 3]! }));
  }

  async stop(): Promise<void> {
    Atomics.store(this.flags, 1, 1);
    await this.worker?.terminate();
  }
}
