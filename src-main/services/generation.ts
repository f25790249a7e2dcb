// The compare view's engine: one long-lived generation job process keeps one model loaded and
// answers both sides of a comparison from it (base and tuned rows in one batch, with per-row LoRA
// scales). Its deltas become 'generation-*' events keyed by generation id and side. If the
// process dies, its requests fail with job_failed and the next request starts a fresh one.

import type { BatchCompareResult, ChatMessage, GenerateRequest, Sampling } from '../../src-shared/api.js';
import type { TemplateChoice } from '../data/template.js';
import type { ColumnMap, FormatName } from '../data/formats.js';
import type { EventBus } from './bus.js';
import { ServiceError, toApiError } from './errors.js';
import type { FromJob, JobHandle, SpawnJob } from './jobs.js';
import { newId } from '../store/store.js';

interface PendingBatch { resolve: (r: BatchCompareResult['rows']) => void; reject: (e: Error) => void; batchId: string | null }

export interface ResolvedSide { side: 'left' | 'right'; messages: ChatMessage[]; adapterDir: string | null }

export class GenerationService {
  private job: JobHandle | null = null;
  /** Live generations: id -> sides still streaming. */
  private live = new Map<string, Set<'left' | 'right'>>();
  private batches = new Map<string, PendingBatch>();

  constructor(private readonly bus: EventBus, private readonly spawnJob: SpawnJob) {}

  private engine(): JobHandle {
    if (this.job) return this.job;
    const job = this.spawnJob('generate', {});
    job.onMessage((m) => this.onMessage(m));
    job.onExit((code, signal) => {
      // A process close() ended has answered for its requests already; the requests now live belong to its successor.
      if (this.job !== job) return;
      this.job = null;
      this.failAll(`the generation process ended unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`);
    });
    this.job = job;
    return job;
  }

  /** Ends every live generation and pending batch with job_failed. */
  private failAll(message: string): void {
    const error = { code: 'job_failed' as const, message, hint: 'try again: a fresh process starts' };
    for (const id of this.live.keys()) this.bus.emit({ type: 'generation-error', generationId: id, error });
    this.live.clear();
    for (const b of this.batches.values()) b.reject(new ServiceError('job_failed', error.message, error.hint));
    this.batches.clear();
  }

  /** The generation job's process id, while one runs (tests). */
  get pid(): number | undefined {
    return this.job?.pid;
  }

  generate(modelPath: string, req: GenerateRequest, sides: ResolvedSide[]): string {
    const id = newId();
    this.live.set(id, new Set(sides.map((s) => s.side)));
    this.engine().send({
      op: 'generate', id, modelPath, rows: sides, maxNewTokens: req.maxNewTokens, sampling: (req.sampling as Sampling | undefined) ?? null,
      template: (req.template ?? 'auto') as TemplateChoice,
    });
    return id;
  }

  stop(id: string): void {
    if (this.live.has(id)) this.job?.send({ op: 'stop', id });
  }

  batch(modelPath: string, o: { left: string | null; right: string | null; dataset: string; format?: FormatName; map?: ColumnMap; rows: number; maxNewTokens: number; batchId?: string }): Promise<BatchCompareResult['rows']> {
    const id = newId();
    return new Promise((resolve, reject) => {
      this.batches.set(id, { resolve, reject, batchId: o.batchId ?? null });
      const { batchId: _b, ...rest } = o;
      this.engine().send({ op: 'batch', id, modelPath, ...rest });
    });
  }

  /** Ends the generation process (the next request starts a fresh one); what it was answering fails now. */
  close(): void {
    const job = this.job;
    this.job = null;
    job?.kill();
    this.failAll('the generation process was closed');
  }

  private onMessage(m: FromJob): void {
    switch (m.type) {
      case 'delta':
        if (this.live.has(m.id)) this.bus.emit({ type: 'generation-delta', generationId: m.id, side: m.side, text: m.text });
        break;
      case 'gen-progress':
        if (this.live.has(m.id)) this.bus.emit({ type: 'generation-progress', generationId: m.id, phase: m.phase, done: m.done, total: m.total });
        break;
      case 'gen-done': {
        const sides = this.live.get(m.id);
        if (!sides) break;
        this.bus.emit({ type: 'generation-done', generationId: m.id, side: m.side, text: m.text, tokens: m.tokens, finish: m.finish, seconds: m.seconds, tokensPerS: m.seconds > 0 ? m.tokens / m.seconds : 0, weights: m.weights });
        sides.delete(m.side);
        if (!sides.size) this.live.delete(m.id);
        break;
      }
      case 'gen-failed':
        this.live.delete(m.id);
        this.bus.emit({ type: 'generation-error', generationId: m.id, error: toApiError(Object.assign(new Error(m.message), { name: m.name })) });
        break;
      case 'batch-progress': {
        const b = this.batches.get(m.id);
        if (b?.batchId) this.bus.emit({ type: 'batch-progress', batchId: b.batchId, done: m.done, total: m.total });
        break;
      }
      case 'batch-done':
        this.batches.get(m.id)?.resolve(m.rows);
        this.batches.delete(m.id);
        break;
      case 'batch-failed':
        this.batches.get(m.id)?.reject(Object.assign(new Error(m.message), { name: m.name }));
        this.batches.delete(m.id);
        break;
      default:
        break;
    }
  }
}
