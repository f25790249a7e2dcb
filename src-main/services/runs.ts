// Fine-tuning runs: one trains at a time on a machine (later ones wait 'queued'), each in its own
// job process; its events become store rows and FinchEvents. A job that crashes (even natively)
// leaves its run 'failed' with the reason, and the next queued run starts. Runs found under
// FINCH_HOME/runs that the store does not know (started by `finch train` / `finch demo`) are
// imported with origin 'cli'.
//
// A run's status moves only as MOVES allows, in one place (move): 'completed' is final; failed,
// cancelled, interrupted and paused runs go back to training only through resume (to 'queued');
// a run becomes 'interrupted' only when its training was cut short (the app stopped while it was
// running). While the run's job trains, its status follows the trainer's own events ('paused',
// 'continued', 'done'): a pause or cancel asked of it is a `request` until the job honours it at
// its next boundary, and the app shows "pausing…" or "cancelling…" meanwhile.

import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ApiError, EvalSample, FinchEvent, LogLine, RunConfig, RunDetails, RunRequest, RunStatus, RunSummary } from '../../src-shared/api.js';
import { RESUMABLE, runTrainEvent } from '../../src-shared/api.js';
import { TrainConfig, readStoredConfig } from '../../src-shared/run-config.js';
import type { TrainEvent, TrainPhase } from '../../src-shared/train-events.js';
import { latestCheckpoint, readRunFile, readState } from '../train/checkpoint.js';
import { learningRate } from '../train/schedule.js';
import { makeRunDir, runsDir } from '../store/paths.js';
import type { RunPatch, Store } from '../store/store.js';
import type { EventBus } from './bus.js';
import { readDemoFile } from './demo.js';
import { ServiceError, toApiError } from './errors.js';
import type { JobHandle, SamplePrompts, SpawnJob } from './jobs.js';
import { removeFilesUnder, type Library } from './library.js';

/** The statuses a run may move to from each. */
const MOVES: Record<RunStatus, readonly RunStatus[]> = {
  queued: ['running', 'paused', 'cancelled', 'failed'],
  // 'interrupted': the app stopped (or crashed) while the run trained.
  running: ['paused', 'completed', 'cancelled', 'failed', 'interrupted'],
  // 'running': its job continues; 'queued': resumed after its job ended (or while it waited in the queue).
  paused: ['running', 'queued', 'cancelled', 'failed'],
  completed: [],
  failed: ['queued'],
  cancelled: ['queued'],
  interrupted: ['queued', 'cancelled'],
};

/** The run that holds the training slot, and its job (null while the job is being started). */
interface Active {
  runId: string;
  job: JobHandle | null;
  /** Its process has ended or been let go: nothing it says counts any more. */
  settled: boolean;
  /** The trainer said 'done': the run's status is final, whatever happens to the process now. */
  done: boolean;
  /** Seconds the run had spent before this process started (a resumed run). */
  priorSeconds: number;
  /** What the job should do: flags set before the job existed are sent as it starts. */
  control: { paused: boolean; cancelled: boolean };
  request: RunRequest | null;
  phase: TrainPhase | null;
}

/** The trainer's config of an app run: the same settings, with library ids resolved to paths and the provider chosen. */
export function toTrainConfig(c: RunConfig, model: string, data: string, out: string, provider: TrainConfig['provider']): TrainConfig {
  const { name: _name, modelId: _model, datasetId: _dataset, samplePrompts: _samples, ...settings } = c;
  return TrainConfig.parse({ ...settings, model, data, out, provider });
}

export class RunManager {
  private active: Active | null = null;
  /** Entries under FINCH_HOME/runs already reported as not importable (each is logged once). */
  private readonly skipped = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly library: Library,
    private readonly bus: EventBus,
    private readonly spawnJob: SpawnJob,
    /** Held-out prompts for a run's sample answers (null: none). */
    private readonly samplePrompts: (run: RunSummary, cfg: TrainConfig, n: number) => Promise<SamplePrompts | null>,
    private readonly onCompleted: (run: RunSummary) => void,
    /** Where a line about FINCH_HOME's contents goes (a folder that is not a run): the server's log. */
    private readonly warn: (message: string) => void = (m) => console.warn(`finch: ${m}`),
  ) {}

  /** On start: runs a crash left 'running' become 'interrupted'; CLI runs are imported; the queue moves. */
  recover(): void {
    for (const id of this.store.markInterrupted()) this.logInterrupted(id, 'training');
    this.importCliRuns();
    this.schedule();
  }

  run(id: string): RunSummary {
    const r = this.store.run(id);
    if (!r) throw new ServiceError('not_found', `no run with id ${id}`, 'refresh the run list');
    return this.live(r);
  }

  /** The process id of a run's job, while it has one (diagnostics and tests). */
  jobPid(id: string): number | undefined {
    return this.active?.runId === id ? this.active.job?.pid : undefined;
  }

  list(): RunSummary[] {
    this.importCliRuns();
    return this.store.listRuns().map((r) => this.live(r));
  }

  details(id: string): RunDetails {
    const r = this.run(id);
    const row = this.store.runRow(id)!;
    this.refreshCheckpoints(r);
    const evals = this.store.evals(id);
    return {
      ...r, config: row.config, trainConfig: row.trainConfig, metrics: this.store.metrics(id),
      evals: evals.filter((e) => e.eval_loss !== null).map((e) => ({ step: e.step, eval_loss: e.eval_loss!, perplexity: e.perplexity!, ...e.rewards })),
      samples: evals.filter((e) => e.samples.length).map((e) => ({ step: e.step, samples: e.samples })),
      checkpoints: this.store.checkpoints(id), logs: this.store.logs(id), demo: row.demo,
    };
  }

  start(cfg: RunConfig, kind: RunSummary['kind'], provider: TrainConfig['provider']): RunSummary {
    const model = this.library.model(cfg.modelId);
    const dataset = this.library.dataset(cfg.datasetId);
    const name = cfg.name ?? `${model.name} on ${dataset.name}`;
    // A folder of its own, whatever the name and however many runs start this second.
    const known = this.store.runDirs();
    const dir = makeRunDir(kind === 'demo' ? 'demo' : name.slice(0, 40), (d) => known.has(d));
    const trainConfig = toTrainConfig({ ...cfg, format: cfg.format ?? dataset.format ?? undefined, map: cfg.map ?? dataset.map ?? undefined }, model.path, dataset.path, dir, provider);
    const run = this.store.addRun({
      name, kind, origin: 'app', status: 'queued', modelId: model.id, datasetId: dataset.id, modelName: model.name, datasetName: dataset.name,
      config: cfg, trainConfig, provider, dir, totalSteps: cfg.maxSteps,
    });
    this.emitStatus(run.id);
    this.bus.emit({ type: 'library-changed', what: 'runs' });
    this.schedule();
    return this.run(run.id);
  }

  /**
   * Pauses a run: one waiting in the queue stays there, paused, until resumed; a training one is
   * asked to (its status turns 'paused' when the job holds, at its next boundary).
   */
  pause(id: string): RunSummary {
    const r = this.run(id);
    const a = this.activeFor(id);
    if (a && (r.status === 'running' || r.status === 'paused')) {
      if (a.control.cancelled) throw new ServiceError('conflict', `run "${r.name}" is being cancelled`, null);
      if (a.control.paused) return r; // asked already, or held
      a.control.paused = true; // (paused with a resume on its way: it holds again)
      a.job?.send({ op: 'pause' });
      this.ask(a, r.status === 'running' ? 'pause' : null);
      return this.run(id);
    }
    if (r.status === 'paused') return r;
    if (r.status === 'queued') {
      this.move(id, 'paused');
      this.log(id, 'info', 'paused while queued: it starts only once resumed');
      return this.run(id);
    }
    throw new ServiceError('conflict', `run "${r.name}" is ${r.status}: only a queued or training run can be paused`, null);
  }

  resume(id: string): RunSummary {
    const r = this.run(id);
    const a = this.activeFor(id);
    if (a && (r.status === 'paused' || (r.status === 'running' && a.control.paused))) {
      // Its job holds it (or is about to): it goes on from where it is.
      a.control.paused = false;
      a.job?.send({ op: 'resume' });
      this.ask(a, r.status === 'paused' ? 'resume' : null);
      return this.run(id);
    }
    if (!RESUMABLE.includes(r.status)) throw new ServiceError('conflict', `run "${r.name}" is ${r.status}: only paused, interrupted, failed or cancelled runs resume`, null);
    if (!this.store.runRow(id)?.trainConfig) throw new ServiceError('conflict', `run "${r.name}" has no saved configuration to resume from`, null);
    if (!existsSync(r.dir) && (r.step > 0 || r.startedAt !== null)) {
      throw new ServiceError('conflict', `the folder of run "${r.name}" is gone (${r.dir}): its checkpoints went with it, so it cannot resume`,
        'start it again from step 0 as a new run with the same settings (Clone settings in the app)');
    }
    const last = latestCheckpoint(r.dir);
    const step = last ? readState(last).step : 0;
    this.log(id, 'info', last ? `resuming from the checkpoint of step ${step}` : 'resuming: no checkpoint yet, so training starts again from step 1');
    this.store.updateRun(id, { error: null, finishedAt: null });
    this.move(id, 'queued');
    this.schedule();
    return this.run(id);
  }

  /** Cancels a run: at once when it has no job, else at its job's next boundary (keeping the steps it took). */
  cancel(id: string): RunSummary {
    const r = this.run(id);
    const a = this.activeFor(id);
    if (a && (r.status === 'running' || r.status === 'paused')) {
      a.control.cancelled = true;
      a.job?.send({ op: 'cancel' }); // a job not started yet is told as it starts (launch)
      this.ask(a, 'cancel');
      return this.run(id);
    }
    if (r.status === 'queued' || r.status === 'interrupted' || r.status === 'paused') {
      this.cancelled(id, r.step);
      return this.run(id);
    }
    throw new ServiceError('conflict', `run "${r.name}" is already ${r.status}`, null);
  }

  delete(id: string, deleteFiles: boolean): void {
    const r = this.run(id);
    if (this.activeFor(id)) throw new ServiceError('conflict', `run "${r.name}" is training`, 'cancel it first, then delete it');
    this.store.deleteRun(id);
    if (deleteFiles) removeFilesUnder(runsDir(), r.dir);
    this.bus.emit({ type: 'library-changed', what: 'runs' });
  }

  /**
   * Stops the running job (the app or server stops). A run that was training becomes
   * 'interrupted', resumable; one the trainer had finished keeps its status (a completed run
   * stays completed whatever is still winding down), and a paused one stays paused (its pause
   * wrote a checkpoint).
   */
  shutdown(): void {
    const a = this.active;
    if (!a) return;
    this.active = null;
    a.settled = true;
    a.job?.kill();
    if (a.done || this.store.run(a.runId)?.status !== 'running') return;
    this.move(a.runId, 'interrupted');
    this.logInterrupted(a.runId, a.phase ?? 'starting');
  }

  /** Says where Resume will start an interrupted run: its last checkpoint on disk, or step 1 (as the run dashboard does). */
  private logInterrupted(runId: string, phase: string): void {
    const dir = this.store.run(runId)?.dir;
    const last = dir ? latestCheckpoint(dir) : null;
    this.log(runId, 'warn', `Finch stopped while this run was ${phase}; ${last
      ? `Resume continues from its checkpoint of step ${readState(last).step}.`
      : 'it had no checkpoint yet: Resume trains it again from the start.'}`);
  }

  /** Moves a run to 'cancelled' at `step` (the last step it took), with a line saying so. */
  private cancelled(runId: string, step: number, patch: RunPatch = {}): void {
    if (this.move(runId, 'cancelled', { ...patch, finishedAt: new Date().toISOString() })) this.log(runId, 'info', `cancelled at step ${step}`);
  }

  // ---- the queue -------------------------------------------------------------------------------

  private schedule(): void {
    if (this.active) return;
    const next = this.store.runsWithStatus('queued')[0];
    if (!next) return;
    void this.launch(next).catch((e) => {
      const a = this.active;
      if (a?.runId === next.id) {
        a.settled = true;
        a.job?.kill();
        this.active = null;
      }
      this.fail(next.id, toApiError(e));
      this.schedule();
    });
  }

  private async launch(run: RunSummary): Promise<void> {
    // The slot is taken at once (status 'running'), so a second schedule() cannot start another
    // run, and pause or cancel asked while the job starts are kept for it (Active.control).
    const active: Active = {
      runId: run.id, job: null, settled: false, done: false, priorSeconds: run.durationS, control: { paused: false, cancelled: false }, request: null, phase: null,
    };
    this.active = active;
    this.move(run.id, 'running', { startedAt: run.startedAt ?? new Date().toISOString() });
    const row = this.store.runRow(run.id)!;
    // Stored by this or an earlier version: settings it predates take their defaults.
    let cfg: TrainConfig;
    try {
      cfg = readStoredConfig(row.trainConfig, `run "${run.name}"`);
    } catch (e) {
      throw new ServiceError('conflict', (e as Error).message, 'this Finch cannot use the stored settings: start a new run with them corrected (Clone settings)');
    }
    const samples = await this.samplePrompts(run, cfg, row.config?.samplePrompts ?? 0).catch((e: unknown) => {
      this.log(run.id, 'warn', `no sample answers: ${(e as Error).message}`);
      return null;
    });
    if (active.settled) return; // the app stopped meanwhile
    if (active.control.cancelled) { // cancelled before it had a job: nothing to stop
      active.done = true;
      active.request = null;
      this.cancelled(run.id, this.run(run.id).step);
      this.settle(active);
      return;
    }
    const job = this.spawnJob('train', { config: cfg, samples });
    active.job = job;
    if (active.control.paused) job.send({ op: 'pause' });
    if (active.control.cancelled) job.send({ op: 'cancel' });
    this.log(run.id, 'info', `training on ${cfg.provider} in ${cfg.out}`);
    job.onMessage((m) => {
      if (active.settled) return;
      switch (m.type) {
        case 'train': this.onTrainEvent(active, m.event); break;
        case 'samples': this.onSamples(run.id, m.step, m.samples); break;
        case 'log': this.log(run.id, m.level, m.message); break;
        case 'finished': this.settle(active); break;
        case 'failed': this.settle(active, toApiError(Object.assign(new Error(m.message), { name: m.name, hint: m.hint ?? undefined }))); break;
        default: break;
      }
    });
    job.onExit((code, signal) => {
      if (active.settled) return;
      this.settle(active, {
        code: 'job_failed',
        message: `the training process ended unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`,
        hint: 'resume the run: it continues from its last checkpoint',
      });
    });
  }

  private settle(a: Active, error?: ApiError): void {
    if (a.settled) return;
    a.settled = true;
    // A job that ends badly after its trainer said 'done' leaves the run as the trainer left it.
    if (error && !a.done) this.fail(a.runId, error);
    if (this.active === a) this.active = null;
    a.job?.kill();
    this.schedule();
  }

  private fail(runId: string, error: ApiError): void {
    if (!this.move(runId, 'failed', { error, finishedAt: new Date().toISOString() }, error)) return;
    this.log(runId, 'error', error.message);
  }

  /** Stores what a trainer event changes, and forwards the event to the renderer as it is. */
  private onTrainEvent(a: Active, e: TrainEvent): void {
    const id = a.runId;
    switch (e.event) {
      case 'phase':
        a.phase = e.phase;
        break;
      case 'prepared':
        this.store.updateRun(id, { totalSteps: e.total_steps });
        for (const note of e.notes) this.log(id, 'info', note);
        break;
      case 'step':
        this.store.addMetric(id, e);
        this.store.updateRun(id, { step: e.step, totalSteps: e.total_steps, loss: e.loss, durationS: a.priorSeconds + e.elapsed_s });
        break;
      case 'eval': {
        const best = this.run(id).bestEvalLoss;
        this.store.addEval(id, e, []);
        this.store.updateRun(id, { evalLoss: e.eval_loss, bestEvalLoss: best === null ? e.eval_loss : Math.min(best, e.eval_loss) });
        break;
      }
      case 'checkpoint':
        this.store.addCheckpoint(id, e.step, e.path);
        this.refreshCheckpoints(this.run(id));
        break;
      case 'ready': {
        const s = (x: number) => `${x.toFixed(1)} s`;
        const int4 = e.int4_source === 'cache' ? ' (4-bit weights from the cache)' : e.int4_source === 'quantized' ? ' (4-bit weights quantized and cached)' : '';
        this.log(id, 'info', `ready after ${s(e.total_s)}: loading ${s(e.load_s)}${int4}, data ${s(e.data_s)}, graphs ${s(e.graph_s)}, sessions ${s(e.session_s)}`);
        // A cold 4-bit load has just written a weight cache entry.
        if (e.int4_source === 'quantized') this.bus.emit({ type: 'library-changed', what: 'weight-cache' });
        break;
      }
      case 'device':
        if (e.fallback_unchecked) this.log(id, 'info', `nodes that fall back to the CPU are ${e.fallback_unchecked}`);
        break;
      case 'note':
        this.log(id, 'warn', e.message);
        break;
      case 'paused':
        this.log(id, 'info', e.phase === 'training' ? `paused at step ${e.step}`
          : `paused while ${e.phase === 'checkpoint' ? 'writing a checkpoint' : e.phase} (after step ${e.step})`);
        break;
      case 'continued':
        this.log(id, 'info', `continued at step ${e.step}`);
        break;
      case 'resumed':
        // Steps after the checkpoint were lost with the process that made them: they run again.
        this.store.dropMetricsAfter(id, e.step);
        this.store.updateRun(id, { step: e.step });
        this.log(id, 'info', `resumed from the checkpoint of step ${e.step}`);
        break;
      case 'done': // below, once the event is out: the run's status follows it
        break;
    }
    this.emit(runTrainEvent(id, e));
    // The run's status follows the trainer, after its event.
    if (e.event === 'paused') {
      if (a.request === 'pause') a.request = null;
      this.move(id, 'paused');
    } else if (e.event === 'continued') {
      if (a.request === 'resume') a.request = null;
      this.move(id, 'running');
    } else if (e.event === 'done') {
      a.done = true;
      a.request = null;
      const patch = { step: e.steps, loss: e.loss, adapterPath: e.status === 'completed' ? e.adapter : null };
      if (e.status === 'cancelled') {
        this.cancelled(id, e.steps, patch);
      } else {
        this.move(id, 'completed', { ...patch, finishedAt: new Date().toISOString() });
        this.onCompleted(this.run(id));
      }
    }
  }

  private onSamples(runId: string, step: number, samples: EvalSample[]): void {
    this.store.addEval(runId, { step, eval_loss: null, perplexity: null }, samples);
    this.emit({ type: 'run-samples', runId, step, samples });
  }

  private refreshCheckpoints(r: RunSummary): void {
    const root = join(r.dir, 'checkpoints');
    if (!existsSync(root)) return;
    const present = readdirSync(root).filter((n) => /^step-\d+$/.test(n) && existsSync(join(root, n, 'trainer_state.json')))
      .map((n) => ({ step: Number(n.slice(5)), path: join(root, n) }));
    this.store.setCheckpoints(r.id, present);
  }

  private activeFor(runId: string): Active | null {
    const a = this.active;
    return a && a.runId === runId && !a.settled ? a : null;
  }

  /** A run as the app sees it: the stored row, and what its job is doing and was asked while it has one. */
  private live(r: RunSummary): RunSummary {
    const a = this.activeFor(r.id);
    return a ? { ...r, request: a.request, phase: a.phase } : r;
  }

  /** Records what the job was asked (null: nothing pending) and tells the app. */
  private ask(a: Active, request: RunRequest | null): void {
    a.request = request;
    this.emitStatus(a.runId);
  }

  /**
   * Moves a run to `to` with `patch`, if MOVES allows it from where it is; a move it does not allow
   * is a bug somewhere, logged and refused. Returns whether it moved.
   */
  private move(runId: string, to: RunStatus, patch: RunPatch = {}, error: ApiError | null = null): boolean {
    const from = this.store.run(runId)?.status;
    if (!from) return false;
    if (from !== to && !MOVES[from].includes(to)) {
      this.warn(`run ${runId}: a move from '${from}' to '${to}' was refused`);
      return false;
    }
    this.store.updateRun(runId, { ...patch, status: to });
    this.emitStatus(runId, error);
    return true;
  }

  private emitStatus(runId: string, error: ApiError | null = null): void {
    const r = this.store.run(runId);
    if (!r) return;
    this.emit({ type: 'run-status', runId, status: r.status, error, request: this.activeFor(runId)?.request ?? null });
  }

  private log(runId: string, level: LogLine['level'], message: string): void {
    const line: LogLine = { at: new Date().toISOString(), level, message };
    this.store.addLog(runId, line);
    this.emit({ type: 'run-log', runId, line });
  }

  private emit(e: FinchEvent): void {
    this.bus.emit(e);
  }

  // ---- runs started from the command line ------------------------------------------------------

  /**
   * Imports run folders under FINCH_HOME/runs that the store does not know yet. Anything else
   * there (a dangling link, a file, a folder that is not a run, a run.json that fails its checks)
   * is skipped with one log line naming it and why, and never breaks the listing.
   */
  importCliRuns(): void {
    const root = runsDir();
    let names: string[];
    try {
      names = readdirSync(root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.skip(root, `cannot be read (${(e as Error).message})`);
      return;
    }
    const known = this.store.runDirs();
    let added = 0;
    for (const name of names) {
      const dir = resolve(root, name);
      if (known.has(dir)) continue;
      try {
        const why = notARunFolder(dir);
        if (why) {
          if (why !== 'no run.json') this.skip(dir, why); // a folder without run.json is a run just starting, or not a run: quietly
          continue;
        }
        this.importCliRun(dir);
        added++;
        this.skipped.delete(dir);
      } catch (e) {
        this.skip(dir, (e as Error).message);
      }
    }
    if (added) this.bus.emit({ type: 'library-changed', what: 'runs' });
  }

  /** Logs once per entry and reason. */
  private skip(path: string, why: string): void {
    if (this.skipped.get(path) === why) return;
    this.skipped.set(path, why);
    this.warn(`skipped ${path} in the runs folder: ${why}`);
  }

  private importCliRun(dir: string): void {
    const file = join(dir, 'run.json');
    const rec = readRunFile(file);
    // Resuming continues in this folder, wherever the run was first written (as `finch train --resume DIR` does).
    const cfg = { ...rec.config, out: dir };
    const demoFile = join(dir, 'demo.json');
    const demo = existsSync(demoFile) ? readDemoFile(demoFile) : null;
    // 'running' in run.json: the CLI process may still be training, or was killed; either way the app did not start it.
    const status: RunStatus = rec.status === 'completed' || rec.status === 'cancelled' ? rec.status : 'interrupted';
    const model = this.store.modelByPath(resolve(cfg.model)), data = this.store.datasetByPath(resolve(cfg.data));
    // A killed run's run.json is the one written at its start: its progress is in its latest checkpoint.
    const ck = rec.losses ? null : latestCheckpoint(dir);
    const progress = ck ? readState(ck) : rec;
    const losses = progress.losses ?? [], evals = progress.evals ?? [];
    const total = cfg.maxSteps ?? null;
    const created = statSync(file).birthtime.toISOString();
    const run = this.store.addRun({
      name: basename(dir), kind: demo ? 'demo' : 'train', origin: 'cli', status, modelId: model?.id ?? null, datasetId: data?.id ?? null,
      modelName: model?.name ?? basename(cfg.model), datasetName: data?.name ?? basename(cfg.data), config: null,
      trainConfig: cfg, provider: rec.device?.provider ?? (cfg.provider === 'auto' ? null : cfg.provider), dir, totalSteps: total, createdAt: created,
    });
    for (const l of losses) {
      // The trainer's run.json keeps step and loss; the learning rate follows from the schedule. Unknown values are 0.
      this.store.addMetric(run.id, { step: l.step, loss: l.loss, lr: learningRate(cfg.schedule, cfg.lr, l.step - 1, total ?? losses.length, cfg.warmupSteps), grad_norm: 0, tokens_per_s: 0, rss_mb: 0 });
    }
    for (const e of evals) this.store.addEval(run.id, { step: e.step, eval_loss: e.loss, perplexity: Math.exp(e.loss) }, []);
    const finalAdapter = status === 'completed' && existsSync(join(dir, 'adapter_model.safetensors')) ? dir : null;
    this.store.updateRun(run.id, {
      step: progress.step ?? losses.at(-1)?.step ?? 0, loss: losses.at(-1)?.loss ?? null, evalLoss: evals.at(-1)?.loss ?? null,
      bestEvalLoss: evals.length ? Math.min(...evals.map((e) => e.loss)) : null, adapterPath: finalAdapter,
      demo: demo ? {
        baseAccuracy: demo.base_accuracy, tunedAccuracy: demo.tuned_accuracy,
        rows: demo.rows.map((r) => ({ prompt: r.prompt, reference: r.reference, base: r.base, tuned: r.adapter, baseCorrect: r.baseCorrect, tunedCorrect: r.adapterCorrect })),
      } : null,
    });
    this.refreshCheckpoints(this.run(run.id));
    this.log(run.id, 'info', `found in ${dir}: started from the finch command line`);
  }
}

/** Why an entry of the runs folder is not a run folder to import, or null when it is one. */
function notARunFolder(path: string): string | null {
  const link = lstatSync(path);
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    return link.isSymbolicLink() ? `a link to ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'nothing (its target is gone)' : 'something unreadable'}` : (e as Error).message;
  }
  if (!st.isDirectory()) return 'not a folder';
  if (!existsSync(join(path, 'run.json'))) return 'no run.json';
  return null;
}
