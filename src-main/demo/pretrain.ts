// Pretrains the bundled demo model from scratch with Finch's own engine: full-parameter training,
// where every base weight is a graph input (model/graphs.ts `trainBase`), the backward comes from
// autodiff/grad.ts and AdamW is appended in the graph, so one session.run is one optimizer step.
// The corpus is generated on the fly by demo/corpus.ts, so the whole model is a function of the
// recipe below and its seed:
//
//   node --import tsx src-main/demo/pretrain.ts --out assets/demo/model [--log FILE] [--steps N]
//
// Reproducibility: the same recipe gives the same bytes on the same machine. ONNX Runtime's CPU
// kernels split work by thread count and pick SIMD code by CPU (AVX2 vs AVX-512), and float sums
// in another order round differently: the recipe fixes `threads` (1, see PretrainRecipe.threads);
// another CPU family may give slightly different weights (the same loss curve to a few decimals).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Batch } from '../data/batch.js';
import { grad } from '../engine/autodiff/grad.js';
import { Graph } from '../engine/graph/graph.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { appendAdamW } from '../engine/optim/adamw.js';
import { type HostTensor, Session } from '../engine/runtime/session.js';
import { Generator } from '../infer/generate.js';
import { ropeInvFreq } from '../model/config.js';
import { buildTrainForward } from '../model/graphs.js';
import { FrozenWeights } from '../model/weights/frozen-weights.js';
import { Checkpoint, writeFileAtomic, writeSafetensors } from '../model/safetensors.js';
import { llamaWeightSpecs, writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { Rng } from '../util/random.js';
import { loadTokenizer } from '../model/tokenizer.js';
import type { ModelConfig, TextTokenizer } from '../model/types.js';
import { learningRate } from '../train/schedule.js';
import { batchFeeds } from '../train/feeds.js';
import { pretrainDoc, tokenizerCorpus, wordProblem } from './corpus.js';

/** Everything that determines the model. */
export interface PretrainRecipe {
  /** Model shape (Llama 3 style: byte-level BPE tokenizer, GQA, untied head). */
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  maxPositions: number;
  /** Optimizer steps, each of `batch` rows of `seq` tokens (documents packed, attention kept apart). */
  steps: number;
  batch: number;
  seq: number;
  /** Peak learning rate after `warmup` steps, cosine-decayed to `minLr`. */
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  maxGradNorm: number;
  /** Seeds the initial weights, the tokenizer corpus and the document stream. */
  seed: number;
  /**
   * Intra-op threads: part of the recipe, since it changes float rounding (see above). One, because
   * ONNX Runtime's CPU ScatterND with reduction "add" (the embedding gradient) races on duplicate
   * token ids when it runs on several threads: updates are lost and runs differ.
   */
  threads: number;
  /** Documents the tokenizer is trained on. */
  tokenizerDocs: number;
  /** Steps between log lines, and between held-out loss evaluations. */
  logEvery: number;
  evalEvery: number;
}

/** The recipe of assets/demo/model. */
export const DEMO_RECIPE: PretrainRecipe = {
  vocabSize: 1024,
  hiddenSize: 256,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 768,
  maxPositions: 512,
  steps: 1000,
  batch: 16,
  seq: 128,
  lr: 2e-3,
  minLr: 2e-4,
  warmup: 60,
  weightDecay: 0,
  maxGradNorm: 1,
  seed: 7,
  threads: 1,
  tokenizerDocs: 4000,
  logEvery: 10,
  evalEvery: 100,
};

/** One line of the training log (JSONL). */
export type LogEvent =
  | { event: 'start'; recipe: PretrainRecipe; params: number; config: Record<string, unknown> }
  | { event: 'train'; step: number; loss: number; lr: number; grad_norm: number; tokens: number; elapsed_s: number }
  | { event: 'eval'; step: number; val_loss: number }
  | { event: 'sample'; prompt: string; text: string }
  | { event: 'done'; steps: number; tokens: number; elapsed_s: number; final_loss: number; val_loss: number };

export interface PretrainResult {
  dir: string;
  config: ModelConfig;
  /** Mean training loss of the first and the last logged window. */
  firstLoss: number;
  lastLoss: number;
  valLoss: number;
  seconds: number;
}

// ---- documents and packed batches -------------------------------------------------------------

/** The pretraining stream as token ids: text as BOS + text + <|end_of_text|>, chats as rendered. */
export class DocumentStream {
  private readonly rng: Rng;
  private readonly endOfText: number;
  /** Documents longer than a row are skipped (about 4% at 128 tokens: long multi-turn chats). */
  skipped = 0;

  constructor(private readonly tok: TextTokenizer, seed: number, private readonly maxLen: number) {
    this.rng = new Rng(seed);
    const eot = tok.tokenToId('<|end_of_text|>');
    if (eot === null) throw new Error('demo pretraining: the tokenizer has no <|end_of_text|> token');
    this.endOfText = eot;
  }

  next(): number[] {
    for (;;) {
      const d = pretrainDoc(this.rng);
      const ids = d.kind === 'text'
        ? [...this.tok.encode(d.text, { addSpecialTokens: true }), this.endOfText]
        : this.tok.encode(this.tok.applyChatTemplate(d.messages), { addSpecialTokens: false });
      if (ids.length <= this.maxLen) return ids;
      this.skipped++;
    }
  }
}

/**
 * B rows of T tokens filled first-fit from a small pool of pending documents (so rows are nearly
 * full), as a data/batch.ts Batch: every token of every document is a target except its first.
 */
export class Packer {
  private readonly pending: number[][] = [];

  constructor(private readonly docs: DocumentStream, private readonly B: number, private readonly T: number, private readonly pool = 8) {}

  next(): Batch {
    const { B, T } = this;
    const n = B * T;
    const ids = new Int32Array(n), labels = new Int32Array(n).fill(-100), mask = new Int32Array(n), pos = new Int32Array(n), seg = new Int32Array(n);
    let tokens = 0, targets = 0;
    for (let b = 0; b < B; b++) {
      let used = 0, segment = 0;
      for (;;) {
        while (this.pending.length < this.pool) this.pending.push(this.docs.next());
        const k = this.pending.findIndex((d) => d.length <= T - used);
        if (k < 0) break;
        const doc = this.pending.splice(k, 1)[0]!;
        segment++;
        for (let j = 0; j < doc.length; j++) {
          const at = b * T + used + j;
          ids[at] = doc[j]!;
          mask[at] = 1;
          pos[at] = j;
          seg[at] = segment;
          if (j > 0) {
            labels[at] = doc[j]!;
            targets++;
          }
        }
        used += doc.length;
        tokens += doc.length;
      }
    }
    return { inputIds: ids, labels, attentionMask: mask, positionIds: pos, segmentIds: seg, B, T, dtype: 'int32', tokens, targets, pairs: 0 };
  }
}

// ---- the training graphs ----------------------------------------------------------------------

/** The float weights in HF order, read from a checkpoint folder. */
export function readWeights(dir: string, cfg: ModelConfig): Map<string, Float32Array> {
  const ckpt = Checkpoint.open(dir);
  try {
    return new Map(llamaWeightSpecs(cfg).map((s) => [s.name, ckpt.readTensor(s.name)]));
  } finally {
    ckpt.close();
  }
}

interface Trainer {
  /** Forward + backward + AdamW over every weight: one run is one optimizer step. */
  step: Session;
  /** Forward + loss only, over the same weight inputs (the held-out evaluation). */
  evalLoss: Session;
  /** Parameter name -> [input name, output name] of the weight and its two moments. */
  slots: { name: string; shape: number[]; links: [string, string][] }[];
}

/** Compiles the full-parameter step and evaluation graphs for `r`'s batch shape. */
export async function buildTrainer(cfg: ModelConfig, weights: Map<string, Float32Array>, r: PretrainRecipe): Promise<Trainer> {
  const fw = new FrozenWeights(cfg, (n) => weights.get(n)!);
  const invFreq = ropeInvFreq(cfg);
  const g = new Graph('pretrain_step');
  const tg = buildTrainForward(g, fw, invFreq, { batch: r.batch, seq: r.seq, lora: null, trainBase: true });
  const params = [...tg.baseInputs.values()];
  const grads = grad(tg.loss, params);
  const opt = appendAdamW(g, params, grads, { weightDecay: r.weightDecay, maxGradNorm: r.maxGradNorm });
  g.output(tg.loss, 'loss');
  const slots = opt.slots.map((s, i) => ({
    name: params[i]!.name,
    shape: params[i]!.shape as number[],
    links: [[s.param.input, s.param.output], [s.m.input, s.m.output], [s.v.input, s.v.output]] as [string, string][],
  }));
  const eg = new Graph('pretrain_eval');
  eg.output(buildTrainForward(eg, fw, invFreq, { batch: r.batch, seq: r.seq, lora: null, trainBase: true }).loss, 'loss');
  const threads = r.threads;
  return {
    step: await Session.create(serializeModel(g), { threads }),
    evalLoss: await Session.create(serializeModel(eg), { threads }),
    slots,
  };
}

const scalar = (v: number): HostTensor => ({ dtype: 'float32', dims: [], data: Float32Array.of(v) });

// ---- the run ----------------------------------------------------------------------------------

export interface PretrainOptions {
  out: string;
  /** JSONL training log; null for none. */
  log: string | null;
  recipe?: Partial<PretrainRecipe>;
  /** Called for every log event (progress on the console). */
  onEvent?: (e: LogEvent) => void;
  /** Greedy samples written to the log at the end (default true). */
  samples?: boolean;
}

/** Pretrains a model into `out` (a Hugging Face folder, replaced as a whole at the end). */
export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const r: PretrainRecipe = { ...DEMO_RECIPE, ...o.recipe };
  const t0 = performance.now();
  const elapsed = () => Math.round((performance.now() - t0) / 100) / 10;
  const work = `${o.out}.tmp-${process.pid}`;
  fs.rmSync(work, { recursive: true, force: true });
  const events: LogEvent[] = [];
  const emit = (e: LogEvent) => {
    events.push(e);
    o.onEvent?.(e);
  };
  try {
    // Tokenizer, config and initial weights (normal std 0.02, as transformers initialises Llama).
    const ck = writeSyntheticCheckpoint(work, {
      modelType: 'llama', tokenizer: 'llama3', chatTemplate: 'llama3', corpus: tokenizerCorpus(r.seed, r.tokenizerDocs),
      vocabSize: r.vocabSize, hiddenSize: r.hiddenSize, numLayers: r.numLayers, numHeads: r.numHeads, numKvHeads: r.numKvHeads,
      intermediateSize: r.intermediateSize, maxPositionEmbeddings: r.maxPositions, dtype: 'float32', seed: r.seed,
    });
    const cfg = ck.config;
    const tok = loadTokenizer(work);
    const weights = readWeights(work, cfg);
    emit({ event: 'start', recipe: r, params: ck.numParams, config: JSON.parse(fs.readFileSync(path.join(work, 'config.json'), 'utf8')) as Record<string, unknown> });

    const trainer = await buildTrainer(cfg, weights, r);
    const feeds: Record<string, HostTensor> = {};
    for (const s of trainer.slots) {
      const w = weights.get(s.name)!;
      feeds[s.links[0]![0]] = { dtype: 'float32', dims: s.shape, data: w };
      feeds[s.links[1]![0]] = { dtype: 'float32', dims: s.shape, data: new Float32Array(w.length) };
      feeds[s.links[2]![0]] = { dtype: 'float32', dims: s.shape, data: new Float32Array(w.length) };
    }
    const packer = new Packer(new DocumentStream(tok, r.seed + 1, r.seq), r.batch, r.seq);
    // A fixed held-out batch from another stream of the same distribution.
    const heldOut = batchFeeds(new Packer(new DocumentStream(tok, r.seed + 1_000_003, r.seq), r.batch, r.seq).next(), r.batch, r.seq);
    const evaluate = async () => {
      const wf: Record<string, HostTensor> = { ...heldOut };
      for (const s of trainer.slots) wf[s.name] = feeds[s.links[0]![0]]!;
      return ((await trainer.evalLoss.run(wf)).loss!.data as Float32Array)[0]!;
    };

    let tokens = 0, windowLoss = 0, windowNorm = 0, windowSteps = 0;
    let firstLoss = NaN, lastLoss = NaN, valLoss = NaN;
    for (let step = 0; step < r.steps; step++) {
      const lr = r.minLr + (r.lr - r.minLr) * learningRate('cosine', 1, step, r.steps, r.warmup);
      const batch = packer.next();
      tokens += batch.tokens;
      Object.assign(feeds, batchFeeds(batch, r.batch, r.seq), { 'optim.lr': scalar(lr), 'optim.step': scalar(step + 1) });
      const out = await trainer.step.run(feeds);
      for (const s of trainer.slots) for (const [input, output] of s.links) feeds[input] = out[output]!;
      const loss = (out.loss!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss)) throw new Error(`demo pretraining diverged at step ${step + 1} (loss ${loss}); lower the learning rate`);
      windowLoss += loss;
      windowNorm += (out['optim.grad_norm']!.data as Float32Array)[0]!;
      windowSteps++;
      if ((step + 1) % r.logEvery === 0 || step + 1 === r.steps) {
        lastLoss = windowLoss / windowSteps;
        if (Number.isNaN(firstLoss)) firstLoss = lastLoss;
        emit({ event: 'train', step: step + 1, loss: round(lastLoss), lr: round(lr), grad_norm: round(windowNorm / windowSteps), tokens, elapsed_s: elapsed() });
        windowLoss = windowNorm = windowSteps = 0;
      }
      if ((step + 1) % r.evalEvery === 0 || step + 1 === r.steps) {
        valLoss = await evaluate();
        emit({ event: 'eval', step: step + 1, val_loss: round(valLoss) });
      }
    }
    await trainer.step.release();
    await trainer.evalLoss.release();

    // The trained weights, in HF order, replace the initial ones.
    const trained = new Map(trainer.slots.map((s) => [s.name, feeds[s.links[0]![0]]!.data as Float32Array]));
    writeSafetensors(path.join(work, 'model.safetensors'), llamaWeightSpecs(cfg).map((s) => ({
      name: s.name, dtype: 'F32' as const, shape: s.shape, data: trained.get(s.name)!,
    })), { format: 'pt' });
    if (o.samples ?? true) for (const e of await greedySamples(cfg, trained, tok)) emit(e);
    emit({ event: 'done', steps: r.steps, tokens, elapsed_s: elapsed(), final_loss: round(lastLoss), val_loss: round(valLoss) });

    fs.rmSync(o.out, { recursive: true, force: true });
    fs.renameSync(work, o.out);
    if (o.log) writeFileAtomic(o.log, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    return { dir: o.out, config: cfg, firstLoss, lastLoss, valLoss, seconds: elapsed() };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;

/** What the new model writes from a few prompts (greedy), for the log. */
async function greedySamples(cfg: ModelConfig, weights: Map<string, Float32Array>, tok: TextTokenizer): Promise<LogEvent[]> {
  const gen = await Generator.create(new FrozenWeights(cfg, (n) => weights.get(n)!), ropeInvFreq(cfg), { maxPositions: 256, threads: 2 });
  const problem = wordProblem(new Rng(99)).query;
  const prompts: { show: string; ids: number[] }[] = [
    { show: 'On Saturday, Tom went to', ids: tok.encode('On Saturday, Tom went to') },
    { show: 'In class, Mrs. Park wrote 7 + 5 on the board.', ids: tok.encode('In class, Mrs. Park wrote 7 + 5 on the board.') },
    ...['Tell me a story about Lily.', 'What can I buy at the bakery?', problem].map((q) => ({
      show: `[chat] ${q}`,
      ids: tok.encode(tok.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true }), { addSpecialTokens: false }),
    })),
  ];
  const out: LogEvent[] = [];
  for (const p of prompts) {
    const [res] = await gen.generate({ prompts: [p.ids], maxNewTokens: 80, eosIds: tok.eosIds, tokenizer: tok });
    out.push({ event: 'sample', prompt: p.show, text: res!.text });
  }
  await gen.release();
  return out;
}

// ---- command line -----------------------------------------------------------------------------

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = arg('--out');
  if (!out) {
    console.error('usage: node --import tsx src-main/demo/pretrain.ts --out DIR [--log FILE] [--steps N]\n' +
      '  writes the demo model (a Hugging Face folder) to DIR and its training log to FILE (default DIR/../pretrain-log.jsonl)');
    process.exit(2);
  }
  const steps = arg('--steps');
  const log = arg('--log') ?? path.join(path.dirname(path.resolve(out)), 'pretrain-log.jsonl');
  const res = await pretrain({
    out,
    log,
    recipe: steps ? { steps: Number(steps) } : {},
    onEvent: (e) => {
      if (e.event === 'train') console.log(`step ${e.step}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  ${e.elapsed_s}s`);
      else if (e.event === 'eval') console.log(`  held-out loss ${e.val_loss.toFixed(4)}`);
      else if (e.event === 'sample') console.log(`  sample ${JSON.stringify(e.prompt)} -> ${JSON.stringify(e.text)}`);
      else if (e.event === 'start') console.log(`pretraining ${e.params} parameters for ${e.recipe.steps} steps`);
    },
  });
  console.log(`wrote ${res.dir} (loss ${res.firstLoss.toFixed(3)} -> ${res.lastLoss.toFixed(3)}, held-out ${res.valLoss.toFixed(3)}) in ${res.seconds}s; log ${log}`);
}
