// The Llama-family decoder (Llama 2/3/3.x, Mistral, Qwen2, SmolLM) as a graph, built once per job
// shape. It reads like the architecture:
//
//   h   = embed(ids)
//   h   = h + attn(rmsnorm(h))        # per layer, RoPE on q/k, grouped-query attention
//   h   = h + mlp(rmsnorm(h))         # SiLU-gated: down(silu(gate(x)) * up(x))
//   out = lm_head(rmsnorm(h))
//
// Activations are kept 2-D, [rows = B*T, D], so every projection is one GEMM; attention reshapes
// to [B, heads, T, hd]. Frozen projections are float initializers (Gemm, transB) or 4-bit
// MatMulNBits weights (QLoRA); LoRA matrices are graph inputs, so the trainer owns them.

import type { DType, Dim } from '../engine/graph/dtype.js';
import { type Graph, Tensor } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { type LoraParam, type LoraSpec, type LoraTarget, loraParams, loraScale, modulePath, projectionShape } from './lora.js';
import { type Int4Weight, quantizeInt4 } from './quant.js';
import type { ModelConfig } from './types.js';

/** Where frozen weights come from: HF tensor name -> float32 data (streamed from safetensors). */
export type WeightSource = (name: string) => Float32Array;

export interface ModelBuildOptions {
  config: ModelConfig;
  weights: WeightSource;
  /** Store frozen projections (and an untied lm_head) in 4 bits (QLoRA). */
  quantize?: boolean;
  blockSize?: number;
  lora?: LoraSpec | null;
}

/** Frozen weights, loaded (and quantized) once and shared by every graph built from them. */
export class FrozenWeights {
  private readonly float = new Map<string, Float32Array>();
  private readonly int4 = new Map<string, Int4Weight>();

  constructor(readonly cfg: ModelConfig, private readonly src: WeightSource, readonly quantize: boolean, readonly blockSize = 32) {}

  /** A float tensor by HF name (norms, biases, embeddings; projections when not quantized). */
  f(name: string): Float32Array {
    let w = this.float.get(name);
    if (!w) {
      w = this.src(name);
      this.float.set(name, w);
    }
    return w;
  }

  /** A projection weight [out, in] quantized to 4 bits (the float copy is dropped after quantizing). */
  q(name: string, out: number, inp: number): Int4Weight {
    let w = this.int4.get(name);
    if (!w) {
      w = quantizeInt4(this.src(name), out, inp, this.blockSize);
      this.int4.set(name, w);
    }
    return w;
  }

  /** The lm_head weight name (tied models reuse the embedding). */
  get lmHeadName(): string {
    return this.cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  }
}

const bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Per-graph view of the frozen weights: initializers are created on first use. */
class WeightScope {
  private readonly cache = new Map<string, Tensor | F.NBitsWeight>();
  /** Base weights as graph inputs, in first-use order (full-parameter training). */
  readonly inputs = new Map<string, Tensor>();
  constructor(readonly g: Graph, readonly w: FrozenWeights, readonly trainable = false) {}

  float(name: string, shape: number[]): Tensor {
    const hit = this.cache.get(name);
    if (hit) return hit as Tensor;
    let t: Tensor;
    if (this.trainable) {
      t = this.g.input(name, 'float32', shape);
      this.inputs.set(name, t);
    } else {
      t = this.g.initializer(name, 'float32', shape, { kind: 'inline', bytes: bytes(this.w.f(name)) });
    }
    this.cache.set(name, t);
    return t;
  }

  nbits(name: string, out: number, inp: number): F.NBitsWeight {
    const hit = this.cache.get(name);
    if (hit) return hit as F.NBitsWeight;
    const q = this.w.q(name, out, inp);
    const blocks = inp / q.blockSize;
    const nb: F.NBitsWeight = {
      packed: this.g.initializer(`${name}.q4`, 'uint8', [out, blocks, q.blockSize / 2], { kind: 'inline', bytes: q.packed }),
      scales: this.g.initializer(`${name}.scales`, 'float32', [out * blocks], { kind: 'inline', bytes: bytes(q.scales) }),
      zeroPoints: null,
      K: inp,
      N: out,
      blockSize: q.blockSize,
    };
    this.cache.set(name, nb);
    return nb;
  }

  /** y = x @ W^T (+ bias) for an HF [out, in] weight, float or 4-bit. x: [rows, in] -> [rows, out] */
  linear(x: Tensor, name: string, out: number, inp: number, bias: string | null): Tensor {
    const b = bias ? this.float(bias, [out]) : null;
    if (this.w.quantize && !this.trainable) {
      const y = F.matMulNBits(x, this.nbits(name, out, inp));
      return b ? F.add(y, b) : y;
    }
    return F.gemm(x, this.float(name, [out, inp]), b, { transB: true });
  }
}

/** Graph inputs holding the LoRA matrices, by PEFT name. */
export type LoraInputs = Map<string, Tensor>;

interface LayerContext {
  cfg: ModelConfig;
  ws: WeightScope;
  lora: { spec: LoraSpec; inputs: LoraInputs; scale: Tensor | number; dropoutSeeds: Tensor | null } | null;
  /** Batch and sequence dims of the activations (numbers for training, symbols for generation). */
  B: Dim;
  T: Dim;
  /** [B, T] as an int64 shape tensor, when B or T is symbolic. */
  bt: Tensor | null;
  cos: Tensor; // [B, 1, T, hd]
  sin: Tensor; // [B, 1, T, hd]
  bias: Tensor; // [B, 1, T, S] additive attention mask
  /** Per-layer KV cache for generation: past [B, KV, P, hd] in, present out. */
  cache: { pastK: Tensor[]; pastV: Tensor[]; presentK: Tensor[]; presentV: Tensor[] } | null;
  moduleIndex: number;
}

function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  // x: [rows, D] -> x / sqrt(mean(x^2) + eps) * weight
  const ms = F.reduceMean(F.mul(x, x), [-1], true); // [rows, 1]
  return F.mul(F.mul(x, F.reciprocal(F.sqrt(F.add(ms, eps)))), weight);
}

/** B*T when static, else a symbol (Reshape infers it). */
const rowsOf = (c: LayerContext): Dim => (typeof c.B === 'number' && typeof c.T === 'number' ? c.B * c.T : 'rows');

/** Reshape [rows, ...] activations to [B, T, ...tail] (static, or through a shape tensor). */
function toBT(c: LayerContext, x: Tensor, tail: number[]): Tensor {
  if (!c.bt) return F.reshape(x, [c.B, c.T, ...tail]);
  const shape = F.concat([c.bt, F.int64s(x.graph, tail)], 0);
  return x.graph.addNode('Reshape', [x, shape], [{ dtype: x.dtype, shape: [c.B, c.T, ...tail] }])[0]!;
}

/** Dropout on LoRA inputs with a counter-based hash, so masks are reproducible and resumable. */
function loraDropout(c: LayerContext, x: Tensor, p: number): Tensor {
  if (p <= 0 || !c.lora?.dropoutSeeds) return x;
  const g = x.graph;
  const idx = c.moduleIndex++;
  const seed = F.slice(c.lora.dropoutSeeds, [idx], [idx + 1], [0]); // [1] float, fed per step
  const [rows, cols] = x.shape as number[];
  const iota = g.initializers.get(`dropout.iota.${rows}x${cols}`)?.tensor
    ?? g.initializer(`dropout.iota.${rows}x${cols}`, 'float32', [rows!, cols!], {
      kind: 'inline',
      bytes: bytes(Float32Array.from({ length: rows! * cols! }, (_, i) => i % 65521 + Math.floor(i / 65521) * 0.5)),
    });
  const s = F.sin(F.add(F.mul(iota, 12.9898), F.mul(seed, 78.233)));
  const r = F.mul(s, 43758.5453);
  const u = F.sub(r, F.cast(F.cast(r, 'int32'), 'float32')); // frac, in (-1, 1)
  const keep = F.cast(F.greater(F.abs(u), p), 'float32');
  return F.mul(x, F.mul(keep, 1 / (1 - p)));
}

/** A projection with its optional LoRA branch. x: [rows, in] -> [rows, out] */
function projection(c: LayerContext, x: Tensor, layer: number, target: LoraTarget, withBias: boolean): Tensor {
  const [out, inp] = projectionShape(c.cfg, target);
  const path = modulePath(layer, target);
  const y = c.ws.linear(x, `${path}.weight`, out, inp, withBias ? `${path}.bias` : null);
  if (!c.lora || !c.lora.spec.targets.includes(target)) return y;
  const a = c.lora.inputs.get(`base_model.model.${path}.lora_A.weight`)!; // [r, in]
  const b = c.lora.inputs.get(`base_model.model.${path}.lora_B.weight`)!; // [out, r]
  const xa = F.gemm(loraDropout(c, x, c.lora.spec.dropout), a, null, { transB: true }); // [rows, r]
  const delta = F.gemm(xa, b, null, { transB: true }); // [rows, out]
  return F.add(y, F.mul(delta, c.lora.scale));
}

/** Rotary embedding on [B, heads, T, hd]: x * cos + rotate_half(x) * sin. */
function rope(x: Tensor, cos: Tensor, sin: Tensor, hd: number): Tensor {
  const [x1, x2] = F.split(x, [hd / 2, hd / 2], -1);
  const rotated = F.concat([F.neg(x2!), x1!], -1);
  return F.add(F.mul(x, cos), F.mul(rotated, sin));
}

function attention(c: LayerContext, x: Tensor, layer: number): Tensor {
  const { cfg } = c;
  const H = cfg.numHeads, KV = cfg.numKvHeads, hd = cfg.headDim, G = H / KV;
  const bias = cfg.attentionBias;
  const q = F.transpose(toBT(c, projection(c, x, layer, 'q_proj', bias), [H, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
  let k = F.transpose(toBT(c, projection(c, x, layer, 'k_proj', bias), [KV, hd]), [0, 2, 1, 3]); // [B, KV, T, hd]
  let v = F.transpose(toBT(c, projection(c, x, layer, 'v_proj', bias), [KV, hd]), [0, 2, 1, 3]); // [B, KV, T, hd]
  const qr = rope(q, c.cos, c.sin, hd);
  k = rope(k, c.cos, c.sin, hd);
  if (c.cache) {
    k = F.concat([c.cache.pastK[layer]!, k], 2); // [B, KV, P+T, hd]
    v = F.concat([c.cache.pastV[layer]!, v], 2);
    c.cache.presentK.push(k);
    c.cache.presentV.push(v);
  }
  // Grouped-query attention without repeating K/V: fold each KV head's G query heads into rows.
  const S = k.shape[2]!;
  const qg = F.reshape(qr, [c.B, KV, G === 1 ? c.T : typeof c.T === 'number' ? G * c.T : `${G}*${c.T}`, hd]); // [B, KV, G*T, hd]
  const scores = F.mul(F.matmul(qg, F.transposeLast2(k)), 1 / Math.sqrt(hd)); // [B, KV, G*T, S]
  const probs = F.softmax(F.add(F.reshape(scores, [c.B, H, c.T, S]), c.bias), -1); // [B, H, T, S]
  const ctx = F.matmul(F.reshape(probs, [c.B, KV, qg.shape[2]!, S]), v); // [B, KV, G*T, hd]
  const merged = F.reshape(F.transpose(F.reshape(ctx, [c.B, H, c.T, hd]), [0, 2, 1, 3]), [rowsOf(c), H * hd]); // [rows, H*hd]
  return projection(c, merged, layer, 'o_proj', cfg.attentionOutputBias);
}

function mlp(c: LayerContext, x: Tensor, layer: number): Tensor {
  const bias = c.cfg.mlpBias;
  const gate = projection(c, x, layer, 'gate_proj', bias);
  const up = projection(c, x, layer, 'up_proj', bias);
  const act = F.mul(F.mul(gate, F.sigmoid(gate)), up); // silu(gate) * up, [rows, I]
  return projection(c, act, layer, 'down_proj', bias);
}

function decoderLayer(c: LayerContext, h: Tensor, layer: number): Tensor {
  const p = `model.layers.${layer}`;
  const D = c.cfg.hiddenSize, eps = c.cfg.rmsNormEps;
  const a = attention(c, rmsNorm(h, c.ws.float(`${p}.input_layernorm.weight`, [D]), eps), layer);
  const h1 = F.add(h, a);
  const m = mlp(c, rmsNorm(h1, c.ws.float(`${p}.post_attention_layernorm.weight`, [D]), eps), layer);
  return F.add(h1, m);
}

/** cos/sin tables [positions, hd] (HF layout: the half-frequencies repeated twice). */
export function ropeTables(invFreq: Float64Array, positions: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length, hd = half * 2;
  const cos = new Float32Array(positions * hd), sin = new Float32Array(positions * hd);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i]!;
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(a);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(a);
    }
  }
  return { cos, sin };
}

interface ForwardInputs {
  ids: Tensor; // [B, T] int64
  positions: Tensor; // [B, T] int64
  bias: Tensor; // [B, 1, T, S] float
}

/** Embedding through the final norm: hidden states [rows, D]. */
function trunk(c: LayerContext, inp: ForwardInputs, invFreq: Float64Array, maxPositions: number, checkpoint: boolean): Tensor {
  const { cfg, ws } = c;
  const g = inp.ids.graph;
  const D = cfg.hiddenSize, hd = cfg.headDim;
  const tables = ropeTables(invFreq, maxPositions);
  const cosT = g.initializer('rope.cos', 'float32', [maxPositions, hd], { kind: 'inline', bytes: bytes(tables.cos) });
  const sinT = g.initializer('rope.sin', 'float32', [maxPositions, hd], { kind: 'inline', bytes: bytes(tables.sin) });
  c.cos = F.unsqueeze(F.gather(cosT, inp.positions), [1]); // [B, 1, T, hd]
  c.sin = F.unsqueeze(F.gather(sinT, inp.positions), [1]);
  c.bias = inp.bias;
  const flatIds = F.reshape(inp.ids, [rowsOf(c)]);
  let h = F.gather(ws.float('model.embed_tokens.weight', [cfg.vocabSize, D]), flatIds); // [rows, D]
  for (let l = 0; l < cfg.numLayers; l++) {
    const run = () => g.scope(`layers.${l}`, () => decoderLayer(c, h, l));
    h = checkpoint ? g.checkpoint(`layers.${l}`, run) : run();
  }
  return rmsNorm(h, ws.float('model.norm.weight', [D]), cfg.rmsNormEps);
}

function lmHead(c: LayerContext, h: Tensor): Tensor {
  const { cfg, ws } = c;
  return ws.linear(h, ws.w.lmHeadName, cfg.vocabSize, cfg.hiddenSize, null); // [rows, V]
}

// ---------------------------------------------------------------------------------------------
// Training graph

export interface TrainGraphOptions {
  batch: number;
  seq: number;
  /** LoRA adapters to train, or null for full-parameter training (trainBase). */
  lora: LoraSpec | null;
  /** Every base weight becomes a graph input ("baseInputs"): full-parameter training. */
  trainBase?: boolean;
  /** Recompute each decoder layer in the backward instead of keeping its activations. */
  checkpointLayers?: boolean;
  /** Split the vocabulary projection + loss into this many row chunks (large vocabularies). */
  lossChunks?: number;
  /** Feed per-module dropout seeds (input "dropout_seeds") when lora.dropout > 0. */
  dropout?: boolean;
}

export interface TrainGraph {
  /** Scalar mean cross-entropy over targets != -100. */
  loss: Tensor;
  lora: LoraParam[];
  loraInputs: LoraInputs;
  /** Base weights fed as inputs when trainBase is set, by HF name. */
  baseInputs: Map<string, Tensor>;
  /** Number of dropout seeds to feed (0 = no dropout input). */
  dropoutModules: number;
}

/**
 * The forward + loss of a causal LM for a static [B, T] batch. Inputs: input_ids, position_ids
 * (int64 [B, T]), attn_bias (float [B, 1, T, T], 0 or -1e9), targets (int64 [B*T], the next token
 * or -100), the LoRA matrices by PEFT name, and dropout_seeds when dropout is on.
 */
export function buildTrainForward(g: Graph, fw: FrozenWeights, invFreq: Float64Array, o: TrainGraphOptions): TrainGraph {
  const { cfg } = fw;
  const B = o.batch, T = o.seq;
  const ids = g.input('input_ids', 'int64', [B, T]);
  const positions = g.input('position_ids', 'int64', [B, T]);
  const bias = g.input('attn_bias', 'float32', [B, 1, T, T]);
  const targets = g.input('targets', 'int64', [B * T]);
  const params = o.lora ? loraParams(cfg, o.lora) : [];
  const loraInputs: LoraInputs = new Map(params.map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
  const nModules = o.lora ? cfg.numLayers * o.lora.targets.length : 0;
  const useDropout = (o.dropout ?? true) && !!o.lora && o.lora.dropout > 0;
  const seeds = useDropout ? g.input('dropout_seeds', 'float32', [nModules]) : null;
  const ws = new WeightScope(g, fw, !!o.trainBase);
  const c: LayerContext = {
    cfg, ws, B, T, bt: null,
    lora: o.lora ? { spec: o.lora, inputs: loraInputs, scale: loraScale(o.lora), dropoutSeeds: seeds } : null,
    cos: ids, sin: ids, bias, cache: null, moduleIndex: 0,
  };
  const h = trunk(c, { ids, positions, bias }, invFreq, T, !!o.checkpointLayers); // [rows, D]
  const chunks = Math.max(1, o.lossChunks ?? 1);
  let loss: Tensor;
  if (chunks === 1) {
    loss = F.softmaxCrossEntropyLoss(lmHead(c, h), targets);
  } else {
    // Chunked: each chunk's logits are recomputed in the backward, so only [rows/chunks, V] is live.
    const rows = B * T, size = Math.ceil(rows / chunks);
    const sizes = Array.from({ length: chunks }, (_, i) => Math.min(size, rows - i * size)).filter((s) => s > 0);
    const hs = F.split(h, sizes, 0), ts = F.split(targets, sizes, 0);
    const valid = F.cast(F.not(F.equal(targets, F.scalar(g, 'int64', -100))), 'float32');
    const count = F.max2(F.reduceSum(valid, [0], false), 1);
    let total: Tensor | null = null;
    hs.forEach((hc, i) => {
      const part = g.checkpoint(`loss.${i}`, () => {
        const logits = lmHead(c, hc);
        const mean = F.softmaxCrossEntropyLoss(logits, ts[i]!);
        const n = F.reduceSum(F.cast(F.not(F.equal(ts[i]!, F.scalar(g, 'int64', -100))), 'float32'), [0], false);
        return F.mul(mean, n); // sum over this chunk's valid tokens
      });
      total = total ? F.add(total, part) : part;
    });
    loss = F.div(total!, count);
  }
  return { loss, lora: params, loraInputs, baseInputs: ws.inputs, dropoutModules: useDropout ? nModules : 0 };
}

// ---------------------------------------------------------------------------------------------
// Generation graph (prefill and decode share it: T tokens appended to a cache of P)

export interface GenerationGraph {
  logits: Tensor; // [B, V] of the last position
  presentK: Tensor[];
  presentV: Tensor[];
}

/**
 * Inputs: input_ids [B, T], position_ids [B, T], attn_bias [B, 1, T, P+T], past_k.N / past_v.N
 * [B, KV, P, hd], lora_scale [B] (0 = base model, 1 = tuned: base and tuned answers share one
 * session and one copy of the weights), and the LoRA matrices when `lora` is given.
 * Outputs the last position's logits and the present caches.
 */
export function buildGeneration(g: Graph, fw: FrozenWeights, invFreq: Float64Array, maxPositions: number, lora: LoraSpec | null): GenerationGraph {
  const { cfg } = fw;
  const B = 'batch', T = 'seq', P = 'past';
  const ids = g.input('input_ids', 'int64', [B, T]);
  const positions = g.input('position_ids', 'int64', [B, T]);
  const bias = g.input('attn_bias', 'float32', [B, 1, T, `${P}+${T}`]);
  const cache = { pastK: [] as Tensor[], pastV: [] as Tensor[], presentK: [] as Tensor[], presentV: [] as Tensor[] };
  for (let l = 0; l < cfg.numLayers; l++) {
    cache.pastK.push(g.input(`past_k.${l}`, 'float32', [B, cfg.numKvHeads, P, cfg.headDim]));
    cache.pastV.push(g.input(`past_v.${l}`, 'float32', [B, cfg.numKvHeads, P, cfg.headDim]));
  }
  let loraCtx: LayerContext['lora'] = null;
  if (lora) {
    const scaleIn = g.input('lora_scale', 'float32', [B]);
    const params = loraParams(cfg, lora);
    const inputs: LoraInputs = new Map(params.map((p) => [p.name, g.input(p.name, 'float32', p.shape)]));
    // Per-row scale: rows are B*T in batch-major order, so expand [B] -> [B, T] -> [rows, 1].
    const perRow = F.reshape(F.mul(F.unsqueeze(scaleIn, [1]), F.cast(F.greaterOrEqual(F.cast(positions, 'float32'), 0), 'float32')), ['rows', 1]);
    loraCtx = { spec: lora, inputs, scale: F.mul(perRow, loraScale(lora)), dropoutSeeds: null };
  }
  const bt = F.shapeOf(ids); // [2] = (B, T)
  const c: LayerContext = { cfg, ws: new WeightScope(g, fw), B, T, bt, lora: loraCtx, cos: ids, sin: ids, bias, cache, moduleIndex: 0 };
  const h = trunk(c, { ids, positions, bias }, invFreq, maxPositions, false); // [rows, D]
  // Only the last position's logits are needed: gather row t = T-1 of each sequence.
  const last = F.reshape(F.slice(toBT(c, h, [cfg.hiddenSize]), [-1], [Number.MAX_SAFE_INTEGER], [1]), [B, cfg.hiddenSize]);
  const logits = lmHead(c, last);
  return { logits, presentK: cache.presentK, presentV: cache.presentV };
}

export type { DType };
