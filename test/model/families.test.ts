// Qwen3, Gemma 3 and Phi-3 through Finch's one decoder, against transformers 5.17 itself
// (test/oracle/hf_family.py) on tiny random checkpoints transformers writes (norms perturbed, so
// that Gemma's (1 + w) and the q/k norms matter): the training graph's logits at every position,
// its loss and every LoRA gradient (PEFT holds the same matrices), float and 4-bit (transformers
// gets the weights dequantized by this file's own reference of the int4 scheme), checkpointed and
// chunked, with a symbolic length; and the generation graph's prefill and KV-cache decoding logits
// (a base row and a LoRA row, one left-padded) against transformers' cached decoding. The configs
// exercise what each family adds: an explicit head_dim and q/k norms (Qwen3, with all four biases
// in one case), sliding layers with a window shorter than the sequence interleaved with full
// ones, separate RoPE bases and linear scaling of the full layers, query_pre_attn_scalar, GELU,
// the logit soft-capping (Gemma 3), fused qkv/gate_up projections, partial rotary,
// LongRoPE's long factors, a sliding window and tied embeddings (Phi-3). All within 1e-4 of the
// largest value.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { grad } from '../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { generationGraph, stepInputs } from '../../src-main/infer/generate.js';
import { buildTrainForward } from '../../src-main/model/graphs.js';
import { slidingWindowIn, windowedBias } from '../../src-main/model/llama.js';
import { loadModel, type LoadedModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, type LoraSpec, loraParams, resolveLora } from '../../src-main/model/lora.js';
import { quantizedWeights } from '../../src-main/model/quant-cache.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { type HfCheckpointSpec, hfCheckpoints } from '../helpers/hf-checkpoints.js';
import { type HfOracleRequest, type OracleOutputs, runHfOracle } from '../helpers/hf-oracle.js';
import { maxDiffOverScale } from '../helpers/llama-oracle.js';
import { need, problem } from '../helpers/prerequisites.js';
import { tempDir } from './model-helpers.js';

const TOLERANCE = 1e-4; // max |Finch - transformers| over max |transformers|, per tensor
const BLOCK = 32;

const shape = { hidden_size: 64, intermediate_size: 96, num_attention_heads: 4, num_key_value_heads: 2, initializer_range: 0.1 };
const CHECKPOINTS = {
  qwen3: { family: 'qwen3', config: { ...shape, num_hidden_layers: 2, head_dim: 32 } },
  'qwen3-biased': { family: 'qwen3', seed: 1, config: { ...shape, num_hidden_layers: 2, head_dim: 16, attention_bias: true, tie_word_embeddings: true } },
  // Layers: sliding, full, sliding (pattern 2), window 4 < the 7 tokens trained and the 9 decoded.
  gemma3: {
    family: 'gemma3_text', seed: 2,
    config: {
      ...shape, num_hidden_layers: 3, head_dim: 16, sliding_window: 4, sliding_window_pattern: 2, query_pre_attn_scalar: 24,
      rope_theta: 100000, rope_local_base_freq: 1000, rope_scaling: { rope_type: 'linear', factor: 4 }, final_logit_softcapping: 3.5,
    },
  },
  // attn_logit_softcapping is Gemma 2's: transformers' Gemma 3 stores it and caps nothing.
  'gemma3-capped': {
    family: 'gemma3_text', seed: 3,
    config: { ...shape, num_hidden_layers: 2, head_dim: 16, sliding_window: 3, sliding_window_pattern: 2, query_pre_attn_scalar: 16, attn_logit_softcapping: 1.5 },
  },
  // Partial rotary (8 of 16 dimensions turn), LongRoPE with original_max_position_embeddings 4: every
  // sequence here is longer, so both sides use the long factors; tied embeddings as Phi-4-mini.
  'phi3-longrope': {
    family: 'phi3', seed: 4,
    config: {
      ...shape, num_hidden_layers: 2, max_position_embeddings: 64, original_max_position_embeddings: 4, partial_rotary_factor: 0.5, tie_word_embeddings: true,
      rope_scaling: { type: 'longrope', short_factor: [1, 1.5, 2, 3], long_factor: [1.2, 2.5, 4, 9] },
    },
  },
  'phi3-window': { family: 'phi3', seed: 5, config: { ...shape, num_hidden_layers: 2, sliding_window: 5 } },
} satisfies Record<string, HfCheckpointSpec>;
type Name = keyof typeof CHECKPOINTS;

interface Case {
  name: string;
  ckpt: Name;
  quantize?: boolean;
  checkpoint?: boolean;
  /** Chunked: attention one head at a time, the MLP (a fused gate_up_proj included) in 3 pieces, the vocabulary in 2. */
  chunked?: boolean;
  lossChunks?: number;
  /** A symbolic sequence length (graph built for `seq`, run at 7 tokens). */
  dynamicSeq?: number;
  /** Also the generation graph: prefill + cached decoding against transformers'. */
  decode?: boolean;
}

const CASES: Case[] = [
  { name: 'Qwen3 (head_dim 32 > hidden/heads, q/k norms)', ckpt: 'qwen3', decode: true },
  { name: 'Qwen3 4-bit, q/k/v/o biases, tied head, checkpointed', ckpt: 'qwen3-biased', quantize: true, checkpoint: true, decode: true },
  { name: 'Gemma 3 (sliding/full layers, local/global RoPE, linear scaling, query_pre_attn_scalar, logit capping)', ckpt: 'gemma3', decode: true },
  { name: 'Gemma 3 4-bit, symbolic length, chunked attention, MLP and vocabulary', ckpt: 'gemma3', quantize: true, dynamicSeq: 8, checkpoint: true, chunked: true, decode: true },
  { name: 'Gemma 3 with attn_logit_softcapping set (ignored, as by transformers)', ckpt: 'gemma3-capped' },
  { name: 'Phi-3 (fused qkv/gate_up, partial rotary, LongRoPE long factors, tied)', ckpt: 'phi3-longrope', decode: true },
  { name: 'Phi-3 4-bit, fused projections chunked, checkpointed, row-chunked loss', ckpt: 'phi3-longrope', quantize: true, checkpoint: true, chunked: true, lossChunks: 2 },
  { name: 'Phi-3 with a sliding window', ckpt: 'phi3-window', decode: true },
];

/**
 * What a symmetric blockwise int4 weight stands for, written from the scheme's definition: per
 * block of `block` inputs, scale = float32(absmax / 7), q = clamp(round(w / scale) + 8, 0, 15),
 * value = (q - 8) * scale.
 */
function symmetricInt4(w: Float32Array, block: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let start = 0; start < w.length; start += block) {
    const vals = w.subarray(start, start + block);
    const scale = Math.fround(Math.max(...Array.from(vals, Math.abs)) / 7);
    vals.forEach((v, j) => {
      const q = scale > 0 ? Math.min(15, Math.max(0, Math.round(v / scale) + 8)) : 8;
      out[start + j] = (q - 8) * scale;
    });
  }
  return out;
}

const B = 2, T = 7;
const valid = (b: number, t: number) => !(b === 1 && t >= T - 2); // row 1 is right-padded by 2

interface Finch { logits: Float32Array; loss: Float32Array; grads: Map<string, Float32Array>; decode: Float32Array[][] }
const results: { c: Case; finch: Finch; train: OracleOutputs; decode: OracleOutputs[] }[] = [];

/** Random LoRA matrices (B non-zero, so the adapter changes the output). */
function randomLora(m: LoadedModel, spec: LoraSpec, seed: number): Map<string, { shape: [number, number]; data: Float32Array }> {
  const rand = mulberry32(seed);
  return new Map(loraParams(m.config, spec).map((p) => [p.name, { shape: p.shape, data: Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.3) }]));
}

/** The weights transformers should use: 4-bit ones dequantized (a tied 4-bit head becomes lm_head beside the float embedding). */
function overrides(m: LoadedModel): [string, { shape: number[]; data: Float32Array }][] {
  return quantizedWeights(m.config).map((q) => {
    const w = m.weights.read(q.name);
    return [q.name === 'model.embed_tokens.weight' ? 'lm_head.weight' : q.name, { shape: [q.N, q.K], data: symmetricInt4(w, BLOCK) }];
  });
}

async function runFinch(c: Case, m: LoadedModel, spec: LoraSpec, lora: ReturnType<typeof randomLora>): Promise<{ finch: Finch; batch: HfOracleRequest['train'] }> {
  const cfg = m.config;
  const seq = c.dynamicSeq ?? T;
  const g = new Graph('train');
  const V = cfg.vocabSize, half = Math.floor(V / 2);
  const chunks = c.chunked ? { attentionHeads: 1, mlpSizes: [32, 32, 32], vocabSizes: [half, V - half] } : undefined;
  const tg = buildTrainForward(g, m.weights, m.invFreq, {
    batch: B, seq, lora: spec, checkpointLayers: c.checkpoint, lossChunks: c.lossChunks, chunks, dynamicSeq: !!c.dynamicSeq, dropout: false,
  });
  const params = loraParams(cfg, spec);
  const grads = grad(tg.loss, params.map((p) => tg.loraInputs.get(p.name)!));
  g.output(tg.loss, 'loss');
  g.output(tg.logits(), 'logits');
  params.forEach((p, i) => g.output(grads[i]!, `grad:${p.name}`));

  const rand = mulberry32(3);
  const ids = BigInt64Array.from({ length: B * T }, () => BigInt(2 + Math.floor(rand() * (cfg.vocabSize - 2))));
  const pos = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T));
  const bias = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) bias[(b * T + i) * T + j] = j <= i && valid(b, j) ? 0 : -1e9;
  // Prompt tokens (the first 2) are not trained.
  const targets = Int32Array.from({ length: B * T }, (_, i) => {
    const b = Math.floor(i / T), t = i % T;
    return t < 2 || t === T - 1 || !valid(b, t + 1) ? -100 : Number(ids[i + 1]!);
  });
  const feeds: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [B, T], data: ids },
    position_ids: { dtype: 'int64', dims: [B, T], data: pos },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias },
    targets: { dtype: 'int32', dims: [B * T], data: targets },
  };
  const window = slidingWindowIn(cfg, seq);
  assert.equal(g.inputs.some((t) => t.name === 'attn_bias_local'), window !== null, `${c.name}: the sliding layers' mask is an input exactly when the window is shorter than the graph`);
  if (window !== null) feeds.attn_bias_local = { dtype: 'float32', dims: [B, 1, T, T], data: windowedBias(bias, B, T, T, window) };
  for (const p of params) feeds[p.name] = { dtype: 'float32', dims: p.shape, data: lora.get(p.name)!.data };
  const session = await Session.create(serializeModel(g), { threads: 2 });
  const out = await session.run(feeds);
  await session.release();
  const finch: Finch = {
    logits: out.logits!.data as Float32Array, loss: out.loss!.data as Float32Array, decode: [],
    grads: new Map(params.map((p) => [p.name, out[`grad:${p.name}`]!.data as Float32Array])),
  };
  const mask = BigInt64Array.from({ length: B * T }, (_, i) => (valid(Math.floor(i / T), i % T) ? 1n : 0n));
  const batch = {
    input_ids: { shape: [B, T], data: ids }, attention_mask: { shape: [B, T], data: mask },
    position_ids: { shape: [B, T], data: pos }, targets: { shape: [B * T], data: targets },
  };
  return { finch, batch };
}

// Row 0: the base model (lora_scale 0), 6-token prompt. Row 1: tuned (lora_scale 1), 5 tokens,
// left-padded by 1. Each decodes 3 given tokens with the cache: 9 positions, past every window.
// Every prompt is longer than LongRoPE's original 4 positions: transformers picks its factors by
// each call's positions, so a shorter prefill would run short factors and its decoding long ones.
const PROMPTS = [[5, 9, 13, 21, 8, 30], [7, 30, 11, 12, 19]];
const NEXT = [[40, 41, 42], [50, 51, 52]];

async function runDecode(m: LoadedModel, spec: LoraSpec, lora: ReturnType<typeof randomLora>): Promise<Float32Array[][]> {
  const cfg = m.config, V = cfg.vocabSize, maxPositions = 16;
  const params = loraParams(cfg, spec);
  const session = await Session.create(serializeModel(generationGraph(m.weights, m.invFreq, maxPositions, spec, 2)), { threads: 2 });
  const L = Math.max(...PROMPTS.map((p) => p.length));
  const padStart = PROMPTS.map((p) => L - p.length);
  const window = slidingWindowIn(cfg, maxPositions);
  const fixed: Record<string, HostTensor> = { lora_scale: { dtype: 'float32', dims: [2], data: Float32Array.from([0, 1]) } };
  for (const p of params) fixed[p.name] = { dtype: 'float32', dims: p.shape, data: lora.get(p.name)!.data };
  let cache: Record<string, HostTensor> = {};
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const kv of ['k', 'v']) cache[`past_${kv}.${l}`] = { dtype: 'float32', dims: [2, cfg.numKvHeads, 0, cfg.headDim], data: new Float32Array(0) };
  }
  const rows: Float32Array[][] = [[], []];
  const run = async (tokens: number[][], P: number) => {
    const out = await session.run({ ...stepInputs(tokens, P, padStart, window), ...cache, ...fixed });
    const logits = out.logits!.data as Float32Array; // [2, V]
    for (let b = 0; b < 2; b++) rows[b]!.push(logits.slice(b * V, (b + 1) * V));
    cache = {};
    for (let l = 0; l < cfg.numLayers; l++) {
      cache[`past_k.${l}`] = out[`present_k.${l}`]!;
      cache[`past_v.${l}`] = out[`present_v.${l}`]!;
    }
  };
  await run(PROMPTS.map((p, b) => [...new Array<number>(padStart[b]!).fill(0), ...p]), 0);
  for (let k = 0; k < NEXT[0]!.length; k++) await run(NEXT.map((d) => [d[k]!]), L + k);
  await session.release();
  return rows;
}

before(async () => {
  if (problem('venv')) return; // each test then skips (or fails on CI), saying what is missing
  const dirs = hfCheckpoints(tempDir('finch-families-'), CHECKPOINTS);
  const requests: HfOracleRequest[] = [];
  const pending: { c: Case; finch: Finch; at: number; decodeAt: number[] }[] = [];
  for (const [i, c] of CASES.entries()) {
    const m = loadModel(dirs[c.ckpt], { quantize: c.quantize, blockSize: BLOCK, streamFloats: false });
    try {
      const spec = resolveLora(m.config, { ...DEFAULT_LORA, rank: 4, alpha: 8, dropout: 0 });
      const lora = randomLora(m, spec, 10 + i);
      const { finch, batch } = await runFinch(c, m, spec, lora);
      const over = c.quantize ? overrides(m) : [];
      const at = requests.push({ model: dirs[c.ckpt], overrides: over, lora: { spec, tensors: lora }, train: batch }) - 1;
      const decodeAt: number[] = [];
      if (c.decode) {
        finch.decode = await runDecode(m, spec, lora);
        decodeAt.push(requests.push({ model: dirs[c.ckpt], overrides: over, decode: [{ prompt: PROMPTS[0]!, next: NEXT[0]! }] }) - 1);
        decodeAt.push(requests.push({ model: dirs[c.ckpt], overrides: over, lora: { spec, tensors: lora }, decode: [{ prompt: PROMPTS[1]!, next: NEXT[1]! }] }) - 1);
      }
      pending.push({ c, finch, at, decodeAt });
    } finally {
      m.close();
    }
  }
  const outs = runHfOracle(requests);
  for (const p of pending) results.push({ c: p.c, finch: p.finch, train: outs[p.at]!, decode: p.decodeAt.map((k) => outs[k]!) });
});

for (const c of CASES) {
  test(`${c.name}: logits, loss and LoRA gradients match transformers${c.decode ? ', and so does cached decoding' : ''}`, (t) => {
    if (!need(t, 'venv')) return;
    const r = results.find((x) => x.c === c)!;
    const errs: string[] = [];
    const check = (what: string, got: ArrayLike<number>, want: ArrayLike<number>) => {
      const e = maxDiffOverScale(got, want);
      assert.ok(e <= TOLERANCE, `${c.name}: ${what} differs from transformers (max |diff| / max |value| = ${e.toExponential(2)})`);
      return e;
    };
    errs.push(`logits ${check('logits', r.finch.logits, r.train('logits')).toExponential(1)}`);
    errs.push(`loss ${check('loss', r.finch.loss, r.train('loss')).toExponential(1)}`);
    let worst = 0;
    for (const [name, g] of r.finch.grads) worst = Math.max(worst, check(`gradient of ${name}`, g, r.train(`grad:${name}`)));
    errs.push(`worst LoRA grad ${worst.toExponential(1)} (${r.finch.grads.size})`);
    if (c.decode) {
      r.finch.decode.forEach((steps, b) => {
        const got = new Float32Array(steps.length * steps[0]!.length);
        steps.forEach((s, k) => got.set(s, k * s.length));
        errs.push(`decode row ${b} ${check(`row ${b}'s prefill and cached decoding logits`, got, r.decode[b]!(`decode.0`)).toExponential(1)}`);
      });
    }
    console.log(`# ${c.name}: ${errs.join(', ')}`);
  });
}
