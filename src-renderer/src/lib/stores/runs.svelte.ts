// One run as the dashboard shows it: the stored details (config, metrics history, evals, logs,
// checkpoints) fetched once, then grown by the live 'run-*' events, which carry the trainer's own
// fields (src-shared/train-events.ts). A finished run reopened later shows the same charts from the
// store alone.

import type { EvalSample, FinchEvent, LogLine, MetricPoint, EvalPoint, RunDetails, RunRequest, RunStatus } from '../../../../src-shared/api.ts';
import type { RewardMetrics, TrainPhase } from '../../../../src-shared/train-events.ts';
import { finch, onEvent } from '../services/finch.ts';

const MAX_LOG_LINES = 2000;
/**
 * The charts redraw at most this often. A small model takes ~50 steps a second; redrawing every
 * chart over every point each step would leave the page no time for the person's clicks.
 */
const CHART_REDRAW_MS = 250;

export class RunView {
  details = $state<RunDetails | null>(null);
  /** Every step's numbers, in step order: a plain array (not a deep proxy), grown in place. */
  private points: MetricPoint[] = [];
  /** Bumped when `points` changes; `chartRevision` follows it at most every CHART_REDRAW_MS. */
  private revision = $state(0);
  private chartRevision = $state(0);
  private chartTimer: ReturnType<typeof setTimeout> | null = null;
  private chartStale = false;
  evals = $state<EvalPoint[]>([]);
  samples = $state<{ step: number; samples: EvalSample[] }[]>([]);
  logs = $state<LogLine[]>([]);
  status = $state<RunStatus | null>(null);
  totalSteps = $state<number | null>(null);
  etaS = $state<number | null>(null);
  elapsedS = $state(0);
  error = $state<unknown>(null);
  /** A pause/resume/cancel call in flight (buttons wait for it). */
  busy = $state(false);
  /** A pause, resume or cancel the run's job has not honoured yet ("pausing…"), and what the job is doing. */
  request = $state<RunRequest | null>(null);
  phase = $state<TrainPhase | null>(null);

  readonly step = $derived(this.metrics.at(-1)?.step ?? this.details?.step ?? 0);
  readonly latest = $derived(this.metrics.at(-1) ?? null);
  readonly progress = $derived(this.totalSteps ? Math.min(1, this.step / this.totalSteps) : 0);
  readonly live = $derived(this.status === 'running' || this.status === 'queued' || this.status === 'paused');

  constructor(readonly id: string) {}

  /** The steps' numbers, current to the last event. */
  get metrics(): readonly MetricPoint[] {
    void this.revision;
    return this.points;
  }

  /** The same points for the charts, which follow at most every CHART_REDRAW_MS. */
  get chartMetrics(): readonly MetricPoint[] {
    void this.chartRevision;
    return this.points;
  }

  private setPoints(points: MetricPoint[]): void {
    this.points = points;
    this.pointsChanged();
  }

  private pointsChanged(): void {
    this.revision++;
    if (this.chartTimer !== null) {
      this.chartStale = true;
      return;
    }
    this.chartRevision++;
    this.chartTimer = setTimeout(() => {
      this.chartTimer = null;
      if (!this.chartStale) return;
      this.chartStale = false;
      this.pointsChanged();
    }, CHART_REDRAW_MS);
  }

  async load(): Promise<void> {
    try {
      const d = await finch().runDetails(this.id);
      this.details = d;
      // Events may have arrived while the details were on their way: keep whichever is longer.
      if (d.metrics.length >= this.points.length) this.setPoints(d.metrics);
      if (d.evals.length >= this.evals.length) this.evals = d.evals;
      if (d.samples.length >= this.samples.length) this.samples = d.samples;
      if (d.logs.length >= this.logs.length) this.logs = d.logs.slice(-MAX_LOG_LINES);
      this.status = d.status;
      this.request = d.request;
      this.phase = d.phase;
      this.totalSteps = d.totalSteps;
      this.elapsedS = d.durationS;
      this.error = null;
    } catch (e) {
      this.error = e;
    }
  }

  /** Applies one of this run's events. */
  apply(e: FinchEvent): void {
    switch (e.type) {
      case 'run-status':
        this.status = e.status;
        this.request = e.request ?? null;
        if (this.details) this.details.error = e.error;
        if (e.status !== 'running') this.etaS = null;
        break;
      case 'run-phase':
        this.phase = e.phase;
        break;
      case 'run-prepared':
        this.totalSteps = e.total_steps;
        break;
      case 'run-step':
        if (this.points.at(-1)?.step !== e.step) {
          // A resumed run trains again from its checkpoint (or from the start): its later steps are replaced.
          if ((this.points.at(-1)?.step ?? 0) > e.step) this.points = this.points.filter((m) => m.step < e.step);
          this.points.push({ step: e.step, loss: e.loss, lr: e.lr, grad_norm: e.grad_norm, tokens_per_s: e.tokens_per_s, rss_mb: e.rss_mb, ...rewardsOf(e) });
          this.pointsChanged();
        }
        this.totalSteps = e.total_steps;
        this.etaS = e.eta_s;
        this.elapsedS = e.elapsed_s;
        if (this.status === 'queued' || this.status === null) this.status = 'running';
        break;
      case 'run-eval':
        this.evals = [...this.evals.filter((x) => x.step < e.step), { step: e.step, eval_loss: e.eval_loss, perplexity: e.perplexity, ...rewardsOf(e) }];
        break;
      case 'run-samples':
        this.samples.push({ step: e.step, samples: e.samples });
        break;
      case 'run-log':
        this.logs.push(e.line);
        if (this.logs.length > MAX_LOG_LINES) this.logs.splice(0, this.logs.length - MAX_LOG_LINES);
        break;
      case 'run-done':
        this.status = e.status;
        this.request = null;
        this.phase = null;
        this.etaS = null;
        void this.load(); // the adapter path, checkpoints and final numbers
        break;
      case 'run-demo':
        if (this.details) this.details.demo = e.result;
        break;
      default:
        break;
    }
  }

  private async control(call: 'pauseRun' | 'resumeRun' | 'cancelRun'): Promise<void> {
    this.busy = true;
    try {
      const r = await finch()[call](this.id);
      this.status = r.status;
      this.request = r.request;
      this.error = null;
    } catch (e) {
      this.error = e;
    } finally {
      this.busy = false;
    }
  }
  pause(): Promise<void> { return this.control('pauseRun'); }
  resume(): Promise<void> { return this.control('resumeRun'); }
  cancel(): Promise<void> { return this.control('cancelRun'); }
}

/** A preference run's reward metrics of a step or eval event (none for SFT). */
function rewardsOf(e: Partial<RewardMetrics>): Partial<RewardMetrics> {
  if (e.reward_accuracy === undefined) return {};
  return { rewards_chosen: e.rewards_chosen, rewards_rejected: e.rewards_rejected, reward_margin: e.reward_margin, reward_accuracy: e.reward_accuracy };
}

const views = new Map<string, RunView>();
let routed = false;

/** The one RunView of a run (events keep it current while the app is open). */
export function runView(id: string): RunView {
  if (!routed) {
    routed = true;
    onEvent('*', (e) => {
      if ('runId' in e) views.get(e.runId)?.apply(e);
    });
  }
  let v = views.get(id);
  if (!v) {
    v = new RunView(id);
    views.set(id, v);
    void v.load();
  }
  return v;
}
