// Opening a Hugging Face model folder as one object: config, tokenizer, RoPE frequencies, and the
// frozen weights streamed from safetensors (quantized to 4 bits on the way in for QLoRA).

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ropeInvFreq, loadModelConfig } from './config.js';
import { FrozenWeights, type RawWeightSlice } from './weights/frozen-weights.js';
import { Checkpoint, type SafetensorsDtype } from './safetensors.js';
import { loadTokenizer, type HfTextTokenizer } from './tokenizer.js';
import type { ModelConfig } from './types.js';
import { checkWeightsMatchConfig } from './validate.js';
import { resolveModelFolderSync } from './hf-cache.js';

const RAW_DTYPES: Partial<Record<SafetensorsDtype, RawWeightSlice['dtype']>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export interface LoadedModel {
  dir: string;
  config: ModelConfig;
  tokenizer: HfTextTokenizer;
  weights: FrozenWeights;
  invFreq: Float64Array;
  close(): void;
}

export class ModelFolderError extends Error {
  override name = 'ModelFolderError';
}

export interface LoadOptions {
  /** Store frozen projections (and an untied lm_head) in 4 bits (QLoRA). */
  quantize?: boolean;
  blockSize?: number;
  /** Read embedding rows on demand (host embeddings) instead of loading the table. */
  rowReads?: boolean;
  /**
   * Float weights go from the checkpoint to the session's model file, never all held in JS
   * (FrozenWeightsOptions.streamFloats). Default true; false keeps every float tensor read.
   */
  streamFloats?: boolean;
}

/** Opens the model in `path`: a model folder, or a Hugging Face cache folder (model/hf-cache.ts). */
export function loadModel(path: string, opts: LoadOptions = {}): LoadedModel {
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new ModelFolderError(`model folder not found: ${path} (expected a Hugging Face folder with config.json, *.safetensors and tokenizer.json)`);
  }
  const dir = resolveModelFolderSync(path).dir;
  for (const f of ['config.json', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) throw new ModelFolderError(`${join(dir, f)} is missing: a Hugging Face model folder needs config.json, *.safetensors and tokenizer.json`);
  }
  const config = loadModelConfig(dir);
  const tokenizer = loadTokenizer(dir);
  const ckpt = Checkpoint.open(dir);
  checkWeightsMatchConfig(config, ckpt, join(dir, 'config.json'), tokenizer.vocabSize);
  const weights = new FrozenWeights(config, (name) => {
    if (!ckpt.has(name)) throw new ModelFolderError(`${ckpt.source}: tensor "${name}" is missing (is this a complete ${config.modelType} checkpoint?)`);
    return ckpt.readTensor(name);
  }, {
    quantize: opts.quantize,
    blockSize: opts.blockSize,
    rows: opts.rowReads ? (name, row) => ckpt.readRow(name, row) : null,
    streamFloats: opts.streamFloats ?? true,
    rawSlice: (name) => {
      if (!ckpt.has(name)) return null;
      const t = ckpt.info(name);
      const dtype = RAW_DTYPES[t.dtype];
      return dtype ? { path: t.file, offset: t.begin, length: t.end - t.begin, dtype } : null;
    },
  });
  return { dir, config, tokenizer, weights, invFreq: ropeInvFreq(config), close: () => ckpt.close() };
}
