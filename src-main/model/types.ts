// The normalised view of a Hugging Face model folder that the rest of Finch works with.
// Loaders (config.ts, tokenizer.ts) fill these from config.json / tokenizer*.json; graph builders
// (llama.ts) and the data pipeline read only these, never the raw JSON.

/**
 * The architectures Finch builds (config.json `model_type`; a multimodal `gemma3` checkpoint is read
 * as its text model, `gemma3_text`). model/family.ts says how each differs from Llama.
 */
export type ModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma3_text' | 'phi3';

/** Llama 3.1-style RoPE frequency scaling (config.json `rope_scaling` with rope_type "llama3"). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Linear RoPE scaling: every frequency divided by `factor` (Gemma 3 4B+ on its full-attention layers). */
export interface LinearRopeScaling {
  type: 'linear';
  factor: number;
}

/**
 * LongRoPE (Phi-3 128k, Phi-4-mini): each frequency divided by a per-frequency factor, the short
 * ones for sequences within originalMaxPositionEmbeddings and the long ones beyond, and cos/sin
 * multiplied by attentionFactor.
 */
export interface LongRopeScaling {
  type: 'longrope';
  shortFactor: number[];
  longFactor: number[];
  originalMaxPositionEmbeddings: number;
  attentionFactor: number;
}

export type RopeScaling = Llama3RopeScaling | LinearRopeScaling | LongRopeScaling;

/** A layer's attention: causal over the whole sequence, or over the last `slidingWindow` positions. */
export type LayerType = 'full' | 'sliding';

export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** The RoPE scaling of full-attention layers (of every layer unless localRopeTheta is set). */
  ropeScaling: RopeScaling | null;
  /** Gemma 3: the RoPE base of sliding-window layers (unscaled); null: every layer uses ropeTheta and ropeScaling. */
  localRopeTheta: number | null;
  /** The leading dimensions of each head that rotate: headDim, or less with a partial rotary factor (Phi-4-mini). */
  rotaryDim: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Qwen2 has biases on q/k/v projections. */
  attentionBias: boolean;
  /** Bias on o_proj too (Llama's `attention_bias: true` puts one on all four; Qwen2 has none on o_proj). */
  attentionOutputBias: boolean;
  /** Biases on gate/up/down_proj (Llama's `mlp_bias`, false in every released checkpoint). */
  mlpBias: boolean;
  /** The MLP's activation: SiLU, or GELU with the tanh approximation (Gemma's gelu_pytorch_tanh). */
  hiddenAct: 'silu' | 'gelu_tanh';
  /** The window of 'sliding' layers (a query sees itself and the window - 1 positions before it); null = full attention everywhere. */
  slidingWindow: number | null;
  /** Each layer's attention ('sliding' only where slidingWindow is set). */
  layerTypes: readonly LayerType[];
  /** Gemma: attention scores are scaled by queryPreAttnScalar^-0.5 instead of headDim^-0.5. */
  queryPreAttnScalar: number | null;
  /**
   * Gemma: cap * tanh(x / cap) on the final logits. (Gemma 3 configs also carry Gemma 2's
   * attn_logit_softcapping, which transformers' Gemma 3 does not apply; nor does Finch.)
   */
  finalLogitSoftcap: number | null;
  /**
   * 'gemma3': the text model of a multimodal Gemma 3 checkpoint, whose weights sit under its
   * language model (model/load.ts) and whose LoRA modules PEFT names model.language_model.*.
   */
  textModelOf: 'gemma3' | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The checkpoint's storage dtype ("bfloat16", "float16", "float32"). */
  torchDtype: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * How chat turns become a prompt: 'model' renders the model's own chat template (required),
 * 'fallback' Finch's plain one (data/template.ts), 'auto' the model's if it has one, else the fallback.
 */
export type TemplateChoice = 'auto' | 'model' | 'fallback';

/** What Finch needs from a tokenizer; implemented over tokenizer.json by model/tokenizer.ts. */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** End-of-sequence ids (generation stops on any of them); the first is appended after completions. */
  readonly eosIds: readonly number[];
  readonly padId: number | null;
  /** True when tokenizer.json's post-processor / add_bos_token adds BOS in encode(addSpecialTokens). */
  readonly addsBos: boolean;
  readonly hasChatTemplate: boolean;
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  /**
   * Renders tokenizer_config.json's chat_template (throws naming the file if there is none).
   * `variables` are the template's own switches, as transformers passes extra keyword arguments
   * (Qwen3's enable_thinking).
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts?: { addGenerationPrompt?: boolean; variables?: Readonly<Record<string, unknown>> }): string;
  tokenToId(token: string): number | null;
}
