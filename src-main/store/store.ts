// Typed access to the library database: rows in, contract types (src-shared/api.ts) out. Every
// statement lives here; services never write SQL.

import { randomUUID } from 'node:crypto';
import type {
  AdapterSummary, ApiError, CheckpointInfo, ColumnMap, Comparison, DatasetSummary, DemoResult, EvalPoint, EvalSample,
  FormatName, LogLine, MetricPoint, ModelSide, ModelSummary, RunConfig, RunStatus, RunSummary, Sampling,
} from '../../src-shared/api.js';
import { openDb, type Db } from './db.js';
import type { RewardMetrics } from '../../src-shared/train-events.js';

type Row = Record<string, unknown>;
const json = <T>(s: unknown): T | null => (typeof s === 'string' ? (JSON.parse(s) as T) : null);

/** A preference step's or evaluation's reward metrics as stored (null for SFT). */
const rewardsJson = (e: object & Partial<RewardMetrics>): string | null =>
  e.reward_accuracy === undefined ? null : JSON.stringify({ rewards_chosen: e.rewards_chosen, rewards_rejected: e.rewards_rejected, reward_margin: e.reward_margin, reward_accuracy: e.reward_accuracy });
const now = (): string => new Date().toISOString();
export const newId = (): string => randomUUID();

export type NewModel = Omit<ModelSummary, 'id' | 'addedAt'>;
export type NewDataset = Omit<DatasetSummary, 'id' | 'addedAt'>;
export type NewAdapter = Omit<AdapterSummary, 'id' | 'addedAt'>;

export interface NewRun {
  id?: string;
  name: string;
  kind: RunSummary['kind'];
  origin: RunSummary['origin'];
  status: RunStatus;
  modelId: string | null;
  datasetId: string | null;
  modelName: string;
  datasetName: string;
  config: RunConfig | null;
  trainConfig: Record<string, unknown> | null;
  provider: string | null;
  dir: string;
  totalSteps?: number | null;
  createdAt?: string;
}

/** Fields of a run the services update as it progresses. */
export interface RunPatch {
  status?: RunStatus;
  step?: number;
  totalSteps?: number | null;
  loss?: number | null;
  evalLoss?: number | null;
  bestEvalLoss?: number | null;
  startedAt?: string | null;
  finishedAt?: string | null;
  durationS?: number;
  adapterPath?: string | null;
  error?: ApiError | null;
  demo?: DemoResult | null;
  trainConfig?: Record<string, unknown> | null;
}

const RUN_COLUMNS: Record<keyof RunPatch, string> = {
  status: 'status', step: 'step', totalSteps: 'total_steps', loss: 'loss', evalLoss: 'eval_loss', bestEvalLoss: 'best_eval_loss',
  startedAt: 'started_at', finishedAt: 'finished_at', durationS: 'duration_s', adapterPath: 'adapter_path',
  error: 'error_json', demo: 'demo_json', trainConfig: 'train_config_json',
};
const JSON_FIELDS = new Set<keyof RunPatch>(['error', 'demo', 'trainConfig']);

export class Store {
  readonly db: Db;

  constructor(file: string) {
    this.db = openDb(file);
  }

  close(): void {
    this.db.close();
  }

  // ---- models ----------------------------------------------------------------------------------

  addModel(m: NewModel): ModelSummary {
    const id = newId(), addedAt = now();
    this.db.prepare(`INSERT INTO models (id, name, path, source, repo, revision, model_type, parameters, size_bytes, dtype, has_chat_template, added_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(id, m.name, m.path, m.source, m.repo, m.revision, m.modelType, m.parameters, m.sizeBytes, m.dtype, m.hasChatTemplate ? 1 : 0, addedAt);
    return { ...m, id, addedAt };
  }

  listModels(): ModelSummary[] {
    return (this.db.prepare('SELECT * FROM models ORDER BY added_at, rowid').all() as Row[]).map(toModel);
  }

  model(id: string): ModelSummary | null {
    const r = this.db.prepare('SELECT * FROM models WHERE id = ?').get(id) as Row | undefined;
    return r ? toModel(r) : null;
  }

  modelByPath(path: string): ModelSummary | null {
    const r = this.db.prepare('SELECT * FROM models WHERE path = ?').get(path) as Row | undefined;
    return r ? toModel(r) : null;
  }

  removeModel(id: string): void {
    this.db.prepare('DELETE FROM models WHERE id = ?').run(id);
  }

  // ---- datasets --------------------------------------------------------------------------------

  addDataset(d: NewDataset): DatasetSummary {
    const id = newId(), addedAt = now();
    this.db.prepare(`INSERT INTO datasets (id, name, path, source, repo, split, file_kind, size_bytes, format, map_json, added_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(id, d.name, d.path, d.source, d.repo, d.split, d.fileKind, d.sizeBytes, d.format, d.map ? JSON.stringify(d.map) : null, addedAt);
    return { ...d, id, addedAt };
  }

  listDatasets(): DatasetSummary[] {
    return (this.db.prepare('SELECT * FROM datasets ORDER BY added_at, rowid').all() as Row[]).map(toDataset);
  }

  dataset(id: string): DatasetSummary | null {
    const r = this.db.prepare('SELECT * FROM datasets WHERE id = ?').get(id) as Row | undefined;
    return r ? toDataset(r) : null;
  }

  datasetByPath(path: string): DatasetSummary | null {
    const r = this.db.prepare('SELECT * FROM datasets WHERE path = ? ORDER BY rowid LIMIT 1').get(path) as Row | undefined;
    return r ? toDataset(r) : null;
  }

  removeDataset(id: string): void {
    this.db.prepare('DELETE FROM datasets WHERE id = ?').run(id);
  }

  // ---- runs ------------------------------------------------------------------------------------

  addRun(r: NewRun): RunSummary {
    const id = r.id ?? newId();
    this.db.prepare(`INSERT INTO runs (id, name, kind, origin, status, model_id, dataset_id, model_name, dataset_name, config_json, train_config_json,
      provider, dir, total_steps, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      id, r.name, r.kind, r.origin, r.status, r.modelId, r.datasetId, r.modelName, r.datasetName,
      r.config ? JSON.stringify(r.config) : null, r.trainConfig ? JSON.stringify(r.trainConfig) : null, r.provider, r.dir, r.totalSteps ?? null, r.createdAt ?? now(),
    );
    return this.run(id)!;
  }

  updateRun(id: string, patch: RunPatch): void {
    const keys = Object.keys(patch) as (keyof RunPatch)[];
    if (!keys.length) return;
    const values = keys.map((k) => {
      const v = patch[k];
      if (JSON_FIELDS.has(k)) return v == null ? null : JSON.stringify(v);
      return v ?? null;
    });
    this.db.prepare(`UPDATE runs SET ${keys.map((k) => `${RUN_COLUMNS[k]} = ?`).join(', ')} WHERE id = ?`).run(...values, id);
  }

  run(id: string): RunSummary | null {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
    return r ? toRun(r) : null;
  }

  runRow(id: string): { config: RunConfig | null; trainConfig: Record<string, unknown> | null; demo: DemoResult | null } | null {
    const r = this.db.prepare('SELECT config_json, train_config_json, demo_json FROM runs WHERE id = ?').get(id) as Row | undefined;
    return r ? { config: json<RunConfig>(r.config_json), trainConfig: json(r.train_config_json), demo: json<DemoResult>(r.demo_json) } : null;
  }

  listRuns(): RunSummary[] {
    return (this.db.prepare('SELECT * FROM runs ORDER BY created_at DESC, rowid DESC').all() as Row[]).map(toRun);
  }

  runsWithStatus(...statuses: RunStatus[]): RunSummary[] {
    return (this.db.prepare(`SELECT * FROM runs WHERE status IN (${statuses.map(() => '?').join(',')}) ORDER BY created_at, rowid`).all(...statuses) as Row[]).map(toRun);
  }

  runDirs(): Set<string> {
    return new Set((this.db.prepare('SELECT dir FROM runs').all() as { dir: string }[]).map((r) => r.dir));
  }

  deleteRun(id: string): void {
    this.db.prepare('DELETE FROM runs WHERE id = ?').run(id);
  }

  /**
   * After a crash or restart no job process survives: runs left 'running' become 'interrupted'
   * (resumable from their last checkpoint). Paused runs stay paused: a pause writes a checkpoint
   * first (train/trainer.ts), and a run paused while queued never had a job. Returns their ids.
   */
  markInterrupted(): string[] {
    const ids = (this.db.prepare("SELECT id FROM runs WHERE status = 'running'").all() as { id: string }[]).map((r) => r.id);
    this.db.prepare("UPDATE runs SET status = 'interrupted' WHERE status = 'running'").run();
    return ids;
  }

  addMetric(runId: string, m: MetricPoint): void {
    this.db.prepare('INSERT OR REPLACE INTO metrics (run_id, step, loss, lr, grad_norm, tokens_per_s, rss_mb, rewards_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(runId, m.step, m.loss, m.lr, m.grad_norm, m.tokens_per_s, m.rss_mb, rewardsJson(m));
  }

  /** Resume repeats no step, but a crash between a metric and its checkpoint does: drop steps past the checkpoint. */
  dropMetricsAfter(runId: string, step: number): void {
    this.db.prepare('DELETE FROM metrics WHERE run_id = ? AND step > ?').run(runId, step);
    this.db.prepare('DELETE FROM evals WHERE run_id = ? AND step > ?').run(runId, step);
  }

  metrics(runId: string): MetricPoint[] {
    return (this.db.prepare('SELECT * FROM metrics WHERE run_id = ? ORDER BY step').all(runId) as Row[]).map((r) => ({
      step: r.step as number, loss: r.loss as number, lr: r.lr as number, grad_norm: r.grad_norm as number, tokens_per_s: r.tokens_per_s as number, rss_mb: r.rss_mb as number,
      ...json<RewardMetrics>(r.rewards_json),
    }));
  }

  /** An evaluation's loss, or (nulls) its sample answers only: each fills what the other left. */
  addEval(runId: string, e: EvalPoint | { step: number; eval_loss: null; perplexity: null }, samples: EvalSample[]): void {
    this.db.prepare(`INSERT INTO evals (run_id, step, eval_loss, perplexity, samples_json, rewards_json) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_id, step) DO UPDATE SET eval_loss = coalesce(excluded.eval_loss, eval_loss), perplexity = coalesce(excluded.perplexity, perplexity),
      samples_json = CASE WHEN excluded.samples_json = '[]' THEN samples_json ELSE excluded.samples_json END, rewards_json = coalesce(excluded.rewards_json, rewards_json)`)
      .run(runId, e.step, e.eval_loss, e.perplexity, JSON.stringify(samples), rewardsJson(e));
  }

  evals(runId: string): { step: number; eval_loss: number | null; perplexity: number | null; samples: EvalSample[]; rewards: RewardMetrics | null }[] {
    return (this.db.prepare('SELECT * FROM evals WHERE run_id = ? ORDER BY step').all(runId) as Row[]).map((r) => ({
      step: r.step as number, eval_loss: r.eval_loss as number | null, perplexity: r.perplexity as number | null, samples: json<EvalSample[]>(r.samples_json) ?? [],
      rewards: json<RewardMetrics>(r.rewards_json),
    }));
  }

  addCheckpoint(runId: string, step: number, path: string): void {
    this.db.prepare('INSERT OR REPLACE INTO checkpoints (run_id, step, path, created_at) VALUES (?, ?, ?, ?)').run(runId, step, path, now());
  }

  /** Keeps only the checkpoints still on disk (the trainer prunes old ones). */
  setCheckpoints(runId: string, present: { step: number; path: string }[]): void {
    this.db.transaction(() => {
      const keep = new Set(present.map((p) => p.step));
      for (const c of this.checkpoints(runId)) if (!keep.has(c.step)) this.db.prepare('DELETE FROM checkpoints WHERE run_id = ? AND step = ?').run(runId, c.step);
      for (const p of present) this.db.prepare('INSERT OR IGNORE INTO checkpoints (run_id, step, path, created_at) VALUES (?, ?, ?, ?)').run(runId, p.step, p.path, now());
    })();
  }

  checkpoints(runId: string): CheckpointInfo[] {
    return (this.db.prepare('SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step').all(runId) as Row[]).map((r) => ({
      step: r.step as number, path: r.path as string, createdAt: r.created_at as string,
    }));
  }

  addLog(runId: string, line: LogLine): void {
    this.db.prepare('INSERT INTO run_logs (run_id, at, level, message) VALUES (?, ?, ?, ?)').run(runId, line.at, line.level, line.message);
  }

  logs(runId: string): LogLine[] {
    return (this.db.prepare('SELECT at, level, message FROM run_logs WHERE run_id = ? ORDER BY id').all(runId) as LogLine[]);
  }

  // ---- adapters --------------------------------------------------------------------------------

  addAdapter(a: NewAdapter): AdapterSummary {
    const id = newId(), addedAt = now();
    this.db.prepare(`INSERT INTO adapters (id, name, path, base_model_id, origin, run_id, rank, alpha, targets_json, added_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(id, a.name, a.path, a.baseModelId, a.origin, a.runId, a.rank, a.alpha, JSON.stringify(a.targets), addedAt);
    return { ...a, id, addedAt };
  }

  listAdapters(): AdapterSummary[] {
    return (this.db.prepare('SELECT * FROM adapters ORDER BY added_at, rowid').all() as Row[]).map(toAdapter);
  }

  adapter(id: string): AdapterSummary | null {
    const r = this.db.prepare('SELECT * FROM adapters WHERE id = ?').get(id) as Row | undefined;
    return r ? toAdapter(r) : null;
  }

  // ---- comparisons -----------------------------------------------------------------------------

  addComparison(c: Omit<Comparison, 'id' | 'createdAt'>): Comparison {
    const id = newId(), createdAt = now();
    this.db.prepare(`INSERT INTO comparisons (id, model_id, left_json, right_json, left_label, right_label, messages_json, left_output, right_output,
      sampling_json, max_new_tokens, rating, notes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      id, c.modelId, JSON.stringify(c.left), JSON.stringify(c.right), c.leftLabel, c.rightLabel, JSON.stringify(c.messages),
      c.leftOutput, c.rightOutput, c.sampling ? JSON.stringify(c.sampling) : null, c.maxNewTokens, c.rating, c.notes, createdAt,
    );
    return { ...c, id, createdAt };
  }

  listComparisons(): Comparison[] {
    return (this.db.prepare('SELECT * FROM comparisons ORDER BY created_at, rowid').all() as Row[]).map((r) => ({
      id: r.id as string, modelId: r.model_id as string, left: json<ModelSide>(r.left_json)!, right: json<ModelSide>(r.right_json)!,
      leftLabel: r.left_label as string, rightLabel: r.right_label as string, messages: json(r.messages_json) ?? [],
      leftOutput: r.left_output as string, rightOutput: r.right_output as string, sampling: json<Sampling>(r.sampling_json),
      maxNewTokens: r.max_new_tokens as number | null, rating: r.rating as Comparison['rating'], notes: r.notes as string, createdAt: r.created_at as string,
    }));
  }

  // ---- settings --------------------------------------------------------------------------------

  setting<T>(key: string): T | null {
    const r = this.db.prepare('SELECT value_json FROM settings WHERE key = ?').get(key) as { value_json: string } | undefined;
    return r ? (JSON.parse(r.value_json) as T) : null;
  }

  setSetting(key: string, value: unknown): void {
    if (value === null || value === undefined) this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
    else this.db.prepare('INSERT OR REPLACE INTO settings (key, value_json) VALUES (?, ?)').run(key, JSON.stringify(value));
  }

  /**
   * Deletes a setting and overwrites its old bytes in the database file and its write-ahead log (a
   * secret an earlier version kept here), so no copy lingers in free pages.
   */
  eraseSetting(key: string): void {
    this.db.pragma('secure_delete = ON');
    try {
      this.setSetting(key, null);
    } finally {
      this.db.pragma('secure_delete = OFF');
    }
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }
}

function toModel(r: Row): ModelSummary {
  return {
    id: r.id as string, name: r.name as string, path: r.path as string, source: r.source as ModelSummary['source'],
    repo: r.repo as string | null, revision: r.revision as string | null, modelType: r.model_type as string,
    parameters: r.parameters as number, sizeBytes: r.size_bytes as number, dtype: r.dtype as string,
    hasChatTemplate: r.has_chat_template === 1, addedAt: r.added_at as string,
  };
}

function toDataset(r: Row): DatasetSummary {
  return {
    id: r.id as string, name: r.name as string, path: r.path as string, source: r.source as DatasetSummary['source'],
    repo: r.repo as string | null, split: r.split as string | null, fileKind: r.file_kind as string, sizeBytes: r.size_bytes as number,
    format: r.format as FormatName | null, map: json<ColumnMap>(r.map_json), addedAt: r.added_at as string,
  };
}

function toRun(r: Row): RunSummary {
  return {
    id: r.id as string, name: r.name as string, kind: r.kind as RunSummary['kind'], origin: r.origin as RunSummary['origin'],
    status: r.status as RunStatus, modelId: r.model_id as string | null, datasetId: r.dataset_id as string | null,
    modelName: r.model_name as string, datasetName: r.dataset_name as string, provider: r.provider as RunSummary['provider'],
    step: r.step as number, totalSteps: r.total_steps as number | null, loss: r.loss as number | null, evalLoss: r.eval_loss as number | null,
    bestEvalLoss: r.best_eval_loss as number | null, createdAt: r.created_at as string, startedAt: r.started_at as string | null,
    finishedAt: r.finished_at as string | null, durationS: r.duration_s as number, dir: r.dir as string,
    adapterPath: r.adapter_path as string | null, error: json<ApiError>(r.error_json),
    request: null, phase: null, // live facts of a run's job: the services add them
  };
}

function toAdapter(r: Row): AdapterSummary {
  return {
    id: r.id as string, name: r.name as string, path: r.path as string, baseModelId: r.base_model_id as string,
    origin: r.origin as AdapterSummary['origin'], runId: r.run_id as string | null, rank: r.rank as number, alpha: r.alpha as number,
    targets: json<string[]>(r.targets_json) ?? [], addedAt: r.added_at as string,
  };
}
