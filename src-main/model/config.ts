// config.json (+ generation_config.json) -> ModelConfig, for the families Finch trains: llama
// (Llama 2, Llama 3/3.1/3.2, SmolLM, TinyLlama), mistral, qwen2, qwen3, gemma3_text (and the text
// model of a multimodal gemma3 checkpoint), phi3 (Phi-3, Phi-3.5, Phi-4-mini). Defaults follow
// transformers' configuration classes of each family, so a sparse config means what it means in
// Hugging Face; both spellings transformers has written are read (v4: rope_theta + rope_scaling,
// v5: rope_parameters, per layer type for Gemma 3). Also the RoPE inverse frequencies, with Llama
// 3.1, linear and LongRoPE scaling.

import * as path from 'node:path';
import { readJsonObject, readJsonObjectAsync } from '../util/json-file.js';
import { resolveModelFolder, resolveModelFolderSync } from './hf-cache.js';
import type { LayerType, ModelConfig, ModelType, RopeScaling } from './types.js';

export const SUPPORTED_MODEL_TYPES: readonly ModelType[] = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma3_text', 'phi3'];

/** The released models of the supported families, as the "not supported" message names them. */
const SUPPORTED_MODELS = 'Llama 2/3/3.1/3.2, SmolLM, TinyLlama, Mistral, Qwen2/2.5, Qwen3, Gemma 3, Phi-3/3.5, Phi-4-mini';

export class ModelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelConfigError';
  }
}

/** Per-family defaults for fields a config.json may leave out (transformers' values). */
interface FamilyDefaults {
  maxPositionEmbeddings: number;
  /** The window when sliding_window is absent (the family's config class default). */
  slidingWindow: number | null;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  /** Gemma 3's text config gives every field a default: its multimodal checkpoints rely on them. */
  fields?: Record<string, number>;
}
const FAMILY_DEFAULTS: Record<ModelType, FamilyDefaults> = {
  llama: { maxPositionEmbeddings: 2048, slidingWindow: null, rmsNormEps: 1e-6, tieWordEmbeddings: false },
  mistral: { maxPositionEmbeddings: 4096 * 32, slidingWindow: 4096, rmsNormEps: 1e-6, tieWordEmbeddings: false },
  qwen2: { maxPositionEmbeddings: 32768, slidingWindow: 4096, rmsNormEps: 1e-6, tieWordEmbeddings: false },
  qwen3: { maxPositionEmbeddings: 32768, slidingWindow: 4096, rmsNormEps: 1e-6, tieWordEmbeddings: false },
  gemma3_text: {
    maxPositionEmbeddings: 131072, slidingWindow: 4096, rmsNormEps: 1e-6, tieWordEmbeddings: true,
    fields: { vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256 },
  },
  phi3: { maxPositionEmbeddings: 4096, slidingWindow: null, rmsNormEps: 1e-5, tieWordEmbeddings: false },
};

/**
 * The largest value Finch accepts for each size field, far above every released checkpoint
 * (vocabularies reach ~262k, hidden sizes 16k, MLPs 53k, depths 126 layers, heads 128 of 256
 * dimensions): a config beyond them is damaged or hostile, and the sizes derived from it would be
 * allocated before any weight is read. Derived sizes are bounded in checkModelSizes.
 */
export const CONFIG_LIMITS: Readonly<Record<string, number>> = {
  vocab_size: 2 ** 21,
  hidden_size: 2 ** 16,
  intermediate_size: 2 ** 18,
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1024,
  max_position_embeddings: 2 ** 24,
  sliding_window: 2 ** 24,
};

/** Bounds on sizes derived from several fields (elements of one tensor, parameters of the model). */
export const DERIVED_LIMITS = {
  /** Rows of a projection: num_attention_heads × head_dim. */
  projectionRows: 2 ** 17,
  /** Elements of the embedding (vocab_size × hidden_size); Llama 3 405B's has 2.1e9. */
  embeddingElements: 2 ** 32,
  /** Parameters of the whole model (Llama 3 405B has 4.1e11). */
  parameters: 2 ** 41,
} as const;

type Json = Record<string, unknown>;

const readOptions = (required: boolean) => ({ required, missingHint: 'a Hugging Face model folder needs config.json', what: 'a model config', error: (m: string) => new ModelConfigError(m) });

/**
 * Reads `dir/config.json` and `dir/generation_config.json` (optional) into a ModelConfig. `dir`
 * may be a Hugging Face cache folder (models--org--name, or one of its snapshots).
 */
export function loadModelConfig(dir: string): ModelConfig {
  const folder = resolveModelFolderSync(dir).dir;
  const configFile = path.join(folder, 'config.json');
  const cfg = readJsonObject(configFile, readOptions(true))!;
  const gen = readJsonObject(path.join(folder, 'generation_config.json'), readOptions(false));
  return parseModelConfig(cfg, gen, configFile);
}

/** loadModelConfig without blocking the event loop (the server's reads). */
export async function loadModelConfigAsync(dir: string): Promise<ModelConfig> {
  const folder = (await resolveModelFolder(dir)).dir;
  const configFile = path.join(folder, 'config.json');
  const cfg = (await readJsonObjectAsync(configFile, readOptions(true)))!;
  const gen = await readJsonObjectAsync(path.join(folder, 'generation_config.json'), readOptions(false));
  return parseModelConfig(cfg, gen, configFile);
}

/** Parameters of a Llama-family checkpoint from its config (embedding, layers, final norm, untied lm_head). */
export function parameterCount(c: ModelConfig): number {
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  return c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2)
    + c.numLayers * (2 * c.hiddenSize * qDim + 2 * c.hiddenSize * kvDim + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize)
    + c.hiddenSize;
}

/**
 * Throws (through `fail`) when a size derived from several fields is beyond DERIVED_LIMITS: no
 * buffer, plan or estimate is ever sized from such a config. Returns the config.
 */
function checkModelSizes(c: ModelConfig, fail: (msg: string) => never): ModelConfig {
  const rows = c.numHeads * c.headDim;
  if (rows > DERIVED_LIMITS.projectionRows) {
    fail(`num_attention_heads × head_dim = ${rows} is beyond Finch's limit of ${DERIVED_LIMITS.projectionRows}; is the config damaged?`);
  }
  const embedding = c.vocabSize * c.hiddenSize;
  if (embedding > DERIVED_LIMITS.embeddingElements) {
    fail(`vocab_size × hidden_size = ${embedding} elements is beyond Finch's limit of ${DERIVED_LIMITS.embeddingElements} for one embedding table; is the config damaged?`);
  }
  const params = parameterCount(c);
  if (params > DERIVED_LIMITS.parameters) {
    fail(`the config describes ${(params / 1e12).toFixed(1)} trillion parameters, beyond Finch's limit of ${(DERIVED_LIMITS.parameters / 1e12).toFixed(1)} trillion; is the config damaged?`);
  }
  return c;
}

/** The pure part of loadModelConfig; `source` names the file in errors. */
export function parseModelConfig(outer: Json, gen: Json | null = null, source = 'config.json'): ModelConfig {
  const fail = (msg: string): never => {
    throw new ModelConfigError(`${source}: ${msg}`);
  };
  // A multimodal Gemma 3 checkpoint: its text model's settings are in text_config (Gemma3TextConfig's
  // defaults for the rest), token ids and the dtype at the top level.
  let cfg = outer;
  let textModelOf: ModelConfig['textModelOf'] = null;
  if (outer.model_type === 'gemma3') {
    const text = outer.text_config ?? {};
    if (typeof text !== 'object' || text === null || Array.isArray(text)) fail('"text_config" must be an object');
    cfg = { tie_word_embeddings: outer.tie_word_embeddings, torch_dtype: outer.torch_dtype ?? outer.dtype, ...(text as Json), model_type: 'gemma3_text' };
    for (const k of ['bos_token_id', 'eos_token_id']) if (outer[k] !== undefined) cfg[k] = outer[k];
    textModelOf = 'gemma3';
  }
  const mt = cfg.model_type;
  if (typeof mt !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(mt)) {
    fail(`model_type ${JSON.stringify(mt)} is not supported; Finch supports ${SUPPORTED_MODEL_TYPES.join(', ')} and gemma3 (${SUPPORTED_MODELS})`);
  }
  const modelType = mt as ModelType;
  const defaults = FAMILY_DEFAULTS[modelType];
  const int = (key: string, dflt: number | undefined = defaults.fields?.[key]): number => {
    const v = cfg[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) fail(`missing required field "${key}"`);
      return dflt!;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`"${key}" must be a positive integer, got ${typeof v === 'number' ? v : JSON.stringify(v)}`);
    const limit = CONFIG_LIMITS[key];
    if (limit !== undefined && (v as number) > limit) fail(`"${key}" is ${v}, beyond Finch's limit of ${limit} (released models stay far below it); is the config damaged?`);
    return v as number;
  };
  const num = (key: string, dflt: number): number => {
    const v = cfg[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`"${key}" must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const positiveOrNull = (key: string): number | null => {
    const v = cfg[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail(`"${key}" must be a positive number or null, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = cfg[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };

  const hiddenAct = parseActivation(modelType, cfg, fail);
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', defaults.fields?.num_key_value_heads ?? numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  if (cfg.head_dim == null && defaults.fields?.head_dim === undefined && hiddenSize % numHeads !== 0) {
    fail(`hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and head_dim is not given`);
  }
  const headDim = int('head_dim', defaults.fields?.head_dim ?? Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0) fail(`head_dim (${headDim}) must be even for rotary embeddings`);
  const numLayers = int('num_hidden_layers');
  const maxPositionEmbeddings = int('max_position_embeddings', defaults.maxPositionEmbeddings);
  const rope = parseRope(modelType, cfg, { headDim, maxPositionEmbeddings }, fail);

  // Biases: Qwen2 always has q/k/v biases (none on o_proj); attention_bias puts one on all four
  // (Llama, Qwen3, Gemma 3). Phi-3's projections have none.
  let attentionBias = false, attentionOutputBias = false;
  if (modelType === 'qwen2') attentionBias = bool('attention_bias', true);
  else if (modelType !== 'phi3') attentionOutputBias = attentionBias = bool('attention_bias', false);

  const { slidingWindow, layerTypes } = parseLayerTypes(modelType, cfg, numLayers, defaults, int, bool, fail);
  if (modelType === 'gemma3_text' && bool('use_bidirectional_attention', false)) {
    fail('use_bidirectional_attention: true (an embedding model) is not supported; Finch trains causal language models');
  }

  const torchDtype = cfg.torch_dtype ?? cfg.dtype ?? 'float32';
  if (typeof torchDtype !== 'string') fail(`torch_dtype must be a string, got ${JSON.stringify(torchDtype)}`);
  const gemma = modelType === 'gemma3_text';

  return checkModelSizes({
    modelType,
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num('rms_norm_eps', defaults.rmsNormEps),
    ...rope,
    maxPositionEmbeddings,
    tieWordEmbeddings: bool('tie_word_embeddings', defaults.tieWordEmbeddings),
    attentionBias,
    attentionOutputBias,
    mlpBias: modelType === 'llama' ? bool('mlp_bias', false) : false,
    hiddenAct,
    slidingWindow,
    layerTypes,
    queryPreAttnScalar: gemma ? num('query_pre_attn_scalar', 256) : null,
    finalLogitSoftcap: gemma ? positiveOrNull('final_logit_softcapping') : null,
    textModelOf,
    bosTokenId: tokenIdOrNull(gen?.bos_token_id) ?? tokenIdOrNull(cfg.bos_token_id),
    eosTokenIds: unionIds(tokenIds(gen?.eos_token_id), tokenIds(cfg.eos_token_id)),
    torchDtype: torchDtype as string,
  }, fail);
}

/** The MLP activation: SiLU for the Llama family and Phi-3, GELU (tanh approximation) for Gemma. */
function parseActivation(modelType: ModelType, cfg: Json, fail: (m: string) => never): ModelConfig['hiddenAct'] {
  if (modelType === 'gemma3_text') {
    const act = cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh';
    if (act !== 'gelu_pytorch_tanh') fail(`hidden_activation ${JSON.stringify(act)} is not supported (Gemma 3 uses "gelu_pytorch_tanh")`);
    return 'gelu_tanh';
  }
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`hidden_act ${JSON.stringify(act)} is not supported (${modelType} models use "silu")`);
  return 'silu';
}

/**
 * Which layers slide, and the window. Mistral and Phi-3 slide in every layer when sliding_window is
 * set; Qwen2/Qwen3 from max_window_layers on when use_sliding_window is true; Gemma 3 in all but every
 * sliding_window_pattern-th layer. transformers v5 writes the list as layer_types, which wins.
 */
function parseLayerTypes(
  modelType: ModelType, cfg: Json, numLayers: number, defaults: FamilyDefaults,
  int: (key: string, dflt?: number) => number, bool: (key: string, dflt: boolean) => boolean, fail: (m: string) => never,
): { slidingWindow: number | null; layerTypes: LayerType[] } {
  const windowOr = (dflt: number | null) => ('sliding_window' in cfg ? (cfg.sliding_window === null ? null : int('sliding_window')) : dflt);
  let window: number | null = null;
  let types: LayerType[] = Array<LayerType>(numLayers).fill('sliding');
  switch (modelType) {
    case 'llama':
      break;
    case 'mistral': // Mistral 7B v0.1 has 4096; v0.2+ set it to null (full attention).
    case 'phi3': // Phi-3-mini-4k: 2047
      window = windowOr(defaults.slidingWindow);
      break;
    case 'qwen2':
    case 'qwen3': {
      if (!bool('use_sliding_window', false)) break;
      window = windowOr(defaults.slidingWindow);
      const from = int('max_window_layers', 28);
      types = types.map((_, i) => (i >= from ? 'sliding' : 'full'));
      break;
    }
    case 'gemma3_text': {
      window = windowOr(defaults.slidingWindow);
      const pattern = int('sliding_window_pattern', typeof cfg._sliding_window_pattern === 'number' ? cfg._sliding_window_pattern : 6);
      types = types.map((_, i) => ((i + 1) % pattern ? 'sliding' : 'full'));
      break;
    }
  }
  if ((modelType === 'qwen2' || modelType === 'qwen3' || modelType === 'gemma3_text') && cfg.layer_types != null) {
    const list = cfg.layer_types;
    if (!Array.isArray(list) || list.length !== numLayers) fail(`"layer_types" must list ${numLayers} layers (num_hidden_layers), got ${JSON.stringify(list)}`);
    types = (list as unknown[]).map((t, i) => {
      if (t === 'full_attention') return 'full';
      if (t === 'sliding_attention') return 'sliding';
      return fail(`layer_types[${i}] is ${JSON.stringify(t)}; Finch supports "full_attention" and "sliding_attention"`);
    });
  }
  if (window === null) return { slidingWindow: null, layerTypes: Array<LayerType>(numLayers).fill('full') };
  return { slidingWindow: window, layerTypes: types };
}

interface ParsedRope {
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  localRopeTheta: number | null;
  rotaryDim: number;
}

/**
 * RoPE settings of either spelling: v4's rope_theta / rope_scaling (and Gemma's
 * rope_local_base_freq, Phi-3's partial_rotary_factor and original_max_position_embeddings at the
 * top level) or v5's rope_parameters (per layer type for Gemma 3: full_attention, sliding_attention).
 */
function parseRope(modelType: ModelType, cfg: Json, dims: { headDim: number; maxPositionEmbeddings: number }, fail: (m: string) => never): ParsedRope {
  const params = cfg.rope_parameters;
  if (params != null && (typeof params !== 'object' || Array.isArray(params))) fail(`rope_parameters must be an object or null, got ${JSON.stringify(params)}`);
  const rp = (params ?? null) as Json | null;
  const theta = (p: Json | null, dflt: number, where: string): number => {
    const v = p?.rope_theta ?? dflt;
    if (typeof v !== 'number' || !(v > 0)) fail(`${where}rope_theta must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const topTheta = (dflt: number) => theta({ rope_theta: cfg.rope_theta ?? dflt }, dflt, '');

  if (modelType === 'gemma3_text') {
    if (rp && ('full_attention' in rp || 'sliding_attention' in rp)) {
      const full = (rp.full_attention ?? {}) as Json, local = (rp.sliding_attention ?? {}) as Json;
      const localScaling = parseRopeScaling(local, 'rope_parameters.sliding_attention', modelType, dims, fail);
      if (localScaling) fail('rope_parameters.sliding_attention: Finch supports RoPE scaling on the full-attention layers only');
      return {
        ropeTheta: theta(full, 1_000_000, 'rope_parameters.full_attention.'),
        ropeScaling: parseRopeScaling(full, 'rope_parameters.full_attention', modelType, dims, fail),
        localRopeTheta: theta(local, 10_000, 'rope_parameters.sliding_attention.'),
        rotaryDim: dims.headDim,
      };
    }
    const local = cfg.rope_local_base_freq ?? 10_000;
    if (typeof local !== 'number' || !(local > 0)) fail(`rope_local_base_freq must be a positive number, got ${JSON.stringify(local)}`);
    return {
      ropeTheta: topTheta(1_000_000),
      ropeScaling: parseRopeScaling(cfg.rope_scaling ?? null, 'rope_scaling', modelType, dims, fail),
      localRopeTheta: local as number,
      rotaryDim: dims.headDim,
    };
  }

  const ropeTheta = rp && typeof rp.rope_theta === 'number' ? theta(rp, 10000, 'rope_parameters.') : topTheta(10000);
  let rotaryDim = dims.headDim;
  if (modelType === 'phi3') {
    const factor = rp?.partial_rotary_factor ?? cfg.partial_rotary_factor ?? 1;
    if (typeof factor !== 'number' || !(factor > 0 && factor <= 1)) fail(`partial_rotary_factor must be in (0, 1], got ${JSON.stringify(factor)}`);
    rotaryDim = Math.floor(dims.headDim * (factor as number)); // transformers: int(head_dim * partial_rotary_factor)
    if (rotaryDim < 2 || rotaryDim % 2) fail(`partial_rotary_factor ${factor} rotates ${rotaryDim} of head_dim ${dims.headDim}: the rotated part must be even`);
  }
  const scaling = cfg.rope_scaling ?? rp ?? null;
  const withOriginal = scaling && modelType === 'phi3' && typeof scaling === 'object'
    ? { original_max_position_embeddings: cfg.original_max_position_embeddings, ...(scaling as Json) }
    : scaling;
  return { ropeTheta, ropeScaling: parseRopeScaling(withOriginal, 'rope_scaling', modelType, { ...dims, headDim: rotaryDim }, fail), localRopeTheta: null, rotaryDim };
}

function parseRopeScaling(rs: unknown, where: string, modelType: ModelType, dims: { headDim: number; maxPositionEmbeddings: number }, fail: (m: string) => never): RopeScaling | null {
  if (rs === null || rs === undefined) return null;
  if (typeof rs !== 'object' || Array.isArray(rs)) fail(`${where} must be an object or null, got ${JSON.stringify(rs)}`);
  const r = rs as Json;
  let kind = r.rope_type ?? r.type ?? 'default';
  // transformers' Phi3Config reads the older names of LongRoPE ("su", "yarn") as "longrope".
  if (modelType === 'phi3' && (kind === 'su' || kind === 'yarn')) kind = 'longrope';
  if (kind === 'default') return null;
  const field = (k: string): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`${where}.${k} must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (kind === 'linear') return { type: 'linear', factor: field('factor') };
  if (kind === 'llama3' && modelType !== 'phi3') {
    const s: RopeScaling = {
      type: 'llama3',
      factor: field('factor'),
      lowFreqFactor: field('low_freq_factor'),
      highFreqFactor: field('high_freq_factor'),
      originalMaxPositionEmbeddings: field('original_max_position_embeddings'),
    };
    if (s.highFreqFactor <= s.lowFreqFactor) fail(`${where}.high_freq_factor must be greater than low_freq_factor`);
    return s;
  }
  if (kind === 'longrope' && modelType === 'phi3') {
    const half = dims.headDim / 2;
    const factors = (k: string): number[] => {
      const v = r[k];
      if (!Array.isArray(v) || v.length !== half || !v.every((x) => typeof x === 'number' && x > 0 && Number.isFinite(x))) {
        fail(`${where}.${k} must list ${half} positive numbers (half the rotated dimensions), got ${JSON.stringify(v)?.slice(0, 80)}`);
      }
      return v as number[];
    };
    const original = r.original_max_position_embeddings ?? dims.maxPositionEmbeddings;
    if (typeof original !== 'number' || !Number.isInteger(original) || original <= 0) fail(`original_max_position_embeddings must be a positive integer, got ${JSON.stringify(original)}`);
    // transformers: factor = max / original when not given; attention factor sqrt(1 + ln f / ln original).
    const factor = r.factor == null ? dims.maxPositionEmbeddings / (original as number) : field('factor');
    const attentionFactor = r.attention_factor == null ? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original as number))) : field('attention_factor');
    return { type: 'longrope', shortFactor: factors('short_factor'), longFactor: factors('long_factor'), originalMaxPositionEmbeddings: original as number, attentionFactor };
  }
  const supported = modelType === 'phi3' ? '"longrope", "linear"' : '"llama3", "linear"';
  return fail(`${where} type ${JSON.stringify(kind)} is not supported (Finch supports ${supported} and no scaling)`);
}

function tokenIdOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
}

function tokenIds(v: unknown): number[] {
  if (Array.isArray(v)) return v.filter((x): x is number => tokenIdOrNull(x) !== null);
  const one = tokenIdOrNull(v);
  return one === null ? [] : [one];
}

function unionIds(...lists: number[][]): number[] {
  const out: number[] = [];
  for (const l of lists) for (const id of l) if (!out.includes(id)) out.push(id);
  return out;
}

/** What ropeInvFreq reads; rotaryDim and localRopeTheta default to a full rotation and one RoPE for every layer. */
export type RopeConfig = Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'> & Partial<Pick<ModelConfig, 'rotaryDim' | 'localRopeTheta'>>;

/**
 * RoPE inverse frequencies [rotaryDim / 2], as transformers computes its `inv_freq` buffer: in
 * float32 (each step rounded with Math.fround, so the values match HF's bit for bit up to the
 * last-ulp differences of powf), with the configured scaling:
 *   llama3    wavelen = 2π / f;  f' = f            where wavelen < L / high
 *                                f' = f / factor   where wavelen > L / low
 *                                f' = (1 - s) f / factor + s f, s = (L / wavelen - low) / (high - low), between
 *             with L = original_max_position_embeddings;
 *   linear    f' = f / factor;
 *   longrope  f' = 1 / (factor_i * base^(2i/d)), the short factors for graphs of at most L
 *             positions and the long ones beyond (`maxPositions`; llama.cpp decides by its context
 *             size the same way; transformers by each batch's longest position).
 * `layer` 'sliding' gives a model with a local RoPE base (Gemma 3) its sliding layers' frequencies.
 */
export function ropeInvFreq(cfg: RopeConfig, o: { layer?: LayerType; maxPositions?: number } = {}): Float64Array {
  const f = Math.fround;
  const dim = cfg.rotaryDim ?? cfg.headDim;
  const half = dim / 2;
  const local = o.layer === 'sliding' && cfg.localRopeTheta != null;
  const base = f(local ? cfg.localRopeTheta! : cfg.ropeTheta);
  const rs = local ? null : cfg.ropeScaling;
  const out = new Float64Array(half);
  if (rs?.type === 'longrope') {
    const factors = o.maxPositions !== undefined && o.maxPositions > rs.originalMaxPositionEmbeddings ? rs.longFactor : rs.shortFactor;
    for (let i = 0; i < half; i++) out[i] = f(1 / f(f(factors[i]!) * f(Math.pow(base, f((2 * i) / dim)))));
    return out;
  }
  for (let i = 0; i < half; i++) out[i] = f(1 / f(Math.pow(base, f((2 * i) / dim))));
  if (!rs) return out;
  if (rs.type === 'linear') {
    for (let i = 0; i < half; i++) out[i] = f(out[i]! / f(rs.factor));
    return out;
  }
  const factor = f(rs.factor);
  const L = rs.originalMaxPositionEmbeddings;
  const lowWavelen = L / rs.lowFreqFactor;
  const highWavelen = L / rs.highFreqFactor;
  const twoPi = f(2 * Math.PI);
  for (let i = 0; i < half; i++) {
    const inv = out[i]!;
    // torch evaluates `c / t` as reciprocal(t) * c.
    const wavelen = f(f(1 / inv) * twoPi);
    const scaled = wavelen > f(lowWavelen) ? f(inv / factor) : inv;
    const isMedium = !(wavelen < f(highWavelen)) && !(wavelen > f(lowWavelen));
    if (!isMedium) {
      out[i] = scaled;
      continue;
    }
    const s = f(f(f(f(1 / wavelen) * f(L)) - f(rs.lowFreqFactor)) / f(rs.highFreqFactor - rs.lowFreqFactor));
    out[i] = f(f(f(f(1 - s) * scaled) / factor) + f(s * scaled));
  }
  return out;
}

/** The factor on cos and sin of a layer's RoPE (LongRoPE's attention factor; 1 otherwise). */
export function ropeAttentionScale(cfg: Pick<ModelConfig, 'ropeScaling' | 'localRopeTheta'>, layer: LayerType = 'full'): number {
  const rs = layer === 'sliding' && cfg.localRopeTheta != null ? null : cfg.ropeScaling;
  return rs?.type === 'longrope' ? rs.attentionFactor : 1;
}

/**
 * The fields of a plain Llama layout beyond the shapes (SiLU, full attention in every layer, one
 * RoPE turning the whole head, no soft-capping): for configs built in code (bench presets, tests).
 */
export function llamaLayout(numLayers: number, headDim: number): Pick<ModelConfig,
  'localRopeTheta' | 'rotaryDim' | 'hiddenAct' | 'layerTypes' | 'queryPreAttnScalar' | 'finalLogitSoftcap' | 'textModelOf'> {
  return {
    localRopeTheta: null, rotaryDim: headDim, hiddenAct: 'silu', layerTypes: Array<LayerType>(numLayers).fill('full'),
    queryPreAttnScalar: null, finalLogitSoftcap: null, textModelOf: null,
  };
}
