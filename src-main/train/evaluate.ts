// Evaluation of a model, with or without an adapter: mean loss and perplexity over a dataset's
// trained tokens, and exact match of final answers for math data, where base and adapter answer
// each prompt side by side in one generation batch.

import type { PairSet, RowSet } from '../data/batch.js';
import { DatasetError } from '../data/errors.js';
import { prepareDataset } from '../data/dataset.js';
import type { ColumnMap, FormatName } from '../data/formats.js';
import { resolveFormat, toExample } from '../data/formats.js';
import { openRows } from '../data/read/index.js';
import { encodeGenerationPrompt, type TemplateChoice, type TrainOn } from '../data/template.js';
import { isChat, isPreference } from '../data/types.js';
import { sessionFromGraph } from '../engine/onnx/staged.js';
import { stagingDir } from '../store/paths.js';
import { type Feed, type HostTensor, type Provider, Session } from '../engine/runtime/session.js';
import { Generator } from '../infer/generate.js';
import { adapterTemplate, type FinchAdapterInfo } from '../model/adapter.js';
import { slidingWindowIn } from '../model/llama.js';
import type { LoadedModel } from '../model/load.js';
import type { LoraSpec } from '../model/lora.js';
import type { ChatMessage } from '../model/types.js';
import { exactMatch, extractAnswer } from './answers.js';
import { batchFeeds } from './feeds.js';
import { buildLossGraph } from './step.js';
import { type Objective, type RewardMetrics, RewardTally } from './objective.js';

export interface EvalDataOptions {
  format?: FormatName;
  map?: ColumnMap;
  trainOn?: TrainOn;
  /** How chat rows are rendered (default: as the adapter's training did, model/adapter.ts adapterTemplate). */
  template?: TemplateChoice;
  seqLen: number;
  batch: number;
  threads?: number;
  provider?: Provider;
  /** No CPU fallback on a GPU provider. */
  strictProvider?: boolean;
  onBadRow?: 'fail' | 'skip';
}

export interface Adapter {
  spec: LoraSpec;
  tensors: Map<string, Float32Array>;
  /** finch_adapter.json of a Finch-trained adapter: the template its training used. */
  finch?: FinchAdapterInfo | null;
}

export interface LossResult {
  loss: number;
  perplexity: number;
  /** Tokens scored. */
  tokens: number;
}

/**
 * The one static sequence length of a run's graphs: the longest sequence of the given sets,
 * rounded up to a multiple of 8, capped by seqLen.
 */
export function staticSeqLen(sets: readonly RowSet[], seqLen: number): number {
  let longest = 0;
  for (const set of sets) for (let i = 0; i < set.length; i++) longest = Math.max(longest, set.tokenCount(i));
  return Math.min(seqLen, Math.ceil(longest / 8) * 8);
}

/**
 * Mean loss over every trained token of `set`, through a loss graph of B rows by T tokens
 * (buildLossGraph): each batch's mean is weighted by its target count. `between` is awaited
 * before each batch (a training run's pause and cancel: train/control.ts).
 */
export async function meanLoss(session: Session, set: RowSet, B: number, T: number, params: Record<string, Feed>,
  embed?: (ids: BigInt64Array) => Float32Array, window: number | null = null, between?: () => Promise<void>): Promise<{ loss: number; tokens: number }> {
  let sum = 0, count = 0;
  for (let i = 0; i < set.length; i += B) {
    await between?.();
    const idx = Array.from({ length: Math.min(B, set.length - i) }, (_, k) => i + k);
    const b = set.batch(idx, { T });
    if (b.targets === 0) continue;
    const out = await session.run({ ...batchFeeds(b, B, T, embed, window), ...params });
    sum += (out.loss!.data as Float32Array)[0]! * b.targets;
    count += b.targets;
  }
  return { loss: count ? sum / count : NaN, tokens: count };
}

/**
 * A preference objective's mean loss over every pair of `set`, through a loss graph of P pairs by
 * T tokens (buildLossGraph with a preference objective): each batch's mean weighted by its pairs;
 * and TRL's reward metrics over the same pairs.
 */
export async function meanPreferenceLoss(session: Session, set: PairSet, P: number, T: number, params: Record<string, Feed>,
  embed?: (ids: BigInt64Array) => Float32Array, window: number | null = null, between?: () => Promise<void>,
): Promise<{ loss: number; pairs: number; rewards: RewardMetrics; perPair: PairReward[] }> {
  let sum = 0;
  const rewards = new RewardTally(), perPair: PairReward[] = [];
  for (let i = 0; i < set.length; i += P) {
    await between?.();
    const idx = Array.from({ length: Math.min(P, set.length - i) }, (_, k) => i + k);
    const b = set.batch(idx, { T, size: P });
    const out = await session.run({ ...batchFeeds(b, 2 * P, T, embed, window), ...params });
    sum += (out.loss!.data as Float32Array)[0]! * b.pairs;
    const chosen = out.rewards_chosen!.data as Float32Array, rejected = out.rewards_rejected!.data as Float32Array;
    rewards.add(chosen, rejected, b.pairs);
    for (let k = 0; k < b.pairs; k++) perPair.push({ line: set.line(idx[k]!), chosen: chosen[k]!, rejected: rejected[k]! });
  }
  return { loss: rewards.pairs ? sum / rewards.pairs : NaN, pairs: rewards.pairs, rewards: rewards.metrics(), perPair };
}

/** One pair's implicit rewards, and the file line it came from. */
export interface PairReward {
  line: number;
  chosen: number;
  rejected: number;
}

export interface PreferenceResult extends RewardMetrics {
  loss: number;
  /** Pairs scored. */
  pairs: number;
  /** Each pair's rewards, in file order. */
  perPair: PairReward[];
}

/**
 * A preference objective (DPO, ORPO) over every pair of the dataset (all rows, no split), for the
 * policy base + `adapter`: the mean loss and TRL's reward metrics. DPO's reference is the base, or
 * base + `reference` (the adapter a run continued from).
 */
export async function evaluatePreference(model: LoadedModel, file: string, adapter: Adapter | null, objective: Exclude<Objective, { method: 'sft' }>,
  o: EvalDataOptions & { reference?: Adapter | null; /** Score the file's first maxRows pairs only. */ maxRows?: number }): Promise<PreferenceResult> {
  const data = await prepareDataset(file, model.tokenizer, {
    seqLen: o.seqLen, valFraction: 0, maxRows: o.maxRows, template: o.template ?? adapterTemplate(adapter), format: o.format, map: o.map, onBadRow: o.onBadRow ?? 'fail',
  });
  if (data.kind !== 'pairs') throw new DatasetError(`--method ${objective.method} scores preference pairs, but ${file} is in the ${data.format.name} format (it needs prompt, chosen and rejected answers)`, file);
  const set = data.train;
  const T = staticSeqLen([set], o.seqLen);
  const P = Math.min(o.batch, set.length);
  const spec = adapter?.spec ?? o.reference?.spec ?? null;
  if (adapter && o.reference && !sameLayout(adapter.spec, o.reference.spec)) {
    throw new Error('the reference adapter must have the adapter\'s layout (rank, alpha, targets): it is the adapter a run continued from');
  }
  // Without an adapter the policy is the base: LoRA matrices of zeros where a reference adapter needs the layout.
  const dpo = objective.method === 'dpo' ? { ...objective, reference: o.reference ? 'adapter' as const : 'base' as const } : objective;
  const graph = buildLossGraph(model.weights, model.invFreq, { batch: 2 * P, seq: T, lora: spec, objective: dpo }, o.reference?.tensors ?? null);
  const session = await sessionFromGraph(graph, { threads: o.threads ?? 0, provider: o.provider ?? 'cpu', disableCpuFallback: o.strictProvider ?? false }, stagingDir());
  const params: Record<string, HostTensor> = {};
  for (const x of graph.inputs) {
    if (!x.name.startsWith('base_model.')) continue;
    params[x.name] = { dtype: 'float32', dims: x.shape as number[], data: adapter?.tensors.get(x.name) ?? new Float32Array((x.shape as number[]).reduce((a, d) => a * d, 1)) };
  }
  try {
    const r = await meanPreferenceLoss(session, set, P, T, params, undefined, slidingWindowIn(model.config, T));
    return { loss: r.loss, pairs: r.pairs, ...r.rewards, perPair: r.perPair };
  } finally {
    await session.release();
  }
}

const sameLayout = (a: LoraSpec, b: LoraSpec) => a.rank === b.rank && a.alpha === b.alpha && a.rslora === b.rslora && a.targets.join() === b.targets.join();

/** Mean next-token loss over every trained token of the dataset (all rows, no split). */
export async function evaluateLoss(model: LoadedModel, file: string, adapter: Adapter | null, o: EvalDataOptions): Promise<LossResult> {
  const data = await prepareDataset(file, model.tokenizer, {
    seqLen: o.seqLen, valFraction: 0, trainOn: o.trainOn ?? 'completions', template: o.template ?? adapterTemplate(adapter),
    format: o.format, map: o.map, onBadRow: o.onBadRow ?? 'fail',
  });
  if (data.kind === 'pairs') throw new DatasetError(`${file} holds preference pairs: score them with --method dpo or --method orpo`, file);
  const set = data.train;
  const T = staticSeqLen([set], o.seqLen);
  const B = Math.min(o.batch, set.length);
  const graph = buildLossGraph(model.weights, model.invFreq, { batch: B, seq: T, lora: adapter?.spec ?? null });
  const session = await sessionFromGraph(graph, { threads: o.threads ?? 0, provider: o.provider ?? 'cpu', disableCpuFallback: o.strictProvider ?? false }, stagingDir());
  const params: Record<string, HostTensor> = {};
  for (const [name, t] of adapter?.tensors ?? []) {
    const shape = graph.inputs.find((x) => x.name === name)?.shape as number[] | undefined;
    if (shape) params[name] = { dtype: 'float32', dims: shape, data: t };
  }
  try {
    const { loss, tokens } = await meanLoss(session, set, B, T, params, undefined, slidingWindowIn(model.config, T));
    return { loss, perplexity: Math.exp(loss), tokens };
  } finally {
    await session.release();
  }
}

export interface ExactMatchResult {
  /** Fraction of rows whose extracted final answer equals the reference's. */
  base: number;
  adapter: number | null;
  rows: { prompt: string; reference: string; base: string; adapter: string | null; baseCorrect: boolean; adapterCorrect: boolean | null }[];
}

/** Reads (prompt messages, reference answer text) pairs: every turn but the last assistant one (of a preference pair: its prompt and one-turn chosen answer). */
export async function readQa(file: string, o: { format?: FormatName; map?: ColumnMap; limit?: number }): Promise<{ prompt: ChatMessage[]; reference: string }[]> {
  const opened = await openRows(file, {});
  const out: { prompt: ChatMessage[]; reference: string }[] = [];
  let fmt = null;
  for await (const { row } of opened.rows) {
    fmt ??= resolveFormat(file, row, { format: o.format, map: o.map });
    const ex = toExample(row, fmt);
    // A preference pair: its prompt, with the chosen answer as the reference.
    const messages = isPreference(ex) ? (ex.chosen.length === 1 ? [...ex.prompt, ...ex.chosen] : null) : isChat(ex) ? ex.messages : null;
    if (!messages || messages.at(-1)?.role !== 'assistant') continue;
    out.push({ prompt: messages.slice(0, -1), reference: messages.at(-1)!.content });
    if (o.limit && out.length >= o.limit) break;
  }
  return out;
}

/**
 * Greedy answers for each prompt, from the base model and (if given) the adapter in the same
 * batch, scored by exact match of the extracted final answer (answers.ts).
 */
export async function evaluateExactMatch(
  model: LoadedModel, qa: { prompt: ChatMessage[]; reference: string }[], adapter: Adapter | null,
  o: {
    maxNewTokens: number; batch: number; threads?: number; onRow?: (i: number) => void; /** Adapter answers only (base rows empty). */ skipBase?: boolean;
    /** Prompt rendering for base and adapter alike (default: as the adapter's training did). */ template?: TemplateChoice;
    provider?: Provider; strictProvider?: boolean;
    /**
     * A generator kept open across calls with the same model, LoRA shape, prompts and token limit
     * (a run's evaluations): opened on the first call, reused after, released by the caller. A new
     * generator per call builds a new session (graph, prepacked 4-bit weights) each time, and the
     * C heap kept growing after each release (docs/memory.md: flat memory over long runs).
     */
    keep?: { generator: Generator | null };
  },
): Promise<ExactMatchResult> {
  const tok = model.tokenizer;
  const template = o.template ?? adapterTemplate(adapter);
  const prompts = qa.map((q) => encodeGenerationPrompt(tok, q.prompt, template)); // exactly as training rendered prompts
  const longest = Math.max(...prompts.map((p) => p.length));
  const gen = o.keep?.generator ?? await Generator.create(model.weights, model.invFreq, {
    maxPositions: Math.min(model.config.maxPositionEmbeddings, longest + o.maxNewTokens), lora: adapter?.spec ?? null, threads: o.threads ?? 0, provider: o.provider, strictProvider: o.strictProvider,
  });
  if (o.keep) o.keep.generator = gen;
  try {
    return await answerAll(gen, model, qa, prompts, adapter, o);
  } finally {
    if (!o.keep) await gen.release();
  }
}

async function answerAll(
  gen: Generator, model: LoadedModel, qa: { prompt: ChatMessage[]; reference: string }[], prompts: number[][], adapter: Adapter | null,
  o: { batch: number; maxNewTokens: number; onRow?: (i: number) => void; skipBase?: boolean },
): Promise<ExactMatchResult> {
  const tok = model.tokenizer;
  const eos = model.config.eosTokenIds.length ? model.config.eosTokenIds : tok.eosIds;
  const rows: ExactMatchResult['rows'] = [];
  for (let i = 0; i < qa.length; i += o.batch) {
    const chunk = prompts.slice(i, i + o.batch);
    // Base and adapter rows side by side: [p0, p1, ..., p0', p1', ...] with LoRA scales 0 and 1.
    const both = adapter && !o.skipBase;
    const batchPrompts = both ? [...chunk, ...chunk] : chunk;
    const scales = adapter ? [...(both ? chunk.map(() => 0) : []), ...chunk.map(() => 1)] : undefined;
    const res = await gen.generate({ prompts: batchPrompts, maxNewTokens: o.maxNewTokens, eosIds: eos, tokenizer: tok, loraScales: scales, adapter: adapter?.tensors });
    chunk.forEach((_, k) => {
      const q = qa[i + k]!;
      const ref = extractAnswer(q.reference) ?? q.reference.trim();
      const base = adapter && o.skipBase ? '' : res[k]!.text;
      const tuned = adapter ? res[(both ? chunk.length : 0) + k]!.text : null;
      rows.push({
        prompt: q.prompt.at(-1)?.content ?? '', reference: ref, base, adapter: tuned,
        baseCorrect: exactMatch(base, q.reference), adapterCorrect: tuned === null ? null : exactMatch(tuned, q.reference),
      });
      o.onRow?.(i + k);
    });
  }
  const frac = (f: (r: ExactMatchResult['rows'][number]) => boolean) => rows.filter(f).length / Math.max(1, rows.length);
  return { base: frac((r) => r.baseCorrect), adapter: adapter ? frac((r) => r.adapterCorrect === true) : null, rows };
}
