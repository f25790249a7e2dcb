// The side-by-side chat: two message lists (left and right), fed by one `generate` call per user
// message that streams both sides at once ('generation-delta' / 'generation-done' events, keyed by
// generation id and side). Each side keeps its own history, so a multi-turn chat continues each
// model's own answers. Also saving a comparison and the batch compare on held-out rows.

import { GREEDY_SAMPLING, type BatchCompareResult, type ChatMessage, type ChatWeights, type Comparison, type ModelSide, type Sampling } from '../../../../src-shared/api.ts';
import { finch, onEvent } from '../services/finch.ts';

export type Side = 'left' | 'right';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
  /** Still streaming. */
  pending?: boolean;
  /** After the answer: tokens and speed, or the error that ended it. */
  stats?: { tokens: number; tokensPerS: number; finish: string; weights: ChatWeights };
  error?: string;
}

export function sideKey(s: ModelSide): string {
  return s.kind === 'base' ? 'base' : s.kind === 'run' ? `run:${s.runId}${s.step ? `@${s.step}` : ''}` : `adapter:${s.adapterId}`;
}

export function parseSideKey(key: string): ModelSide {
  if (key.startsWith('run:')) {
    const [runId, step] = key.slice(4).split('@');
    return step ? { kind: 'run', runId: runId!, step: Number(step) } : { kind: 'run', runId: runId! };
  }
  if (key.startsWith('adapter:')) return { kind: 'adapter', adapterId: key.slice(8) };
  return { kind: 'base' };
}

export class CompareSession {
  modelId = $state<string | null>(null);
  left = $state<ModelSide>({ kind: 'base' });
  right = $state<ModelSide>({ kind: 'base' });
  leftLabel = $state('Base model');
  rightLabel = $state('Tuned');
  messages = $state<Record<Side, ChatTurn[]>>({ left: [], right: [] });
  sampling = $state<Sampling>({ ...GREEDY_SAMPLING });
  maxNewTokens = $state(64);
  generationId = $state<string | null>(null);
  /** While the engine quantizes the model to 4 bits before the first token: weights done / total. */
  quantizing = $state<{ done: number; total: number } | null>(null);
  error = $state<unknown>(null);

  saved = $state<Comparison | null>(null);
  saving = $state(false);
  saveError = $state<unknown>(null);

  batch = $state<BatchCompareResult | null>(null);
  /** The dataset the batch answered (the Export step puts the comparison in a pushed model card). */
  batchDatasetId = $state<string | null>(null);
  batchRunning = $state(false);
  batchProgress = $state<{ done: number; total: number } | null>(null);
  batchError = $state<unknown>(null);
  private batchId: string | null = null;

  readonly streaming = $derived(this.generationId !== null);
  readonly hasAnswers = $derived(this.messages.left.some((m) => m.role === 'assistant' && !m.pending));

  constructor() {
    onEvent('generation-progress', (e) => {
      if (this.owns(e.generationId)) this.quantizing = { done: e.done, total: e.total };
    });
    onEvent('generation-delta', (e) => {
      if (!this.owns(e.generationId)) return;
      this.quantizing = null;
      const last = this.messages[e.side].at(-1);
      if (last?.pending) last.content += e.text;
    });
    onEvent('generation-done', (e) => {
      if (!this.owns(e.generationId)) return;
      this.quantizing = null;
      const last = this.messages[e.side].at(-1);
      if (last?.pending) {
        last.content = e.text;
        last.pending = false;
        last.stats = { tokens: e.tokens, tokensPerS: e.tokensPerS, finish: e.finish, weights: e.weights };
      }
      if (!this.messages.left.at(-1)?.pending && !this.messages.right.at(-1)?.pending) this.generationId = null;
    });
    onEvent('generation-error', (e) => {
      if (!this.owns(e.generationId)) return;
      this.quantizing = null;
      for (const side of ['left', 'right'] as const) {
        const last = this.messages[side].at(-1);
        if (last?.pending) { last.pending = false; last.error = e.error.message; }
      }
      this.error = e.error;
      this.generationId = null;
    });
    onEvent('batch-progress', (e) => {
      if (e.batchId === this.batchId) this.batchProgress = { done: e.done, total: e.total };
    });
  }

  /** Whether an event belongs to this chat's generation; the first event may beat generate()'s answer. */
  private owns(id: string): boolean {
    if (this.generationId === 'pending') this.generationId = id;
    return id === this.generationId;
  }

  /** Sets up the two sides (clears the chat when they change). */
  setup(modelId: string, left: ModelSide, right: ModelSide, labels: { left: string; right: string }): void {
    const same = this.modelId === modelId && sideKey(left) === sideKey(this.left) && sideKey(right) === sideKey(this.right);
    this.modelId = modelId;
    this.left = left;
    this.right = right;
    this.leftLabel = labels.left;
    this.rightLabel = labels.right;
    if (!same) this.clear();
  }

  clear(): void {
    this.messages = { left: [], right: [] };
    this.saved = null;
    this.error = null;
    this.batch = null;
  }

  /** The conversation one side has seen (for its next request). */
  private history(side: Side): ChatMessage[] {
    return this.messages[side].filter((m) => !m.error).map((m) => ({ role: m.role, content: m.content }));
  }

  async send(text: string): Promise<void> {
    const prompt = text.trim();
    if (!prompt || !this.modelId || this.streaming) return;
    this.error = null;
    this.saved = null;
    for (const side of ['left', 'right'] as const) {
      this.messages[side].push({ role: 'user', content: prompt });
    }
    const req = {
      modelId: this.modelId,
      left: { side: $state.snapshot(this.left), messages: this.history('left') },
      right: { side: $state.snapshot(this.right), messages: this.history('right') },
      sampling: $state.snapshot(this.sampling),
      maxNewTokens: this.maxNewTokens,
    };
    for (const side of ['left', 'right'] as const) this.messages[side].push({ role: 'assistant', content: '', pending: true });
    this.generationId = 'pending';
    try {
      const { generationId } = await finch().generate(req);
      // Deltas that raced ahead of this answer carry the real id: adopt it only if still pending.
      if (this.generationId === 'pending') this.generationId = generationId;
    } catch (e) {
      this.error = e;
      this.generationId = null;
      for (const side of ['left', 'right'] as const) {
        this.messages[side].pop();
        this.messages[side].pop();
      }
    }
  }

  async stop(): Promise<void> {
    if (this.generationId && this.generationId !== 'pending') {
      try { await finch().stopGeneration(this.generationId); } catch (e) { this.error = e; }
    }
  }

  async save(rating: Comparison['rating'], notes: string): Promise<void> {
    if (!this.modelId || !this.hasAnswers) return;
    const left = this.messages.left;
    const lastUser = left.findLastIndex((m) => m.role === 'user');
    this.saving = true;
    this.saveError = null;
    try {
      this.saved = await finch().saveComparison({
        modelId: this.modelId,
        left: $state.snapshot(this.left),
        right: $state.snapshot(this.right),
        messages: left.slice(0, lastUser + 1).map((m) => ({ role: m.role, content: m.content })),
        leftOutput: left.at(-1)?.content ?? '',
        rightOutput: this.messages.right.at(-1)?.content ?? '',
        sampling: $state.snapshot(this.sampling),
        maxNewTokens: this.maxNewTokens,
        rating,
        notes,
      });
    } catch (e) {
      this.saveError = e;
    } finally {
      this.saving = false;
    }
  }

  async runBatch(datasetId: string, rows: number): Promise<void> {
    if (!this.modelId) return;
    this.batchRunning = true;
    this.batchError = null;
    this.batch = null;
    this.batchDatasetId = datasetId;
    this.batchId = `batch-${Date.now()}`;
    this.batchProgress = { done: 0, total: rows };
    try {
      this.batch = await finch().batchCompare({
        modelId: this.modelId, left: $state.snapshot(this.left), right: $state.snapshot(this.right),
        datasetId, rows, maxNewTokens: this.maxNewTokens, batchId: this.batchId,
      });
    } catch (e) {
      this.batchError = e;
    } finally {
      this.batchRunning = false;
    }
  }
}

export const compare = new CompareSession();
