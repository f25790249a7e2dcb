// config.json (+ generation_config.json) -> ModelConfig, for the Llama family Finch trains:
// llama (Llama 2, Llama 3/3.1/3.2, SmolLM, TinyLlama), mistral, qwen2. Defaults follow
// transformers' LlamaConfig / MistralConfig / Qwen2Config so a sparse config means what it means
// in Hugging Face. Also the RoPE inverse frequencies, including Llama 3.1's scaling.

import * as path from 'node:path';
import { readJsonObject, readJsonObjectAsync } from '../util/json-file.js';
import { resolveModelFolder, resolveModelFolderSync } from './hf-cache.js';
import type { Llama3RopeScaling, ModelConfig, ModelType } from './types.js';

export const SUPPORTED_MODEL_TYPES: readonly ModelType[] = ['llama', 'mistral', 'qwen2'];

export class ModelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelConfigError';
  }
}

/** Per-family defaults for fields a config.json may leave out (transformers' values). */
const FAMILY_DEFAULTS: Record<ModelType, { maxPositionEmbeddings: number; slidingWindow: number | null }> = {
  llama: { maxPositionEmbeddings: 2048, slidingWindow: null },
  mistral: { maxPositionEmbeddings: 4096 * 32, slidingWindow: 4096 },
  qwen2: { maxPositionEmbeddings: 32768, slidingWindow: null },
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
export function parseModelConfig(cfg: Json, gen: Json | null = null, source = 'config.json'): ModelConfig {
  const fail = (msg: string): never => {
    throw new ModelConfigError(`${source}: ${msg}`);
  };
  const mt = cfg.model_type;
  if (typeof mt !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(mt)) {
    fail(
      `model_type ${JSON.stringify(mt)} is not supported; Finch supports ${SUPPORTED_MODEL_TYPES.join(', ')} ` +
        '(Llama 2/3/3.1/3.2, SmolLM, TinyLlama, Mistral, Qwen2/2.5)',
    );
  }
  const modelType = mt as ModelType;
  const int = (key: string, dflt?: number): number => {
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
  const bool = (key: string, dflt: boolean): boolean => {
    const v = cfg[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') fail(`"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };

  const act = cfg.hidden_act ?? cfg.hidden_activation ?? 'silu';
  if (act !== 'silu') fail(`hidden_act ${JSON.stringify(act)} is not supported (Llama-family models use "silu")`);

  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  if (cfg.head_dim == null && hiddenSize % numHeads !== 0) {
    fail(`hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and head_dim is not given`);
  }
  const headDim = int('head_dim', Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0) fail(`head_dim (${headDim}) must be even for rotary embeddings`);

  // transformers v5 stores RoPE settings in rope_parameters (rope_theta inside); v4 in
  // rope_theta + rope_scaling.
  const ropeParams = cfg.rope_parameters as Json | null | undefined;
  let ropeTheta = num('rope_theta', 10000);
  if (ropeParams && typeof ropeParams === 'object' && typeof ropeParams.rope_theta === 'number') {
    ropeTheta = ropeParams.rope_theta;
  }
  const ropeScaling = parseRopeScaling(cfg.rope_scaling ?? ropeParams ?? null, fail);

  // Qwen2 always has q/k/v biases (no o_proj bias); Llama's attention_bias puts a bias on all four.
  const attentionBias = modelType === 'qwen2' ? bool('attention_bias', true) : bool('attention_bias', false);
  const attentionOutputBias = modelType === 'qwen2' ? false : attentionBias;

  let slidingWindow: number | null = null;
  if (modelType === 'mistral') {
    // Mistral 7B v0.1 has 4096; v0.2+ set it to null (full attention).
    slidingWindow = 'sliding_window' in cfg ? (cfg.sliding_window === null ? null : int('sliding_window')) : FAMILY_DEFAULTS.mistral.slidingWindow;
  } else if (modelType === 'qwen2' && bool('use_sliding_window', false)) {
    fail('use_sliding_window: true is not supported (per-layer sliding windows of Qwen2); set it to false');
  }

  const torchDtype = cfg.torch_dtype ?? cfg.dtype ?? 'float32';
  if (typeof torchDtype !== 'string') fail(`torch_dtype must be a string, got ${JSON.stringify(torchDtype)}`);

  return checkModelSizes({
    modelType,
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings: int('max_position_embeddings', FAMILY_DEFAULTS[modelType].maxPositionEmbeddings),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    attentionBias,
    attentionOutputBias,
    mlpBias: modelType === 'llama' ? bool('mlp_bias', false) : false,
    slidingWindow,
    bosTokenId: tokenIdOrNull(gen?.bos_token_id) ?? tokenIdOrNull(cfg.bos_token_id),
    eosTokenIds: unionIds(tokenIds(gen?.eos_token_id), tokenIds(cfg.eos_token_id)),
    torchDtype: torchDtype as string,
  }, fail);
}

function parseRopeScaling(rs: unknown, fail: (m: string) => never): Llama3RopeScaling | null {
  if (rs === null || rs === undefined) return null;
  if (typeof rs !== 'object' || Array.isArray(rs)) fail(`rope_scaling must be an object or null, got ${JSON.stringify(rs)}`);
  const r = rs as Json;
  const kind = r.rope_type ?? r.type ?? 'default';
  if (kind === 'default') return null;
  if (kind !== 'llama3') {
    fail(`rope_scaling type ${JSON.stringify(kind)} is not supported (Finch supports "llama3" and no scaling)`);
  }
  const field = (k: string): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`rope_scaling.${k} must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const s: Llama3RopeScaling = {
    type: 'llama3',
    factor: field('factor'),
    lowFreqFactor: field('low_freq_factor'),
    highFreqFactor: field('high_freq_factor'),
    originalMaxPositionEmbeddings: field('original_max_position_embeddings'),
  };
  if (s.highFreqFactor <= s.lowFreqFactor) fail('rope_scaling.high_freq_factor must be greater than low_freq_factor');
  return s;
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

/**
 * RoPE inverse frequencies [headDim / 2], as transformers computes its `inv_freq` buffer: in
 * float32 (each step rounded with Math.fround, so the values match HF's bit for bit up to the
 * last-ulp differences of powf), with Llama 3.1 scaling when configured:
 *   wavelen = 2π / f;  f' = f            where wavelen < L / high
 *                      f' = f / factor   where wavelen > L / low
 *                      f' = (1 - s) f / factor + s f, s = (L / wavelen - low) / (high - low), between
 * with L = original_max_position_embeddings.
 */
export function ropeInvFreq(cfg: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const f = Math.fround;
  const dim = cfg.headDim;
  const half = dim / 2;
  const out = new Float64Array(half);
  const base = f(cfg.ropeTheta);
  for (let i = 0; i < half; i++) out[i] = f(1 / f(Math.pow(base, f((2 * i) / dim))));
  const rs = cfg.ropeScaling;
  if (!rs) return out;
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
