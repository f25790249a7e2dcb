// Tiny configs of every family and random weights for graph tests (in memory; checkpoints on disk
// come from src-main/synthetic/checkpoint.ts, and transformers-written ones from
// test/helpers/hf-checkpoints.ts).
import { llamaLayout } from '../../src-main/model/config.js';
import { familyOf } from '../../src-main/model/family.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { expectedWeights } from '../../src-main/model/validate.js';
import { mulberry32 } from '../../src-main/util/random.js';

export function tinyConfig(over: Partial<ModelConfig>): ModelConfig {
  const numLayers = over.numLayers ?? 2, headDim = over.headDim ?? 16;
  return {
    modelType: 'llama', vocabSize: 96, hiddenSize: 64, intermediateSize: 96, numLayers, numHeads: 4, numKvHeads: 2,
    headDim, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, maxPositionEmbeddings: 128, tieWordEmbeddings: false,
    attentionBias: false, attentionOutputBias: false, mlpBias: false, slidingWindow: null, bosTokenId: 1, eosTokenIds: [2], torchDtype: 'float32',
    ...llamaLayout(numLayers, headDim), ...over,
  };
}

/**
 * Normal weights by HF name for every tensor the config implies (model/validate.ts): projections
 * std 0.15, biases 0.1, embeddings 0.5; norms 1 + 0.1 noise, or 0.1 noise around 0 where the
 * family scales by (1 + w) (Gemma), so a graph that forgets a norm weight differs.
 */
export function randomWeights(cfg: ModelConfig, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const normMean = familyOf(cfg).normPlusOne ? 0 : 1;
  const w = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { name, shape } of expectedWeights(cfg)) {
    const norm = shape.length === 1 && !name.endsWith('.bias');
    const [std, mean] = name === 'model.embed_tokens.weight' ? [0.5, 0] : norm ? [0.1, normMean] : name.endsWith('.bias') ? [0.1, 0] : [0.15, 0];
    w.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => mean + std * normal()) });
  }
  return w;
}

export const invFreqOf = (cfg: ModelConfig) => Float64Array.from({ length: cfg.headDim / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim));

/**
 * A tiny config of each family beyond the Llama layout, with what it adds switched on: Qwen3's q/k
 * norms and explicit head_dim; Gemma 3's sliding layers (window 4) between full ones, local RoPE
 * base, linear scaling, query scale, GELU, logit capping and tied head; Phi-3's fused projections,
 * partial rotary, LongRoPE and sliding window.
 */
export function tinyFamilyConfigs(): Record<'qwen3' | 'gemma3' | 'phi3', ModelConfig> {
  return {
    qwen3: tinyConfig({ modelType: 'qwen3', headDim: 32 }),
    gemma3: tinyConfig({
      modelType: 'gemma3_text', numLayers: 3, hiddenAct: 'gelu_tanh', slidingWindow: 4, layerTypes: ['sliding', 'full', 'sliding'], localRopeTheta: 1000,
      ropeScaling: { type: 'linear', factor: 4 }, queryPreAttnScalar: 24, finalLogitSoftcap: 3.5, tieWordEmbeddings: true,
    }),
    phi3: tinyConfig({
      modelType: 'phi3', rotaryDim: 8, tieWordEmbeddings: true, slidingWindow: 5, layerTypes: ['sliding', 'sliding'],
      ropeScaling: { type: 'longrope', shortFactor: [1, 1.5, 2, 3], longFactor: [1.2, 2.5, 4, 9], originalMaxPositionEmbeddings: 4, attentionFactor: 1.2 },
    }),
  };
}
