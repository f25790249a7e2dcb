// How each family Finch trains varies the one decoder of model/llama.ts. Everything a family fixes
// is here (its projections, norm and MLP kinds, attention extras); what a checkpoint chooses within
// its family (biases, sliding layers and window, RoPE per layer type, partial rotary, soft-capping,
// the query scale, the activation) is parsed into ModelConfig by config.ts.
//
//               projections (PEFT names)             norm     q/k norm  norms around   embeddings
//   llama       q k v o, gate up down                w        -         pre            -
//   mistral     = llama
//   qwen2       = llama (q/k/v biases)
//   qwen3       = llama                              w        yes       pre            -
//   gemma3_text = llama                              (1 + w)  yes       pre and post   * sqrt(D)
//   phi3        qkv (fused), o, gate_up (fused), down  w      -         pre            -

import { type FUSED_LORA_TARGETS, type LORA_TARGETS, MODEL_FAMILY_NAMES } from '../../src-shared/choices.js';
import type { ModelConfig, ModelType } from './types.js';

/** A projection name, separate (q_proj) or fused (qkv_proj): PEFT's module names. */
export type ProjectionName = (typeof LORA_TARGETS)[number] | (typeof FUSED_LORA_TARGETS)[number];

export interface Family {
  /** The family as users know it ("Qwen3", "Gemma 3": src-shared's MODEL_FAMILY_NAMES, which the app shows). */
  readonly title: string;
  /** The projections of a layer, in the model's order: what LoRA can adapt (PEFT's module names). */
  readonly projections: readonly ProjectionName[];
  /** RMSNorm scales by (1 + w) (Gemma: the stored weight is the offset from 1), else by w. */
  readonly normPlusOne: boolean;
  /** RMSNorm over each head's queries and keys before RoPE (self_attn.q_norm, k_norm). */
  readonly qkNorm: boolean;
  /**
   * Gemma's four norms a layer: the attention output is normed (post_attention_layernorm) before
   * the residual add, the MLP's input (pre_feedforward_layernorm) and output
   * (post_feedforward_layernorm) likewise. Otherwise post_attention_layernorm is the MLP's pre-norm.
   */
  readonly sandwichNorms: boolean;
  /** Token embeddings are multiplied by sqrt(hidden_size) (Gemma). */
  readonly scaledEmbeddings: boolean;
}

const SEPARATE: readonly ProjectionName[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const LLAMA: Family = { title: MODEL_FAMILY_NAMES.llama, projections: SEPARATE, normPlusOne: false, qkNorm: false, sandwichNorms: false, scaledEmbeddings: false };

export const FAMILIES: Record<ModelType, Family> = {
  llama: LLAMA,
  mistral: { ...LLAMA, title: MODEL_FAMILY_NAMES.mistral },
  qwen2: { ...LLAMA, title: MODEL_FAMILY_NAMES.qwen2 },
  qwen3: { ...LLAMA, title: MODEL_FAMILY_NAMES.qwen3, qkNorm: true },
  gemma3_text: { ...LLAMA, title: MODEL_FAMILY_NAMES.gemma3_text, normPlusOne: true, qkNorm: true, sandwichNorms: true, scaledEmbeddings: true },
  phi3: { ...LLAMA, title: MODEL_FAMILY_NAMES.phi3, projections: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] },
};

export const familyOf = (cfg: Pick<ModelConfig, 'modelType'>): Family => FAMILIES[cfg.modelType];

/** The fused projections and the separate ones each stands for, in output order (rows of the fused weight). */
export const FUSED_PARTS: Readonly<Record<'qkv_proj' | 'gate_up_proj', readonly ProjectionName[]>> = {
  qkv_proj: ['q_proj', 'k_proj', 'v_proj'],
  gate_up_proj: ['gate_proj', 'up_proj'],
};
