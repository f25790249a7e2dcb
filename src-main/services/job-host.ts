// The child-process side of a job (see jobs.ts): a training run, the generation engine that keeps
// one model loaded and answers generate / batch-compare requests, or one export. It talks to its
// parent only through process messages; everything it sends is plain data.

import { totalmem } from 'node:os';
import { basename } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { encodeGenerationPrompt, type TemplateChoice } from '../data/template.js';
import { useMachineProviders } from '../engine/runtime/providers.js';
import type { ChatWeights } from '../../src-shared/api.js';
import { CHAT_WEIGHTS_ENV, chatWeights } from '../infer/chat-weights.js';
import { Generator } from '../infer/generate.js';
import { loadPeftAdapter, type PeftAdapter } from '../model/adapter.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { loadModelConfig } from '../model/config.js';
import { resolveModelFolderSync } from '../model/hf-cache.js';
import { DEFAULT_BLOCK } from '../model/quant.js';
import { cachedBlockSize, prepareInt4 } from '../model/quant-cache.js';
import type { LoraSpec } from '../model/lora.js';
import type { ModelConfig } from '../model/types.js';
import { evaluateExactMatch, readQa, type Adapter } from '../train/evaluate.js';
import { projectionShapes } from '../train/memory.js';
import type { TrainControl } from '../train/trainer.js';
import type { ExportDone, ExportPayload, FromJob, GenRow, SamplePrompts, ToJob, TrainPayload } from './jobs.js';

/**
 * The parent: an Electron utility process talks through `process.parentPort` (messages arrive as
 * `{ data }`; the desktop app hosts jobs there), a Node child process through its IPC channel.
 */
interface ParentPort { postMessage(m: unknown): void; on(event: 'message', l: (e: { data: unknown }) => void): void }
const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;
const send = (m: FromJob): void => { if (parentPort) parentPort.postMessage(m); else process.send?.(m); };
const onParentMessage = (l: (m: ToJob) => void): void => {
  if (parentPort) parentPort.on('message', (e) => l(e.data as ToJob));
  else process.on('message', l);
};
/** After the last message of a run: a Node child lets go of its channel; a utility process waits to be ended by its parent. */
const releaseParent = (): void => { if (!parentPort) process.disconnect(); };
const errorOf = (e: unknown) => ({ name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) });
/** A failure as the parent gets it, with the hint of an error that has one (TrainingError). */
const failureOf = (e: unknown) => {
  const hint = (e as { hint?: unknown })?.hint;
  return { ...errorOf(e), hint: typeof hint === 'string' ? hint : null };
};

// ---- training ------------------------------------------------------------------------------------

async function runTraining(p: TrainPayload, control: TrainControl): Promise<void> {
  if (p.machine) useMachineProviders(p.machine);
  const { train } = await import('../train/trainer.js');
  const { config: cfg, samples } = p;
  // One generator answers the samples of every evaluation of a small model's run (evaluateExactMatch
  // `keep`): rebuilt at each evaluation, its session left the C heap larger each time (docs/memory.md).
  // Kept, it holds its own copy of the frozen weights through the training steps: for a large model
  // that copy costs more than the rebuilds, so those still open one per evaluation.
  const keep: { generator: Generator | null } = { generator: null };
  const onEvaluated = samples ? (step: number, dir: string, model: LoadedModel) => answerSamples(step, dir, model, samples, cfg.threads, keep) : undefined;
  try {
    await train(cfg, (event) => send({ type: 'train', event }), control, { hooks: { onEvaluated } });
  } finally {
    await keep.generator?.release();
  }
}

/** Frozen parameters up to which a run keeps its sample generator open (a 4-bit copy of about 300 MB). */
const KEEP_GENERATOR_MAX_PARAMS = 500e6;
const frozenParams = (c: ModelConfig) => c.numLayers * projectionShapes(c).reduce((sum, [n, k]) => sum + n * k, 0) + c.vocabSize * c.hiddenSize;

/** The held-out prompts answered by the adapter of a checkpoint (a failure is a warning in the run's log, not the run's end). */
async function answerSamples(step: number, dir: string, model: LoadedModel, s: SamplePrompts, threads: number, keep: { generator: Generator | null }): Promise<void> {
  try {
    const adapter = loadPeftAdapter(dir, model.config);
    const qa = s.prompts.map((prompt, i) => ({ prompt, reference: s.references[i]! }));
    const r = await evaluateExactMatch(model, qa, { spec: adapter.spec, tensors: adapter.tensors }, {
      maxNewTokens: s.maxNewTokens, batch: qa.length, threads, skipBase: true, ...(frozenParams(model.config) <= KEEP_GENERATOR_MAX_PARAMS ? { keep } : {}),
    });
    send({ type: 'samples', step, samples: r.rows.map((row) => ({ prompt: row.prompt, reference: row.reference, answer: row.adapter ?? '', correct: row.adapterCorrect })) });
  } catch (e) {
    send({ type: 'log', level: 'warn', message: `sample answers at step ${step} failed: ${errorOf(e).message}` });
  }
}

// ---- exports -------------------------------------------------------------------------------------

/** One export, with its progress sent as it goes; the writers are synchronous, which is why they run here. */
async function runExport(p: ExportPayload): Promise<ExportDone> {
  const onProgress = (done: number, total: number) => send({ type: 'export-progress', done, total });
  switch (p.kind) {
    case 'merged': {
      const { mergeAdapter } = await import('../model/merge.js');
      const r = mergeAdapter(p.model, p.adapter, p.out, { onProgress: (x) => onProgress(x.index, x.total) });
      return { path: r.outDir, files: [...r.weightFiles, ...r.copiedFiles], command: null };
    }
    case 'gguf': {
      const { exportGguf, exportGgufAdapter } = await import('../model/gguf/export.js');
      const o = { model: p.model, adapter: p.adapter, dtype: p.dtype, out: p.out, name: p.name, onProgress };
      const r = p.loraOnly ? exportGgufAdapter(o) : exportGguf(o);
      return { path: r.out, files: [basename(r.out)], command: null };
    }
    case 'ollama': {
      const { exportOllama } = await import('../model/gguf/export.js');
      const r = exportOllama({
        model: p.model, adapter: p.adapter, dtype: p.dtype, outDir: p.outDir, separateAdapter: p.separateAdapter, modelName: p.modelName, name: p.name, onProgress,
      });
      return { path: r.outDir, files: r.files, command: r.createCommand };
    }
    case 'accelerate': {
      const { exportAccelerate } = await import('../export/accelerate.js');
      const r = await exportAccelerate(p.runDir, p.outDir, { gpus: p.gpus });
      return { path: r.outDir, files: r.files, command: r.launchCommand };
    }
  }
}

// ---- generation ----------------------------------------------------------------------------------

/** A model as the compare view holds it: float32, or 4-bit blocks multiplied with int8 activations. */
interface ChatModel { model: LoadedModel; weights: ChatWeights }

/** One model stays loaded; generators are kept per LoRA shape (rank/targets) and context length. */
class Engine {
  private loaded: ChatModel | null = null;
  private generators = new Map<string, Generator>();
  private adapters = new Map<string, PeftAdapter>();
  private stops = new Map<string, AbortController>();

  /** Stops a running generation, or one still waiting in the queue. */
  stop(id: string): void {
    let c = this.stops.get(id);
    if (!c) this.stops.set(id, (c = new AbortController()));
    c.abort();
  }

  /** The loaded model, after loading `path` if another (or none) is; `onQuantized` follows a cold 4-bit quantization. */
  private async load(path: string, onQuantized: (done: number, total: number) => void = () => {}): Promise<ChatModel> {
    if (this.loaded?.model.dir !== path) await this.unload();
    if (!this.loaded) {
      const weights = chatWeights(loadModelConfig(path), totalmem(), process.env[CHAT_WEIGHTS_ENV]);
      if (weights === 'float32') {
        this.loaded = { model: loadModel(path), weights };
      } else {
        // The blocks a QLoRA run of this checkpoint already cached (its block size), else blocks of 32,
        // quantized now (minutes for an 8B model: reported) and cached.
        const cached = cachedBlockSize(resolveModelFolderSync(path).dir, [DEFAULT_BLOCK, 64]);
        const model = loadModel(path, { quantize: true, blockSize: cached ?? DEFAULT_BLOCK });
        try {
          await prepareInt4(model.dir, model.config, model.weights, cached === null ? { onProgress: onQuantized } : {});
        } catch (e) {
          model.close();
          throw e;
        }
        this.loaded = { model, weights };
      }
    }
    return this.loaded;
  }

  async unload(): Promise<void> {
    for (const g of this.generators.values()) await g.release();
    this.generators.clear();
    this.adapters.clear();
    this.loaded?.model.close();
    this.loaded = null;
  }

  private adapter(dir: string, m: LoadedModel): PeftAdapter {
    let a = this.adapters.get(dir);
    if (!a) {
      a = loadPeftAdapter(dir, m.config);
      this.adapters.set(dir, a);
    }
    return a;
  }

  private async generator({ model: m, weights }: ChatModel, spec: LoraSpec | null, positions: number): Promise<Generator> {
    // Context rounded up to a power of two, so one graph serves many prompt lengths.
    const max = Math.min(m.config.maxPositionEmbeddings, 2 ** Math.ceil(Math.log2(Math.max(64, positions))));
    const key = `${spec ? `${spec.rank}:${spec.alpha}:${spec.rslora}:${[...spec.targets].join(',')}` : 'base'}@${max}`;
    let g = this.generators.get(key);
    if (!g) {
      g = await Generator.create(m.weights, m.invFreq, { maxPositions: max, lora: spec, int8Activations: weights === '4bit' });
      this.generators.set(key, g);
    }
    return g;
  }

  async generate(req: Extract<ToJob, { op: 'generate' }>): Promise<void> {
    const chat = await this.load(req.modelPath, (done, total) => send({ type: 'gen-progress', id: req.id, phase: 'quantizing', done, total }));
    const m = chat.model;
    const stop = this.stops.get(req.id) ?? new AbortController();
    this.stops.set(req.id, stop);
    try {
      // Rows sharing one adapter (or none) go through one batch with per-row LoRA scales; two
      // different adapters take two batches, one after the other.
      const groups = new Map<string, GenRow[]>();
      const adapterRows = req.rows.filter((r) => r.adapterDir);
      const firstAdapter = adapterRows[0]?.adapterDir ?? null;
      for (const r of req.rows) {
        const key = r.adapterDir === null || r.adapterDir === firstAdapter ? 'shared' : r.adapterDir;
        groups.set(key, [...(groups.get(key) ?? []), r]);
      }
      for (const rows of groups.values()) {
        const dir = rows.find((r) => r.adapterDir)?.adapterDir ?? null;
        const adapter = dir ? this.adapter(dir, m) : null;
        const prompts = rows.map((r) => encodeGenerationPrompt(m.tokenizer, r.messages, req.template as TemplateChoice));
        const longest = Math.max(...prompts.map((p) => p.length));
        if (longest + req.maxNewTokens > m.config.maxPositionEmbeddings) {
          throw new Error(`the conversation (${longest} tokens) plus ${req.maxNewTokens} new tokens exceeds the model's context of ${m.config.maxPositionEmbeddings}: start a new conversation or ask for fewer tokens`);
        }
        const gen = await this.generator(chat, adapter?.spec ?? null, longest + req.maxNewTokens);
        const t0 = performance.now();
        const eos = m.config.eosTokenIds.length ? m.config.eosTokenIds : m.tokenizer.eosIds;
        const res = await gen.generate({
          prompts, maxNewTokens: req.maxNewTokens, eosIds: eos, tokenizer: m.tokenizer, sampling: req.sampling ?? undefined,
          loraScales: adapter ? rows.map((r) => (r.adapterDir ? 1 : 0)) : undefined, adapter: adapter?.tensors, signal: stop.signal,
          onText: (row, delta) => send({ type: 'delta', id: req.id, side: rows[row]!.side, text: delta }),
        });
        const seconds = (performance.now() - t0) / 1000;
        res.forEach((r, i) => send({ type: 'gen-done', id: req.id, side: rows[i]!.side, text: r.text, tokens: r.ids.length, finish: r.finish, seconds, weights: chat.weights }));
      }
    } finally {
      this.stops.delete(req.id);
    }
  }

  async batch(req: Extract<ToJob, { op: 'batch' }>): Promise<void> {
    const m = (await this.load(req.modelPath)).model;
    const all = await readQa(req.dataset, { format: req.format, map: req.map });
    const qa = all.slice(Math.max(0, all.length - req.rows)); // the last rows: held out from the front of the file
    const total = qa.length;
    const adapterOf = (dir: string | null): Adapter | null => (dir ? (({ spec, tensors }) => ({ spec, tensors }))(this.adapter(dir, m)) : null);
    const opts = (offset: number) => ({ maxNewTokens: req.maxNewTokens, batch: 8, onRow: (i: number) => send({ type: 'batch-progress', id: req.id, done: offset + i + 1, total: 2 * total }) });
    // Base beside an adapter shares one batch per chunk; otherwise each side runs on its own.
    let left: { text: string; ok: boolean }[], right: { text: string; ok: boolean }[];
    if ((req.left === null) !== (req.right === null)) {
      const r = await evaluateExactMatch(m, qa, adapterOf(req.left ?? req.right), { ...opts(0), onRow: (i) => send({ type: 'batch-progress', id: req.id, done: 2 * (i + 1), total: 2 * total }) });
      const base = r.rows.map((x) => ({ text: x.base, ok: x.baseCorrect }));
      const tuned = r.rows.map((x) => ({ text: x.adapter ?? '', ok: x.adapterCorrect === true }));
      [left, right] = req.left === null ? [base, tuned] : [tuned, base];
    } else {
      const side = async (dir: string | null, offset: number) => {
        const r = await evaluateExactMatch(m, qa, adapterOf(dir), { ...opts(offset), skipBase: dir !== null });
        return r.rows.map((x) => (dir ? { text: x.adapter ?? '', ok: x.adapterCorrect === true } : { text: x.base, ok: x.baseCorrect }));
      };
      left = await side(req.left, 0);
      right = await side(req.right, total);
    }
    send({
      type: 'batch-done', id: req.id,
      rows: qa.map((q, i) => ({ prompt: q.prompt.at(-1)?.content ?? '', reference: q.reference, left: left[i]!.text, right: right[i]!.text, leftCorrect: left[i]!.ok, rightCorrect: right[i]!.ok })),
    });
  }
}

// ---- the message loop ----------------------------------------------------------------------------

// Only the process's main thread: bundled into one file (the desktop app's job-host.js), this file
// is also what the 4-bit quantization workers load, and they must not answer the parent.
if (isMainThread && (parentPort || process.send)) {
  const control: TrainControl = { paused: false, cancelled: false };
  const engine = new Engine();
  let queue = Promise.resolve(); // generation requests run one at a time
  onParentMessage((m) => {
    switch (m.op) {
      case 'start':
        if (m.kind === 'train') {
          runTraining(m.payload as TrainPayload, control).then(
            () => { send({ type: 'finished' }); releaseParent(); },
            (e) => { send({ type: 'failed', ...failureOf(e) }); releaseParent(); },
          );
        } else if (m.kind === 'export') {
          runExport(m.payload as ExportPayload).then(
            (result) => { send({ type: 'export-done', result }); send({ type: 'finished' }); releaseParent(); },
            (e) => { send({ type: 'failed', ...failureOf(e) }); releaseParent(); },
          );
        }
        break;
      case 'pause': control.paused = true; break;
      case 'resume': control.paused = false; break;
      case 'cancel': control.cancelled = true; break;
      case 'stop': engine.stop(m.id); break;
      case 'unload': queue = queue.then(() => engine.unload()); break;
      case 'generate':
        queue = queue.then(() => engine.generate(m).catch((e) => send({ type: 'gen-failed', id: m.id, ...errorOf(e) })));
        break;
      case 'batch':
        queue = queue.then(() => engine.batch(m).catch((e) => send({ type: 'batch-failed', id: m.id, ...errorOf(e) })));
        break;
    }
  });
  // The parent going away ends the job (no orphaned trainers; Electron ends utility processes itself).
  process.on('disconnect', () => setTimeout(() => process.exit(0), 50).unref());
}
