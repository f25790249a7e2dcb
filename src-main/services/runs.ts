// Fine-tuning runs: one trains at a time on a machine (later ones wait 'queued'), each in its own
// job process; its events become store rows and FinchEvents. A job that crashes (even natively)
// leaves its run 'failed' with the reason, and the next queued run starts. Runs found under
// FINCH_HOME/runs that the store does not know (started by `finch train` / `finch demo`) are
// imported with origin 'cli'.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ApiError, EvalSample, FinchEvent, LogLine, RunConfig, RunDetails, RunStatus, RunSummary } from '../../src-shared/api.js';
import { RESUMABLE, runTrainEvent } from '../../src-shared/api.js';
import { TrainConfig, readStoredConfig } from '../../src-shared/run-config.js';
import type { DeviceRecord, TrainEvent } from '../../src-shared/train-events.js';
import { configIn, latestCheckpoint, readState } from '../train/checkpoint.js';
import { learningRate } from '../train/schedule.js';
import { newRunId, runsDir } from '../store/paths.js';
import type { Store } from '../store/store.js';
import type { EventBus } from './bus.js';
import { ServiceError, toApiError } from './errors.js';
import type { JobHandle, SamplePrompts, SpawnJob } from './jobs.js';
import { removeFilesUnder, type Library } from './library.js';

interface Active {
  runId: string;
  job: JobHandle;
  settled: boolean;
  /** Seconds the run had spent before this process started (a resumed run). */
  priorSeconds: number;
}

/** The trainer's config of an app run: the same settings, with library ids resolved to paths and the provider chosen. */
export function toTrainConfig(c: RunConfig, model: string, data: string, out: string, provider: TrainConfig['provider']): TrainConfig {
  const { name: _name, modelId: _model, datasetId: _dataset, samplePrompts: _samples, ...settings } = c;
  return TrainConfig.parse({ ...settings, model, data, out, provider });
}

export class RunManager {
  private active: Active | null = null;
  // (Active.job is unset for the moment between taking the slot and the process starting.)

  constructor(
    private readonly store: Store,
    private readonly library: Library,
    private readonly bus: EventBus,
    private readonly spawnJob: SpawnJob,
    /** Held-out prompts for a run's sample answers (null: none). */
    private readonly samplePrompts: (run: RunSummary, cfg: TrainConfig, n: number) => Promise<SamplePrompts | null>,
    private readonly onCompleted: (run: RunSummary) => void,
  ) {}

  /** On start: runs a crash left 'running'/'paused' become 'interrupted'; CLI runs are imported; the queue moves. */
  recover(): void {
    for (const id of this.store.markInterrupted()) this.log(id, 'warn', 'Finch stopped while this run was training; resume continues from its last checkpoint.');
    this.importCliRuns();
    this.schedule();
  }

  run(id: string): RunSummary {
    const r = this.store.run(id);
    if (!r) throw new ServiceError('not_found', `no run with id ${id}`, 'refresh the run list');
    return r;
  }

  /** The process id of a run's job, while it has one (diagnostics and tests). */
  jobPid(id: string): number | undefined {
    return this.active?.runId === id ? this.active.job.pid : undefined;
  }

  list(): RunSummary[] {
    this.importCliRuns();
    return this.store.listRuns();
  }

  details(id: string): RunDetails {
    const r = this.run(id);
    const row = this.store.runRow(id)!;
    this.refreshCheckpoints(r);
    const evals = this.store.evals(id);
    return {
      ...r, config: row.config, trainConfig: row.trainConfig, metrics: this.store.metrics(id),
      evals: evals.filter((e) => e.eval_loss !== null).map((e) => ({ step: e.step, eval_loss: e.eval_loss!, perplexity: e.perplexity! })),
      samples: evals.filter((e) => e.samples.length).map((e) => ({ step: e.step, samples: e.samples })),
      checkpoints: this.store.checkpoints(id), logs: this.store.logs(id), demo: row.demo,
    };
  }

  start(cfg: RunConfig, kind: RunSummary['kind'], provider: TrainConfig['provider']): RunSummary {
    const model = this.library.model(cfg.modelId);
    const dataset = this.library.dataset(cfg.datasetId);
    const name = cfg.name ?? `${model.name} on ${dataset.name}`;
    const dir = join(runsDir(), newRunId(kind === 'demo' ? 'demo' : name.slice(0, 40)));
    const trainConfig = toTrainConfig({ ...cfg, format: cfg.format ?? dataset.format ?? undefined, map: cfg.map ?? dataset.map ?? undefined }, model.path, dataset.path, dir, provider);
    const run = this.store.addRun({
      name, kind, origin: 'app', status: 'queued', modelId: model.id, datasetId: dataset.id, modelName: model.name, datasetName: dataset.name,
      config: cfg, trainConfig, provider, dir, totalSteps: cfg.maxSteps,
    });
    this.status(run.id, 'queued', null);
    this.bus.emit({ type: 'library-changed', what: 'runs' });
    this.schedule();
    return this.run(run.id);
  }

  pause(id: string): RunSummary {
    const r = this.run(id);
    if (r.status === 'paused') return r;
    if (r.status !== 'running' || this.active?.runId !== id) throw new ServiceError('conflict', `run "${r.name}" is ${r.status}, not running`, null);
    this.active.job?.send({ op: 'pause' });
    this.status(id, 'paused', null);
    return this.run(id);
  }

  resume(id: string): RunSummary {
    const r = this.run(id);
    if (r.status === 'paused' && this.active?.runId === id) {
      this.active.job?.send({ op: 'resume' });
      this.status(id, 'running', null);
      return this.run(id);
    }
    if (!RESUMABLE.includes(r.status)) throw new ServiceError('conflict', `run "${r.name}" is ${r.status}: only paused, interrupted, failed or cancelled runs resume`, null);
    if (!this.store.runRow(id)?.trainConfig) throw new ServiceError('conflict', `run "${r.name}" has no saved configuration to resume from`, null);
    const last = Math.max(0, ...this.store.checkpoints(id).map((c) => c.step));
    this.log(id, 'info', last ? `resuming from the checkpoint of step ${last}` : 'resuming: no checkpoint yet, so training starts again from step 1');
    this.store.updateRun(id, { error: null, finishedAt: null });
    this.status(id, 'queued', null);
    this.schedule();
    return this.run(id);
  }

  cancel(id: string): RunSummary {
    const r = this.run(id);
    if (this.active?.runId === id) {
      this.active.job?.send({ op: 'cancel' }); // stops after the current step; 'done' sets the status
      return r;
    }
    if (r.status === 'queued' || r.status === 'interrupted' || r.status === 'paused') {
      this.store.updateRun(id, { finishedAt: new Date().toISOString() });
      this.status(id, 'cancelled', null);
      return this.run(id);
    }
    throw new ServiceError('conflict', `run "${r.name}" is already ${r.status}`, null);
  }

  delete(id: string, deleteFiles: boolean): void {
    const r = this.run(id);
    if (this.active?.runId === id) throw new ServiceError('conflict', `run "${r.name}" is training`, 'cancel it first, then delete it');
    this.store.deleteRun(id);
    if (deleteFiles) removeFilesUnder(runsDir(), r.dir);
    this.bus.emit({ type: 'library-changed', what: 'runs' });
  }

  /** Stops the running job (server shutdown): its run becomes 'interrupted', resumable. */
  shutdown(): void {
    const a = this.active;
    if (!a) return;
    a.settled = true;
    a.job?.kill();
    this.store.updateRun(a.runId, { status: 'interrupted' });
    this.active = null;
  }

  // ---- the queue -------------------------------------------------------------------------------

  private schedule(): void {
    if (this.active) return;
    const next = this.store.runsWithStatus('queued')[0];
    if (!next) return;
    void this.launch(next).catch((e) => {
      this.fail(next.id, toApiError(e));
      this.active = null;
      this.schedule();
    });
  }

  private async launch(run: RunSummary): Promise<void> {
    const row = this.store.runRow(run.id)!;
    // Stored by this or an earlier version: settings it predates take their defaults.
    const cfg = readStoredConfig(row.trainConfig, `run "${run.name}"`);
    // Reserve the slot before awaiting, so a second schedule() cannot start another run.
    const active: Active = { runId: run.id, job: null as unknown as JobHandle, settled: false, priorSeconds: run.durationS };
    this.active = active;
    const samples = await this.samplePrompts(run, cfg, row.config?.samplePrompts ?? 0).catch((e: unknown) => {
      this.log(run.id, 'warn', `no sample answers: ${(e as Error).message}`);
      return null;
    });
    const job = this.spawnJob('train', { config: cfg, samples });
    active.job = job;
    this.store.updateRun(run.id, { startedAt: run.startedAt ?? new Date().toISOString() });
    this.status(run.id, 'running', null);
    this.log(run.id, 'info', `training on ${cfg.provider} in ${cfg.out}`);
    job.onMessage((m) => {
      if (active.settled) return;
      switch (m.type) {
        case 'train': this.onTrainEvent(active, m.event); break;
        case 'samples': this.onSamples(run.id, m.step, m.samples); break;
        case 'log': this.log(run.id, m.level, m.message); break;
        case 'finished': this.settle(active); break;
        case 'failed': this.settle(active, toApiError(Object.assign(new Error(m.message), { name: m.name }))); break;
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
    if (error) this.fail(a.runId, error);
    if (this.active === a) this.active = null;
    a.job.kill();
    this.schedule();
  }

  private fail(runId: string, error: ApiError): void {
    this.store.updateRun(runId, { error, finishedAt: new Date().toISOString() });
    this.log(runId, 'error', error.message);
    this.status(runId, 'failed', error);
  }

  /** Stores what a trainer event changes, and forwards the event to the renderer as it is. */
  private onTrainEvent(a: Active, e: TrainEvent): void {
    const id = a.runId;
    switch (e.event) {
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
      case 'note':
        this.log(id, 'warn', e.message);
        break;
      case 'paused':
        this.log(id, 'info', `paused at step ${e.step}`);
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
      case 'device': // kept in run.json; the renderer reads it from the event
      case 'done': // below, once the event is out: the run's status follows it
        break;
    }
    this.emit(runTrainEvent(id, e));
    if (e.event === 'done') {
      const completed = e.status === 'completed';
      this.store.updateRun(id, { step: e.steps, loss: e.loss, adapterPath: completed ? e.adapter : null, finishedAt: new Date().toISOString() });
      this.status(id, e.status, null);
      if (completed) this.onCompleted(this.run(id));
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

  private status(runId: string, status: RunStatus, error: ApiError | null): void {
    this.store.updateRun(runId, { status });
    this.emit({ type: 'run-status', runId, status, error });
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

  /** Imports run folders under FINCH_HOME/runs that the store does not know yet. */
  importCliRuns(): void {
    const root = runsDir();
    if (!existsSync(root)) return;
    const known = this.store.runDirs();
    let added = 0;
    for (const name of readdirSync(root)) {
      const dir = resolve(root, name);
      if (known.has(dir) || !statSync(dir).isDirectory() || !existsSync(join(dir, 'run.json'))) continue;
      try {
        this.importCliRun(dir);
        added++;
      } catch {
        // A half-written or foreign folder: not a run the app can show.
      }
    }
    if (added) this.bus.emit({ type: 'library-changed', what: 'runs' });
  }

  private importCliRun(dir: string): void {
    const file = join(dir, 'run.json');
    const rec = JSON.parse(readFileSync(file, 'utf8')) as {
      config: unknown; status: string; device?: DeviceRecord; step?: number; losses?: { step: number; loss: number }[]; evals?: { step: number; loss: number }[];
    };
    // Resuming continues in this folder, wherever the run was first written (as `finch train --resume DIR` does).
    const cfg = { ...configIn(file, rec), out: dir };
    const demoFile = join(dir, 'demo.json');
    const demo = existsSync(demoFile) ? JSON.parse(readFileSync(demoFile, 'utf8')) as { base_accuracy: number; tuned_accuracy: number; rows: { prompt: string; reference: string; base: string; adapter: string | null; baseCorrect: boolean; adapterCorrect: boolean | null }[] } : null;
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
