// Peak resident memory by phase, split into anonymous (heap, ORT's buffers and copies) and
// file-backed (mapped weights) pages, for the load and training benchmarks (Linux only).
// A worker thread samples /proc/self/status every few milliseconds into shared memory, so the
// samples keep coming while the main thread is blocked in native code (ONNX Runtime's session
// creation runs synchronously on it).

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

// Slots of the shared Float64Array: the three maxima since the last reset, then the last sample's three.
const FIELDS = ['VmRSS', 'RssAnon', 'RssFile'] as const;

const SAMPLER = `
const { workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const peaks = new Float64Array(workerData.buffer);
const flags = new Int32Array(workerData.flags);
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
  if (Atomics.load(flags, 1) === 0) setTimeout(tick, workerData.everyMs);
};
tick();
`;

export class RssSampler {
  private readonly peaks = new Float64Array(new SharedArrayBuffer(2 * FIELDS.length * 8));
  private readonly flags = new Int32Array(new SharedArrayBuffer(8));
  private readonly worker: Worker | null;

  /** Null where /proc/self/status does not exist (not Linux). */
  static start(everyMs = 20): RssSampler | null {
    return existsSync('/proc/self/status') ? new RssSampler(everyMs) : null;
  }

  private constructor(everyMs: number) {
    this.worker = new Worker(SAMPLER, { eval: true, workerData: { buffer: this.peaks.buffer, flags: this.flags.buffer, everyMs } });
    this.worker.unref();
  }

  /** The peaks since the last call (or the start), and a new phase from now. */
  phase(): RssPeak {
    const [rss, anon, file, ...end] = [...this.peaks].map(Math.round) as number[];
    Atomics.store(this.flags, 0, 1);
    return { rss_mb: rss!, anon_mb: anon!, file_mb: file!, end: end as [number, number, number] };
  }

  async stop(): Promise<void> {
    Atomics.store(this.flags, 1, 1);
    await this.worker?.terminate();
  }
}
