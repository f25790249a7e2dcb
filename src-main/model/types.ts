// The normalised view of a Hugging Face model folder that the rest of Finch works with.
// Loaders (config.ts, tokenizer.ts) fill these from config.json / tokenizer*.json; graph builders
// (llama.ts) and the data pipeline read only these, never the raw JSON.

export type ModelType = 'llama' | 'mistral' | 'qwen2';

/** Llama 3.1-style RoPE frequency scaling (config.json `rope_scaling` with rope_type "llama3"). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

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
  ropeScaling: Llama3RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Qwen2 has biases on q/k/v projections. */
  attentionBias: boolean;
  /** Bias on o_proj too (Llama's `attention_bias: true` puts one on all four; Qwen2 has none on o_proj). */
  attentionOutputBias: boolean;
  /** Biases on gate/up/down_proj (Llama's `mlp_bias`, false in every released checkpoint). */
  mlpBias: boolean;
  /** Mistral's sliding window (null = full causal attention). */
  slidingWindow: number | null;
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
  /** Renders tokenizer_config.json's chat_template (throws naming the file if there is none). */
  applyChatTemplate(messages: readonly ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string;
  tokenToId(token: string): number | null;
}
