// Small random-initialised checkpoints in real Hugging Face layout, for tests and for pretraining
// the bundled demo model: config.json, model.safetensors (or 2 shards + index), tokenizer.json,
// tokenizer_config.json (with a chat template), generation_config.json.
// Weight names, shapes ([out, in] for linears) and init (normal std 0.02, norms 1) follow
// transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelConfig } from '../model/config.js';
import { expectedWeights } from '../model/validate.js';
import { writeFileAtomic, writeSafetensors, writeShardedSafetensors, tensorBytes, type SafetensorsDtype, type TensorToWrite } from '../model/safetensors.js';
import { builtinCorpus } from './corpus.js';
import { Rng } from '../util/random.js';
import { CHAT_TEMPLATES, trainTokenizer, type ChatTemplateName, type TokenizerFamily, type TrainedTokenizer } from './tokenizers.js';
import type { Llama3RopeScaling, ModelConfig, ModelType } from '../model/types.js';

export type StorageDtype = 'float32' | 'bfloat16' | 'float16';

export interface SyntheticCheckpointOptions {
  modelType?: ModelType; // default 'llama'
  /** Default: llama -> 'llama3', mistral -> 'sentencepiece', qwen2 -> 'qwen2'. */
  tokenizer?: TokenizerFamily;
  /**
   * A template name, raw Jinja text, or null for a base model without one. Default by family:
   * llama3 -> 'llama3', qwen2 -> 'chatml', sentencepiece -> 'mistral' for mistral, else 'llama2'.
   */
  chatTemplate?: ChatTemplateName | (string & {}) | null;
  /**
   * Tokenizer size to train to; the model's vocab_size is the trained tokenizer's size. Default 512.
   * Training stops early when the corpus has no pairs left: the built-in corpus reaches about 1.7k
   * byte-level / 2.8k SentencePiece tokens; pass `corpus` for larger vocabularies.
   */
  vocabSize?: number;
  /** Embedding rows when more than the tokenizer's ids (vocabularies padded, or benchmark shapes). */
  modelVocabSize?: number;
  hiddenSize?: number; // 64
  numLayers?: number; // 2
  numHeads?: number; // 4
  numKvHeads?: number; // numHeads (fewer = grouped-query attention)
  headDim?: number; // hiddenSize / numHeads; written to config.json only when different
  intermediateSize?: number; // 2 * hiddenSize
  tieWordEmbeddings?: boolean; // false
  /** Default 500000 for the llama3 tokenizer family (as Llama 3), else 10000. */
  ropeTheta?: number;
  /** 'llama3' = Llama 3.1's values (factor 8, low 1, high 4, original 8192). */
  ropeScaling?: 'llama3' | Llama3RopeScaling | null;
  maxPositionEmbeddings?: number; // 2048
  /** Mistral only; default null (full attention, as Mistral v0.2+). */
  slidingWindow?: number | null;
  /** q/k/v biases; default true for qwen2, false otherwise. */
  attentionBias?: boolean;
  rmsNormEps?: number; // 1e-5
  dtype?: StorageDtype; // 'float32'
  /** Two shards + model.safetensors.index.json instead of one model.safetensors. */
  sharded?: boolean;
  seed?: number; // 0
  initStd?: number; // 0.02 (HF initializer_range)
  /**
   * Std of bias init. HF initialises biases to zero; the default 0.02 keeps them non-zero so a
   * graph that forgets a bias fails its comparison with PyTorch. Pass 0 for HF's init.
   */
  biasStd?: number;
  /** Std of noise added to norm weights (HF: exactly 1). Non-zero makes norm-weight bugs visible. */
  normJitter?: number; // 0
  /** Tokenizer training text; default builtinCorpus(). */
  corpus?: string;
}

export interface SyntheticCheckpoint {
  dir: string;
  config: ModelConfig;
  tokenizer: TrainedTokenizer;
  /** Weight files written (relative to dir). */
  weightFiles: string[];
  /** Parameter count. */
  numParams: number;
}

const TORCH_DTYPE_TO_ST: Record<StorageDtype, SafetensorsDtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

const ARCHITECTURES: Record<ModelType, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
  phi3: 'Phi3ForCausalLM',
};

export const LLAMA3_ROPE_SCALING: Llama3RopeScaling = {
  type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192,
};

/** One weight to generate: HF name, [out, in]-style shape, and how to initialise it. */
interface WeightSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'ones' | 'bias';
}

/** The HF state-dict names and shapes of a Llama-family causal LM (model/validate.ts), each with its init. */
export function llamaWeightSpecs(cfg: ModelConfig): WeightSpec[] {
  return expectedWeights(cfg).map(({ name, shape }) => ({
    name, shape, init: name.endsWith('.bias') ? 'bias' : shape.length === 1 ? 'ones' : 'normal', // 1-D, not a bias: a norm
  }));
}

/** Writes a synthetic checkpoint folder at `dir` (created if needed) and returns its config. */
export function writeSyntheticCheckpoint(dir: string, opts: SyntheticCheckpointOptions = {}): SyntheticCheckpoint {
  const modelType = opts.modelType ?? 'llama';
  const family: TokenizerFamily =
    opts.tokenizer ?? (modelType === 'mistral' ? 'sentencepiece' : modelType === 'qwen2' ? 'qwen2' : 'llama3');
  const tok = trainTokenizer(family, opts.corpus ?? builtinCorpus(), opts.vocabSize ?? 512);
  const hidden = opts.hiddenSize ?? 64;
  const numHeads = opts.numHeads ?? 4;
  const numKvHeads = opts.numKvHeads ?? numHeads;
  const headDim = opts.headDim ?? hidden / numHeads;
  if (!Number.isInteger(headDim)) throw new Error(`synthetic checkpoint: hiddenSize ${hidden} is not divisible by numHeads ${numHeads}`);
  const dtype = opts.dtype ?? 'float32';
  const ropeScaling = opts.ropeScaling === 'llama3' ? LLAMA3_ROPE_SCALING : (opts.ropeScaling ?? null);
  const attentionBias = opts.attentionBias ?? modelType === 'qwen2';
  const id = (s: string | null) => (s === null ? null : tok.ids.get(s)!);
  const eosIds = [tok.eos, ...tok.extraEos].map((s) => id(s)!);

  const config: Record<string, unknown> = {
    architectures: [ARCHITECTURES[modelType]],
    model_type: modelType,
    vocab_size: Math.max(tok.vocabSize, opts.modelVocabSize ?? 0),
    hidden_size: hidden,
    intermediate_size: opts.intermediateSize ?? 2 * hidden,
    num_hidden_layers: opts.numLayers ?? 2,
    num_attention_heads: numHeads,
    num_key_value_heads: numKvHeads,
    ...(headDim !== hidden / numHeads ? { head_dim: headDim } : {}),
    hidden_act: 'silu',
    max_position_embeddings: opts.maxPositionEmbeddings ?? 2048,
    initializer_range: opts.initStd ?? 0.02,
    rms_norm_eps: opts.rmsNormEps ?? 1e-5,
    rope_theta: opts.ropeTheta ?? (family === 'llama3' ? 500000 : 10000),
    rope_scaling: ropeScaling && {
      rope_type: 'llama3',
      factor: ropeScaling.factor,
      low_freq_factor: ropeScaling.lowFreqFactor,
      high_freq_factor: ropeScaling.highFreqFactor,
      original_max_position_embeddings: ropeScaling.originalMaxPositionEmbeddings,
    },
    tie_word_embeddings: opts.tieWordEmbeddings ?? false,
    bos_token_id: id(tok.bos ?? (family === 'qwen2' ? '<|endoftext|>' : null)),
    eos_token_id: eosIds.length === 1 ? eosIds[0] : eosIds,
    torch_dtype: dtype,
    use_cache: true,
  };
  if (modelType === 'llama') Object.assign(config, { attention_bias: attentionBias, mlp_bias: false });
  if (modelType === 'mistral') config.sliding_window = opts.slidingWindow ?? null;
  if (modelType === 'qwen2') Object.assign(config, { use_sliding_window: false, sliding_window: null, max_window_layers: config.num_hidden_layers });

  fs.mkdirSync(dir, { recursive: true });
  writeJson(path.join(dir, 'config.json'), config);
  writeJson(path.join(dir, 'generation_config.json'), {
    bos_token_id: config.bos_token_id,
    eos_token_id: eosIds,
    ...(tok.pad ? { pad_token_id: id(tok.pad) } : {}),
  });
  writeTokenizer(dir, tok, modelType, opts.chatTemplate);
  const cfg = loadModelConfig(dir);

  // Weights: each tensor generated from its own name-seeded stream only while it is written.
  const seed = opts.seed ?? 0;
  const std = opts.initStd ?? 0.02;
  const biasStd = opts.biasStd ?? 0.02;
  const normJitter = opts.normJitter ?? 0;
  const stDtype = TORCH_DTYPE_TO_ST[dtype];
  const tensors: TensorToWrite[] = llamaWeightSpecs(cfg).map((s) => ({
    name: s.name,
    dtype: stDtype,
    shape: s.shape,
    data: () => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      const rng = Rng.forName(seed, s.name);
      const scale = s.init === 'normal' ? std : s.init === 'bias' ? biasStd : normJitter;
      const base = s.init === 'ones' ? 1 : 0;
      if (scale !== 0) for (let i = 0; i < n; i++) out[i] = base + scale * rng.normal();
      else out.fill(base);
      return out;
    },
  }));
  const numParams = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  for (const stale of fs.readdirSync(dir).filter((n) => /^model.*\.safetensors(\.index\.json)?$/.test(n))) {
    fs.rmSync(path.join(dir, stale));
  }
  const metadata = { format: 'pt' };
  let weightFiles: string[];
  if (opts.sharded) {
    // Split in HF's module order at the half-way byte, as save_pretrained's max_shard_size would.
    const total = tensorBytes(tensors);
    let acc = 0;
    let cut = tensors.length - 1;
    for (let i = 0; i < tensors.length; i++) {
      acc += tensorBytes([tensors[i]!]);
      if (acc >= total / 2) {
        cut = Math.min(i + 1, tensors.length - 1);
        break;
      }
    }
    weightFiles = writeShardedSafetensors(dir, [tensors.slice(0, cut), tensors.slice(cut)], { metadata });
    weightFiles.push('model.safetensors.index.json');
  } else {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors, metadata);
    weightFiles = ['model.safetensors'];
  }
  return { dir, config: cfg, tokenizer: tok, weightFiles, numParams };
}

/** Writes tokenizer.json and tokenizer_config.json (with the chat template) of a trained tokenizer into `dir`. */
export function writeTokenizer(dir: string, tok: TrainedTokenizer, modelType: ModelType, chatTemplate: SyntheticCheckpointOptions['chatTemplate']): void {
  fs.mkdirSync(dir, { recursive: true });
  writeJson(path.join(dir, 'tokenizer.json'), tok.tokenizerJson);
  writeJson(path.join(dir, 'tokenizer_config.json'), tokenizerConfig(tok, modelType, chatTemplate));
}

function tokenizerConfig(tok: TrainedTokenizer, modelType: ModelType, choice: SyntheticCheckpointOptions['chatTemplate']) {
  const dflt: ChatTemplateName =
    tok.family === 'llama3' ? 'llama3' : tok.family === 'qwen2' ? 'chatml' : modelType === 'mistral' ? 'mistral' : 'llama2';
  const named = choice === undefined ? dflt : choice;
  const template = named === null ? undefined : ((CHAT_TEMPLATES as Record<string, string>)[named] ?? named);
  const added: Record<string, unknown> = {};
  const json = tok.tokenizerJson as { added_tokens: { id: number; content: string; special: boolean }[] };
  for (const t of json.added_tokens) {
    added[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: t.special };
  }
  const base = {
    added_tokens_decoder: added,
    bos_token: tok.bos,
    eos_token: tok.eos,
    pad_token: tok.pad,
    unk_token: tok.unk,
    clean_up_tokenization_spaces: false,
    model_max_length: 131072,
    ...(template !== undefined ? { chat_template: template } : {}),
  };
  switch (tok.family) {
    case 'llama3':
      return { ...base, tokenizer_class: 'PreTrainedTokenizerFast', model_input_names: ['input_ids', 'attention_mask'] };
    case 'qwen2':
      return { ...base, tokenizer_class: 'Qwen2Tokenizer', errors: 'replace', split_special_tokens: false };
    case 'sentencepiece':
      return { ...base, tokenizer_class: 'LlamaTokenizer', add_bos_token: true, add_eos_token: false, legacy: false, spaces_between_special_tokens: false };
    case 'gemma':
      return { ...base, tokenizer_class: 'GemmaTokenizer', add_bos_token: true, add_eos_token: false, spaces_between_special_tokens: false };
  }
}

function writeJson(file: string, v: unknown): void {
  writeFileAtomic(file, JSON.stringify(v, null, 2) + '\n');
}
