// Llama-family checkpoints in llama.cpp's terms: the architecture metadata, the tensor names, and
// the rotary layout of the Q/K projections.
//
// llama.cpp runs Llama and Mistral as architecture "llama", whose RoPE rotates adjacent pairs
// (x[2i], x[2i+1]); Hugging Face's Llama rotates halves (x[i], x[i + d/2]). The two agree when
// each head's rows of q_proj / k_proj (and their biases, and a LoRA B's rows) are reordered from
// (2, d/2) to (d/2, 2), which is what `permuteRotary` does. Qwen2 ("qwen2") uses the half
// rotation ("NEOX" in llama.cpp) and keeps HF's layout.
//
// Llama 3.1's RoPE scaling becomes a tensor `rope_freqs.weight` [head_dim / 2] of per-frequency
// divisors (the unscaled inverse frequency over the scaled one). Tied heads write no
// `output.weight`: llama.cpp then uses token_embd for the output projection too.

import { ropeInvFreq } from '../config.js';
import type { LoraTarget } from '../lora.js';
import type { ModelConfig } from '../types.js';
import { f32, u32, type GgufValue } from './format.js';

export type GgufArchitecture = 'llama' | 'qwen2';

export function ggufArchitecture(cfg: ModelConfig): GgufArchitecture {
  return cfg.modelType === 'qwen2' ? 'qwen2' : 'llama';
}

/** `<arch>.*` hyperparameters. */
export function architectureMetadata(cfg: ModelConfig): Map<string, GgufValue> {
  const arch = ggufArchitecture(cfg);
  const md = new Map<string, GgufValue>();
  md.set(`${arch}.vocab_size`, u32(cfg.vocabSize));
  md.set(`${arch}.context_length`, u32(cfg.maxPositionEmbeddings));
  md.set(`${arch}.embedding_length`, u32(cfg.hiddenSize));
  md.set(`${arch}.block_count`, u32(cfg.numLayers));
  md.set(`${arch}.feed_forward_length`, u32(cfg.intermediateSize));
  md.set(`${arch}.rope.dimension_count`, u32(cfg.headDim));
  md.set(`${arch}.rope.freq_base`, f32(cfg.ropeTheta));
  md.set(`${arch}.attention.head_count`, u32(cfg.numHeads));
  md.set(`${arch}.attention.head_count_kv`, u32(cfg.numKvHeads));
  md.set(`${arch}.attention.layer_norm_rms_epsilon`, f32(cfg.rmsNormEps));
  if (cfg.headDim * cfg.numHeads !== cfg.hiddenSize) {
    md.set(`${arch}.attention.key_length`, u32(cfg.headDim));
    md.set(`${arch}.attention.value_length`, u32(cfg.headDim));
  }
  return md;
}

/** One checkpoint tensor as llama.cpp names it; `rotaryHeads` > 0: permute rows per head. */
export interface MappedTensor {
  hfName: string;
  ggufName: string;
  shape: number[];
  rotaryHeads: number;
}

const PROJECTION_NAMES: Record<LoraTarget, string> = {
  q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output',
  gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down',
};

/** The GGUF name of a projection weight in layer `layer` ("blk.3.attn_q.weight"). */
export const projectionName = (layer: number, target: LoraTarget): string => `blk.${layer}.${PROJECTION_NAMES[target]}.weight`;

/** Heads to permute for a projection's output rows (0: none). */
export function rotaryHeads(cfg: ModelConfig, target: LoraTarget): number {
  if (ggufArchitecture(cfg) !== 'llama') return 0;
  return target === 'q_proj' ? cfg.numHeads : target === 'k_proj' ? cfg.numKvHeads : 0;
}

/** Every tensor of the checkpoint, in llama.cpp's order, with its GGUF name. */
export function tensorMap(cfg: ModelConfig): MappedTensor[] {
  const { hiddenSize: d, numHeads: h, numKvHeads: kv, headDim: hd, intermediateSize: f, vocabSize: v } = cfg;
  const out: MappedTensor[] = [{ hfName: 'model.embed_tokens.weight', ggufName: 'token_embd.weight', shape: [v, d], rotaryHeads: 0 }];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const add = (hfName: string, ggufName: string, shape: number[], heads = 0) => out.push({ hfName, ggufName, shape, rotaryHeads: heads });
    add(`${p}.input_layernorm.weight`, `blk.${l}.attn_norm.weight`, [d]);
    const attn: [LoraTarget, number][] = [['q_proj', h * hd], ['k_proj', kv * hd], ['v_proj', kv * hd]];
    for (const [t, rows] of attn) {
      add(`${p}.self_attn.${t}.weight`, projectionName(l, t), [rows, d], rotaryHeads(cfg, t));
      if (cfg.attentionBias) add(`${p}.self_attn.${t}.bias`, `blk.${l}.${PROJECTION_NAMES[t]}.bias`, [rows], rotaryHeads(cfg, t));
    }
    add(`${p}.self_attn.o_proj.weight`, projectionName(l, 'o_proj'), [d, h * hd]);
    if (cfg.attentionOutputBias) add(`${p}.self_attn.o_proj.bias`, `blk.${l}.attn_output.bias`, [d]);
    add(`${p}.post_attention_layernorm.weight`, `blk.${l}.ffn_norm.weight`, [d]);
    const mlp: [LoraTarget, number, number][] = [['gate_proj', f, d], ['up_proj', f, d], ['down_proj', d, f]];
    for (const [t, rows, cols] of mlp) {
      add(`${p}.mlp.${t}.weight`, projectionName(l, t), [rows, cols]);
      if (cfg.mlpBias) add(`${p}.mlp.${t}.bias`, `blk.${l}.${PROJECTION_NAMES[t]}.bias`, [rows]);
    }
  }
  out.push({ hfName: 'model.norm.weight', ggufName: 'output_norm.weight', shape: [d], rotaryHeads: 0 });
  if (!cfg.tieWordEmbeddings) out.push({ hfName: 'lm_head.weight', ggufName: 'output.weight', shape: [v, d], rotaryHeads: 0 });
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

/** Llama 3.1 scaling as llama.cpp's per-frequency divisors, or null without scaling. */
export function ropeFreqFactors(cfg: ModelConfig): Float32Array | null {
  if (!cfg.ropeScaling) return null;
  const plain = ropeInvFreq({ ...cfg, ropeScaling: null });
  const scaled = ropeInvFreq(cfg);
  return Float32Array.from(plain, (f, i) => f / scaled[i]!);
}
