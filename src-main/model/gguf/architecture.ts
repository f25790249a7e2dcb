// Checkpoints in llama.cpp's terms: the architecture and its metadata, the tensor names, and what
// must change on the way (facts from llama.cpp's converter and model loaders, src/models/*.cpp):
//
//   llama, mistral -> "llama": RoPE rotates adjacent pairs (x[2i], x[2i+1]) where Hugging Face
//     rotates halves (x[i], x[i + d/2]). The two agree when each head's rows of q_proj / k_proj (and
//     their biases, and a LoRA B's rows) are reordered from (2, d/2) to (d/2, 2) (`permuteRotary`).
//     Llama 3.1's RoPE scaling becomes a tensor `rope_freqs.weight` [head_dim / 2] of per-frequency
//     divisors (the unscaled inverse frequency over the scaled one).
//   qwen2, qwen3, gemma3, phi3: the half rotation ("NEOX" in llama.cpp), HF's layout kept; qwen3 and
//     gemma3 add attn_q_norm / attn_k_norm.
//   gemma3: llama.cpp's RMSNorm multiplies by its weight, so every norm weight is stored as 1 + w;
//     four norms a layer (attn_norm, post_attention_norm, ffn_norm, post_ffw_norm); sliding layers
//     repeat with a period (attention.sliding_window_pattern) and have their own RoPE base
//     (rope.freq_base_swa); the query scale is not read but derived (1/sqrt(head_dim), or
//     1/sqrt(hidden/heads) for the 62-layer 27B), so a query_pre_attn_scalar that differs from that is
//     folded into the q_norm weight (the queries are normed before RoPE, which is linear).
//   phi3: fused attn_qkv and ffn_up (gate and up, in that order: llama.cpp's SwiGLU halves);
//     LongRoPE as rope_factors_long / rope_factors_short with rope.scaling.attn_factor, chosen by the
//     context size against rope.scaling.original_context_length; llama.cpp turns Phi-3's sliding
//     window off.
// Tied heads write no `output.weight`: llama.cpp then uses token_embd for the output projection too.

import { ropeInvFreq } from '../config.js';
import { familyOf } from '../family.js';
import { type LoraTarget, modulePath } from '../lora.js';
import type { ModelConfig, ModelType } from '../types.js';
import { expectedWeights } from '../validate.js';
import { f32, GgufError, str, u32, type GgufValue } from './format.js';

export type GgufArchitecture = 'llama' | 'qwen2' | 'qwen3' | 'gemma3' | 'phi3';

const ARCHITECTURES: Record<ModelType, GgufArchitecture> = {
  llama: 'llama', mistral: 'llama', qwen2: 'qwen2', qwen3: 'qwen3', gemma3_text: 'gemma3', phi3: 'phi3',
};

export const ggufArchitecture = (cfg: ModelConfig): GgufArchitecture => ARCHITECTURES[cfg.modelType];

/**
 * The period of the sliding layers as llama.cpp's gemma3 describes them (layer i slides when
 * i % period < period - 1), or null when no period gives this model's layer types.
 */
function slidingPeriod(cfg: ModelConfig): number | null {
  const L = cfg.numLayers;
  for (let period = 1; period <= L + 1; period++) {
    if (cfg.layerTypes.every((t, i) => (t === 'sliding') === (i % period < period - 1))) return period;
  }
  return null;
}

/** The attention scale llama.cpp's gemma3 uses: derived from the shapes, not read from the file. */
const gemmaLlamaCppScale = (cfg: ModelConfig): number =>
  cfg.numLayers === 62 ? 1 / Math.sqrt(Math.floor(cfg.hiddenSize / cfg.numHeads)) : 1 / Math.sqrt(cfg.headDim);

/** `<arch>.*` hyperparameters; throws GgufError for what llama.cpp cannot run as the model does. */
export function architectureMetadata(cfg: ModelConfig): Map<string, GgufValue> {
  const arch = ggufArchitecture(cfg);
  const md = new Map<string, GgufValue>();
  md.set(`${arch}.vocab_size`, u32(cfg.vocabSize));
  md.set(`${arch}.context_length`, u32(cfg.maxPositionEmbeddings));
  md.set(`${arch}.embedding_length`, u32(cfg.hiddenSize));
  md.set(`${arch}.block_count`, u32(cfg.numLayers));
  md.set(`${arch}.feed_forward_length`, u32(cfg.intermediateSize));
  md.set(`${arch}.rope.dimension_count`, u32(cfg.rotaryDim));
  md.set(`${arch}.rope.freq_base`, f32(cfg.ropeTheta));
  md.set(`${arch}.attention.head_count`, u32(cfg.numHeads));
  md.set(`${arch}.attention.head_count_kv`, u32(cfg.numKvHeads));
  md.set(`${arch}.attention.layer_norm_rms_epsilon`, f32(cfg.rmsNormEps));
  if (cfg.headDim * cfg.numHeads !== cfg.hiddenSize) {
    md.set(`${arch}.attention.key_length`, u32(cfg.headDim));
    md.set(`${arch}.attention.value_length`, u32(cfg.headDim));
  }
  const rs = cfg.ropeScaling;
  if (rs?.type === 'linear') {
    md.set(`${arch}.rope.scaling.type`, str('linear'));
    md.set(`${arch}.rope.scaling.factor`, f32(rs.factor));
  } else if (rs?.type === 'llama3' && arch !== 'llama') {
    throw new GgufError(`${cfg.modelType}: Llama 3.1 RoPE scaling is exported for the llama architecture only`);
  } else if (rs?.type === 'longrope') {
    md.set(`${arch}.rope.scaling.attn_factor`, f32(rs.attentionFactor));
    md.set(`${arch}.rope.scaling.original_context_length`, u32(rs.originalMaxPositionEmbeddings));
  }
  if (arch === 'gemma3') {
    if (cfg.finalLogitSoftcap !== null) md.set(`${arch}.final_logit_softcapping`, f32(cfg.finalLogitSoftcap));
    if (cfg.slidingWindow !== null) {
      const period = slidingPeriod(cfg);
      if (period === null) throw new GgufError(`layer_types ${JSON.stringify(cfg.layerTypes)}: llama.cpp's gemma3 needs sliding layers that repeat with a period (layer i slides when i % period < period - 1)`);
      md.set(`${arch}.attention.sliding_window`, u32(cfg.slidingWindow));
      md.set(`${arch}.attention.sliding_window_pattern`, u32(period));
      if (cfg.localRopeTheta !== null) md.set(`${arch}.rope.freq_base_swa`, f32(cfg.localRopeTheta));
    }
  }
  if (arch === 'phi3') md.set(`${arch}.attention.sliding_window`, u32(cfg.slidingWindow ?? 0)); // as llama.cpp's converter writes it
  return md;
}

/** What the GGUF file runs differently from Finch and transformers (shown after an export). */
export function ggufNotes(cfg: ModelConfig): string[] {
  const notes: string[] = [];
  if (cfg.slidingWindow !== null && cfg.layerTypes.includes('sliding') && ggufArchitecture(cfg) !== 'gemma3') {
    notes.push(`llama.cpp runs ${familyOf(cfg).title} with full attention in every layer: its sliding window of ${cfg.slidingWindow} tokens applies only beyond that many tokens of context`);
  }
  if (cfg.ropeScaling?.type === 'longrope') {
    notes.push(`LongRoPE: llama.cpp uses the long factors when its context is longer than ${cfg.ropeScaling.originalMaxPositionEmbeddings} tokens, the short ones otherwise (transformers decides per batch)`);
  }
  return notes;
}

/**
 * One checkpoint tensor as llama.cpp names it, and the changes on the way: `rotaryHeads` > 0
 * permutes rows per head; then w becomes (w + add) * scale (Gemma's norms, its folded query scale).
 */
export interface MappedTensor {
  hfName: string;
  ggufName: string;
  shape: number[];
  rotaryHeads: number;
  add: number;
  scale: number;
}

const PROJECTION_NAMES: Record<LoraTarget, string> = {
  q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', qkv_proj: 'attn_qkv', o_proj: 'attn_output',
  gate_proj: 'ffn_gate', up_proj: 'ffn_up', gate_up_proj: 'ffn_up', down_proj: 'ffn_down',
};

/** The GGUF name of a projection weight in layer `layer` ("blk.3.attn_q.weight"). */
export const projectionName = (layer: number, target: LoraTarget): string => `blk.${layer}.${PROJECTION_NAMES[target]}.weight`;

/** Heads to permute for a projection's output rows (0: none). */
export function rotaryHeads(cfg: ModelConfig, target: LoraTarget): number {
  if (ggufArchitecture(cfg) !== 'llama') return 0;
  return target === 'q_proj' ? cfg.numHeads : target === 'k_proj' ? cfg.numKvHeads : 0;
}

/** The projections that make queries, keys and values (before o_proj in llama.cpp's order). */
const QKV: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'qkv_proj'];

/** The llama.cpp name of a layer's norm, by its HF module name. */
function normName(cfg: ModelConfig, module: string): string {
  const sandwich = familyOf(cfg).sandwichNorms;
  switch (module) {
    case 'input_layernorm': return 'attn_norm';
    case 'post_attention_layernorm': return sandwich ? 'post_attention_norm' : 'ffn_norm';
    case 'pre_feedforward_layernorm': return 'ffn_norm';
    case 'post_feedforward_layernorm': return 'post_ffw_norm';
    case 'self_attn.q_norm': return 'attn_q_norm';
    case 'self_attn.k_norm': return 'attn_k_norm';
  }
  throw new GgufError(`no llama.cpp name for the norm ${module}`);
}

/** Every tensor of the checkpoint (model/validate.ts's list), in llama.cpp's order, with its GGUF name. */
export function tensorMap(cfg: ModelConfig): MappedTensor[] {
  const plusOne = familyOf(cfg).normPlusOne ? 1 : 0;
  const qScale = cfg.queryPreAttnScalar === null ? 1 : cfg.queryPreAttnScalar ** -0.5 / gemmaLlamaCppScale(cfg);
  const byName = new Map(expectedWeights(cfg).map((w) => [w.name, w.shape]));
  const out: MappedTensor[] = [];
  const add = (hfName: string, ggufName: string, o: Partial<Pick<MappedTensor, 'rotaryHeads' | 'add' | 'scale'>> = {}) => {
    const shape = byName.get(hfName);
    if (!shape) throw new GgufError(`${hfName} is not a tensor of a ${cfg.modelType} checkpoint`);
    out.push({ hfName, ggufName, shape, rotaryHeads: o.rotaryHeads ?? 0, add: o.add ?? 0, scale: o.scale ?? 1 });
  };
  add('model.embed_tokens.weight', 'token_embd.weight');
  const fam = familyOf(cfg);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const norm = (module: string, scale = 1) => add(`${p}.${module}.weight`, `blk.${l}.${normName(cfg, module)}.weight`, { add: plusOne, scale });
    const proj = (target: LoraTarget, bias: boolean) => {
      const heads = rotaryHeads(cfg, target);
      add(`${modulePath(l, target)}.weight`, projectionName(l, target), { rotaryHeads: heads });
      if (bias) add(`${modulePath(l, target)}.bias`, `blk.${l}.${PROJECTION_NAMES[target]}.bias`, { rotaryHeads: heads });
    };
    norm('input_layernorm');
    for (const t of fam.projections.filter((t) => QKV.includes(t))) proj(t, cfg.attentionBias);
    proj('o_proj', cfg.attentionOutputBias);
    if (fam.qkNorm) {
      norm('self_attn.q_norm', qScale);
      norm('self_attn.k_norm');
    }
    norm('post_attention_layernorm');
    if (fam.sandwichNorms) norm('pre_feedforward_layernorm');
    for (const t of fam.projections.filter((t) => !QKV.includes(t) && t !== 'o_proj')) proj(t, cfg.mlpBias);
    if (fam.sandwichNorms) norm('post_feedforward_layernorm');
  }
  add('model.norm.weight', 'output_norm.weight', { add: plusOne });
  if (!cfg.tieWordEmbeddings) add('lm_head.weight', 'output.weight');
  return out;
}

/**
 * Reorders the rows of a [heads * headDim, cols] weight (cols = 1 for a bias) from HF's half
 * rotation to llama.cpp's pair rotation: within each head, new row 2i + j = old row j * headDim/2 + i.
 */
export function permuteRotary(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const hd = rows / heads, half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * cols, dst = (h * hd + 2 * i + j) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** Llama 3.1 scaling as llama.cpp's per-frequency divisors, or null without it. */
export function ropeFreqFactors(cfg: ModelConfig): Float32Array | null {
  if (cfg.ropeScaling?.type !== 'llama3') return null;
  const plain = ropeInvFreq({ ...cfg, ropeScaling: null });
  const scaled = ropeInvFreq(cfg);
  return Float32Array.from(plain, (f, i) => f / scaled[i]!);
}

/** LongRoPE's per-frequency factors as llama.cpp's rope_factors_long / rope_factors_short tensors, or null. */
export function longRopeFactors(cfg: ModelConfig): { long: Float32Array; short: Float32Array } | null {
  const rs = cfg.ropeScaling;
  return rs?.type === 'longrope' ? { long: Float32Array.from(rs.longFactor), short: Float32Array.from(rs.shortFactor) } : null;
}
