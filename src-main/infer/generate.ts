// Text generation with a KV cache: one prefill run over the (left-padded) prompts, then one decode
// run per new token. The LoRA scale is a per-row input, so the side-by-side comparison of base and
// tuned model is one batch of two through one session and one copy of the weights.

import { Graph } from '../engine/graph/graph.js';
import { sessionFromGraph } from '../engine/onnx/staged.js';
import { WEBGPU_DEFAULT_BINDING_BYTES } from '../engine/runtime/providers.js';
import { type HostTensor, type Provider, Session, type SessionOptions } from '../engine/runtime/session.js';
import { buildGeneration } from '../model/graphs.js';
import { slidingWindowIn, windowedBias } from '../model/llama.js';
import { FrozenWeights } from '../model/weights/frozen-weights.js';
import type { DeviceOptions } from '../model/weights/graph-weights.js';
import { type LoraSpec, loraParams } from '../model/lora.js';
import type { TextTokenizer } from '../model/types.js';
import { stagingDir } from '../store/paths.js';
import { GREEDY, Sampler, type SamplingOptions } from './sampling.js';

const MASKED = -1e9;

export interface GeneratorOptions {
  /** Longest prompt + continuation the session will see (sizes the RoPE table). */
  maxPositions: number;
  /** Build the graph with LoRA inputs (weights can be swapped per call). */
  lora?: LoraSpec | null;
  provider?: Provider;
  /** Refuse to run any node on the CPU when the provider is not the CPU (no silent fallback). */
  strictProvider?: boolean;
  threads?: number;
  /** Let ONNX Runtime repack constant weights at load (default: for 4-bit weights only). */
  prepackWeights?: boolean;
  /**
   * Frozen weights above this many bytes are split (model/weights/graph-weights.ts). Default on
   * WebGPU: the spec's default binding limit (128 MiB), which every adapter allows.
   */
  maxWeightBytes?: number;
  /** 4-bit weights: int8 activations (MatMulNBits accuracy level 4; DeviceOptions.int8Activations). */
  int8Activations?: boolean;
  /**
   * ORT's CPU arena (SessionOptions.cpuMemArena). Default on: without it every intermediate is a
   * fresh allocation, and a 128-token prefill of a 0.5B model spent a quarter of its time in the
   * MLP's two elementwise ops ([T, intermediate], ~50x their arithmetic, presumably fresh pages
   * faulting in); with the arena that prefill took half the time (docs/perf.md). Its cost: the
   * arena keeps its peak.
   */
  memArena?: boolean;
  /** Profile every run with ONNX Runtime's profiler (SessionOptions.profilePrefix; written on release). */
  profilePrefix?: string;
}

export interface GenerateRequest {
  prompts: number[][];
  maxNewTokens: number;
  sampling?: SamplingOptions;
  eosIds: readonly number[];
  /** Per-row LoRA scale: 0 = base model, 1 = tuned (needs `adapter`). */
  loraScales?: number[];
  /** LoRA matrices by PEFT name (required when the generator was built with `lora`). */
  adapter?: Map<string, Float32Array>;
  stopStrings?: string[];
  tokenizer?: TextTokenizer;
  /** Streams each row's new text as it is decoded. */
  onText?: (row: number, delta: string) => void;
  /** Full recomputation each step instead of the cache (a correctness reference). */
  noCache?: boolean;
  /**
   * Stops between tokens (unfinished rows end with 'stopped'). With a signal the loop yields to the
   * event loop once per token, so a stop message can arrive while session.run keeps the thread busy.
   */
  signal?: AbortSignal;
}

/** Where the last generate() call spent its time (session runs only; sampling and text are the rest). */
export interface GenerateTimings {
  /** The run over the prompt. */
  prefillMs: number;
  /** The runs of one new token each, and how many there were. */
  decodeMs: number;
  decodeRuns: number;
}

export interface GenerateResult {
  ids: number[];
  text: string;
  finish: 'eos' | 'length' | 'stop' | 'stopped';
}

/**
 * The generation graph (model/graphs.ts buildGeneration) for a fixed batch, with the
 * output names the decode loop feeds back: logits [B, V] of the last position, present_k.N and
 * present_v.N [B, KV, P+T, hd].
 */
export function generationGraph(fw: FrozenWeights, invFreq: Float64Array, maxPositions: number, lora: LoraSpec | null, batch: number, device: DeviceOptions = {}): Graph {
  const g = new Graph('generate');
  const gen = buildGeneration(g, fw, invFreq, maxPositions, lora, batch, device);
  g.output(gen.logits, 'logits');
  gen.presentK.forEach((t, l) => g.output(t, `present_k.${l}`));
  gen.presentV.forEach((t, l) => g.output(t, `present_v.${l}`));
  return g;
}

/**
 * input_ids, position_ids and attn_bias for `T` new tokens per row after `P` cached slots, each
 * row left-padded by padStart[b] slots: positions count from the row's first real token, and a
 * query sees its own slot and the earlier non-pad slots (a pad query sees only itself). With
 * `window` (the graph's sliding layers: model/llama.ts slidingWindowIn) also attn_bias_local, the
 * same mask hiding the keys `window` or more slots back.
 */
export function stepInputs(tokens: number[][], P: number, padStart: readonly number[], window: number | null = null): Record<string, HostTensor> {
  const B = tokens.length, T = tokens[0]!.length;
  const ids = new BigInt64Array(B * T), pos = new BigInt64Array(B * T);
  const bias = new Float32Array(B * T * (P + T)).fill(MASKED);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const abs = P + i; // absolute slot of this query
      ids[b * T + i] = BigInt(tokens[b]![i]!);
      pos[b * T + i] = BigInt(Math.max(0, abs - padStart[b]!));
      for (let j = 0; j <= abs; j++) {
        if (j >= padStart[b]! || j === abs) bias[(b * T + i) * (P + T) + j] = 0;
      }
    }
  }
  return {
    input_ids: { dtype: 'int64', dims: [B, T], data: ids },
    position_ids: { dtype: 'int64', dims: [B, T], data: pos },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, P + T], data: bias },
    ...(window === null ? {} : { attn_bias_local: { dtype: 'float32', dims: [B, 1, T, P + T], data: windowedBias(bias, B, T, P + T, window, MASKED) } }),
  };
}

export class Generator {
  /**
   * The session for the last batch size used: the graph's batch is fixed so that it needs no shape
   * arithmetic (see buildGeneration). Another batch size replaces it (one copy of the weights).
   */
  private current: { batch: number; session: Session } | null = null;
  /** Timings of the last generate() call. */
  lastTimings: GenerateTimings | null = null;

  private constructor(
    readonly fw: FrozenWeights,
    private readonly invFreq: Float64Array,
    readonly lora: LoraSpec | null,
    readonly maxPositions: number,
    private readonly options: SessionOptions,
    private readonly device: DeviceOptions,
  ) {}

  static async create(fw: FrozenWeights, invFreq: Float64Array, o: GeneratorOptions): Promise<Generator> {
    // Sessions are built on first use, for the batch size a request brings. Float weights are used
    // as they are: repacking them at load (MLAS's packed GEMM layout) cost as much CPU as the whole
    // load and +25% peak memory on a 0.5B model, for no gain in decoding speed. 4-bit weights are
    // repacked (MatMulNBits' fast kernels need it).
    // On the CPU a 16-bit embedding table stays mapped from the checkpoint (rows cast after the
    // gather): folding a float32 copy of it at load was 60% of a 4-bit 0.5B model's load.
    const provider = o.provider ?? 'cpu';
    return new Generator(fw, invFreq, o.lora ?? null, o.maxPositions, {
      provider, threads: o.threads ?? 0, disableCpuFallback: o.strictProvider ?? false, prepackWeights: o.prepackWeights ?? fw.quantize,
      cpuMemArena: o.memArena ?? true, profilePrefix: o.profilePrefix,
    }, {
      maxWeightBytes: o.maxWeightBytes ?? (provider === 'webgpu' ? WEBGPU_DEFAULT_BINDING_BYTES : Infinity),
      gatherRawRows: provider === 'cpu',
      int8Activations: o.int8Activations ?? false,
    });
  }

  private async sessionFor(batch: number): Promise<Session> {
    if (this.current?.batch !== batch) {
      await this.release();
      const graph = generationGraph(this.fw, this.invFreq, this.maxPositions, this.lora, batch, this.device);
      this.current = { batch, session: await sessionFromGraph(graph, this.options, stagingDir()) };
    }
    return this.current!.session;
  }

  async release(): Promise<void> {
    await this.current?.session.release();
    this.current = null;
  }

  async generate(req: GenerateRequest): Promise<GenerateResult[]> {
    const cfg = this.fw.cfg;
    const B = req.prompts.length;
    const L = Math.max(...req.prompts.map((p) => p.length));
    if (L === 0) throw new Error('generate: empty prompt (start from the BOS token)');
    if (L + req.maxNewTokens > this.maxPositions) {
      throw new Error(`generate: prompt (${L}) + max new tokens (${req.maxNewTokens}) exceeds the context of ${this.maxPositions}`);
    }
    const session = await this.sessionFor(B);
    const sampler = new Sampler(req.sampling ?? GREEDY);
    const padStart = req.prompts.map((p) => L - p.length); // left padding
    const seqs = req.prompts.map((p) => [...p]);
    const done: (GenerateResult['finish'] | null)[] = req.prompts.map(() => null);
    const texts = req.prompts.map(() => '');
    const generated: number[][] = req.prompts.map(() => []);

    const loraFeeds: Record<string, HostTensor> = {};
    if (this.lora) {
      const scales = req.loraScales ?? req.prompts.map(() => (req.adapter ? 1 : 0));
      loraFeeds.lora_scale = { dtype: 'float32', dims: [B], data: Float32Array.from(scales) };
      for (const p of loraParams(cfg, this.lora)) {
        const w = req.adapter?.get(p.name) ?? new Float32Array(p.shape[0] * p.shape[1]);
        loraFeeds[p.name] = { dtype: 'float32', dims: p.shape, data: w };
      }
    } else if (req.loraScales?.some((s) => s !== 0)) {
      throw new Error('generate: this generator was built without LoRA inputs');
    }

    const KV = cfg.numKvHeads, hd = cfg.headDim;
    const window = slidingWindowIn(cfg, this.maxPositions); // the graph takes the sliding layers' mask
    const emptyCache = () => {
      const c: Record<string, HostTensor> = {};
      for (let l = 0; l < cfg.numLayers; l++) {
        c[`past_k.${l}`] = { dtype: 'float32', dims: [B, KV, 0, hd], data: new Float32Array(0) };
        c[`past_v.${l}`] = { dtype: 'float32', dims: [B, KV, 0, hd], data: new Float32Array(0) };
      }
      return c;
    };

    /** Runs `T` new tokens per row after `P` cached ones; returns last-position logits. */
    const step = async (tokens: number[][], P: number, cache: Record<string, HostTensor>) => {
      const out = await session.run({ ...stepInputs(tokens, P, padStart, window), ...cache, ...loraFeeds });
      const next: Record<string, HostTensor> = {};
      for (let l = 0; l < cfg.numLayers; l++) {
        next[`past_k.${l}`] = out[`present_k.${l}`]!;
        next[`past_v.${l}`] = out[`present_v.${l}`]!;
      }
      return { logits: out.logits!.data as Float32Array, cache: next };
    };

    const padded = seqs.map((s, b) => [...new Array<number>(padStart[b]!).fill(0), ...s]); // pads are masked out
    const timings: GenerateTimings = { prefillMs: 0, decodeMs: 0, decodeRuns: 0 };
    this.lastTimings = timings;
    let t0 = performance.now();
    let { logits, cache } = await step(padded, 0, emptyCache());
    timings.prefillMs = performance.now() - t0;
    let P = L;
    const V = cfg.vocabSize;
    for (let t = 0; t < req.maxNewTokens; t++) {
      if (req.signal) {
        await new Promise((r) => setImmediate(r));
        if (req.signal.aborted) {
          done.forEach((d, b) => { if (!d) done[b] = 'stopped'; });
          break;
        }
      }
      const chosen: number[] = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          const filler = padded[b]![padded[b]!.length - 1]!; // finished rows idle on their last token
          chosen.push(filler);
          padded[b]!.push(filler);
          continue;
        }
        const row = logits.slice(b * V, (b + 1) * V);
        const id = sampler.next(row, seqs[b]!);
        chosen.push(id);
        seqs[b]!.push(id);
        padded[b]!.push(id);
        if (req.eosIds.includes(id)) {
          done[b] = 'eos';
          continue;
        }
        generated[b]!.push(id);
        if (req.tokenizer) {
          const text = req.tokenizer.decode(generated[b]!, { skipSpecialTokens: true });
          const stop = req.stopStrings?.map((s) => text.indexOf(s)).filter((i) => i >= 0).sort((x, y) => x - y)[0];
          const visible = stop !== undefined ? text.slice(0, stop) : text;
          if (visible.length > texts[b]!.length && !visible.endsWith('\uFFFD')) {
            req.onText?.(b, visible.slice(texts[b]!.length));
            texts[b] = visible;
          }
          if (stop !== undefined) {
            texts[b] = visible;
            done[b] = 'stop';
          }
        }
      }
      if (done.every((d) => d) || t === req.maxNewTokens - 1) break;
      t0 = performance.now();
      if (req.noCache) {
        ({ logits, cache } = await step(padded, 0, emptyCache()));
      } else {
        ({ logits, cache } = await step(chosen.map((c) => [c]), P, cache));
      }
      timings.decodeMs += performance.now() - t0;
      timings.decodeRuns++;
      P++;
    }
    return generated.map((ids, b) => {
      let text = texts[b]!;
      if (req.tokenizer && done[b] !== 'stop') text = req.tokenizer.decode(ids, { skipSpecialTokens: true });
      return { ids, text, finish: done[b] ?? 'length' };
    });
  }
}
