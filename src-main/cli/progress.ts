// Progress for long CLI jobs (training steps, downloads, benchmarks), in three forms:
//  - a terminal: a cli-progress bar redrawn in place, with an ETA;
//  - a pipe or a log file (stdout not a TTY): a plain line now and then, never control codes;
//  - `--json`: one JSON object per line (JSON Lines), for scripts and the e2e tests.
// The ETA comes from a sliding window of recent updates, so it follows the current speed
// (the first steps of a run are slower: session creation, cold caches).

import cliProgress from 'cli-progress';

export type Extra = Record<string, string | number>;

export interface ProgressBar {
  /** Sets the done count; `extra` fields show after the bar ("loss 2.31"). */
  update(value: number, extra?: Extra): void;
  increment(by?: number, extra?: Extra): void;
  /** Ends the bar (prints the final state once). Idempotent. */
  stop(): void;
}

export interface OutStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json';

export interface ProgressOptions {
  label: string;
  total: number;
  /** What is counted ("steps", "tokens"). */
  unit?: string;
  /** 'auto' (default): a bar on a TTY, plain lines otherwise. */
  mode?: ProgressMode;
  stream?: OutStream;
  /** Plain mode: the least time between two lines (default 5 s). */
  plainIntervalMs?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** Estimates the time left from the rate over the last `window` updates. */
export class EtaEstimator {
  private readonly samples: { t: number; v: number }[] = [];
  constructor(private readonly total: number, private readonly window = 20) {}

  add(tMs: number, value: number): void {
    this.samples.push({ t: tMs, v: value });
    if (this.samples.length > this.window) this.samples.shift();
  }

  /** Seconds left, or null while there is no measurable rate yet. */
  etaSeconds(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t || last.v <= first.v) return null;
    const perMs = (last.v - first.v) / (last.t - first.t);
    return Math.max(0, (this.total - last.v) / perMs / 1000);
  }
}

/** Bytes in the units a bar counts: kB for small transfers, MB from 10 MB. */
export function byteScale(total: number): { div: number; unit: string } {
  return total >= 1e7 ? { div: 1e6, unit: 'MB' } : { div: 1e3, unit: 'kB' };
}

/** "12s", "4m05s", "1h02m". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function formatExtra(extra: Extra | undefined): string {
  if (!extra) return '';
  const parts = Object.entries(extra).map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`);
  return parts.length ? ` | ${parts.join(', ')}` : '';
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : v.toPrecision(4);
}

/** Writes one JSON object per line. */
export class JsonLines {
  constructor(private readonly stream: OutStream = process.stdout) {}

  emit(type: string, data: Record<string, unknown> = {}): void {
    this.stream.write(`${JSON.stringify({ type, time: new Date().toISOString(), ...data })}\n`);
  }
}

/** Common state of the three renderings: counts, clock, ETA. */
abstract class BaseBar implements ProgressBar {
  protected value = 0;
  protected extra: Extra | undefined;
  protected readonly start: number;
  protected readonly eta: EtaEstimator;
  private stopped = false;

  constructor(protected readonly o: ProgressOptions, protected readonly now: () => number) {
    this.start = now();
    this.eta = new EtaEstimator(o.total);
    this.eta.add(this.start, 0);
  }

  update(value: number, extra?: Extra): void {
    if (this.stopped) return;
    this.value = Math.min(value, this.o.total);
    if (extra) this.extra = extra;
    this.eta.add(this.now(), this.value);
    this.render(false);
  }

  increment(by = 1, extra?: Extra): void {
    this.update(this.value + by, extra);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.render(true);
  }

  protected elapsedSeconds(): number {
    return (this.now() - this.start) / 1000;
  }

  protected abstract render(final: boolean): void;
}

class PlainBar extends BaseBar {
  private lastLine = -Infinity;
  private printed = -1;

  protected render(final: boolean): void {
    const t = this.now();
    const due = t - this.lastLine >= (this.o.plainIntervalMs ?? 5000);
    const finished = this.value >= this.o.total;
    // A line when due, one when finished, and one at stop() unless that state was just printed.
    if (this.printed === this.value && (final || finished)) return;
    if (!final && !finished && !due) return;
    this.lastLine = t;
    this.printed = this.value;
    const pct = this.o.total > 0 ? Math.floor((100 * this.value) / this.o.total) : 100;
    const unit = this.o.unit ? ` ${this.o.unit}` : '';
    const when = finished || final
      ? `took ${formatDuration(this.elapsedSeconds())}`
      : `elapsed ${formatDuration(this.elapsedSeconds())}, ETA ${formatDuration(this.eta.etaSeconds())}`;
    (this.o.stream ?? process.stdout).write(`${this.o.label}: ${this.value}/${this.o.total}${unit} (${pct}%) ${when}${formatExtra(this.extra)}\n`);
  }
}

class JsonBar extends BaseBar {
  private readonly out: JsonLines;
  private lastEmit = -Infinity;

  constructor(o: ProgressOptions, now: () => number) {
    super(o, now);
    this.out = new JsonLines(o.stream ?? process.stdout);
  }

  protected render(final: boolean): void {
    const t = this.now();
    // Machines read every line, but at most ~10 a second keeps logs small.
    if (!final && t - this.lastEmit < 100 && this.value < this.o.total) return;
    this.lastEmit = t;
    this.out.emit('progress', {
      label: this.o.label,
      value: this.value,
      total: this.o.total,
      ...(this.o.unit ? { unit: this.o.unit } : {}),
      elapsedSeconds: this.elapsedSeconds(),
      etaSeconds: this.eta.etaSeconds(),
      done: final,
      ...(this.extra ? { extra: this.extra } : {}),
    });
  }
}

class TtyBar extends BaseBar {
  private readonly bar: cliProgress.SingleBar;

  constructor(o: ProgressOptions, now: () => number) {
    super(o, now);
    const unit = o.unit ? ` ${o.unit}` : '';
    this.bar = new cliProgress.SingleBar({
      format: `${o.label} [{bar}] {percentage}% | {value}/{total}${unit} | {elapsed} elapsed, ETA {etaText}{extraText}`,
      stream: (o.stream ?? process.stdout) as NodeJS.WritableStream,
      hideCursor: true,
      barsize: 30,
      fps: 10,
    }, cliProgress.Presets.shades_classic);
    this.bar.start(o.total, 0, this.payload());
  }

  private payload() {
    return { etaText: formatDuration(this.eta.etaSeconds()), elapsed: formatDuration(this.elapsedSeconds()), extraText: formatExtra(this.extra) };
  }

  protected render(final: boolean): void {
    this.bar.update(this.value, this.payload());
    if (final) this.bar.stop();
  }
}

/** A progress bar for a TTY, plain lines for a pipe, or JSON lines; see ProgressOptions.mode. */
export function createProgress(o: ProgressOptions): ProgressBar {
  const now = o.now ?? (() => performance.now());
  const stream = o.stream ?? process.stdout;
  const mode = o.mode === undefined || o.mode === 'auto' ? (stream.isTTY ? 'tty' : 'plain') : o.mode;
  switch (mode) {
    case 'tty': return new TtyBar(o, now);
    case 'json': return new JsonBar(o, now);
    default: return new PlainBar(o, now);
  }
}
