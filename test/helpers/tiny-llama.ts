// Tiny Llama-family configs and random weights for graph tests (in memory; checkpoints on disk
// come from src-main/synthetic/checkpoint.ts).
import { mulberry32 } from '../../src-main/util/random.js';
import type { ModelConfig } from '../../src-main/model/types.js';

export function tinyConfig(over: Partial<ModelConfig>): ModelConfig {
  return {
    modelType: 'llama', vocabSize: 96, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2,
    headDim: 16, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, maxPositionEmbeddings: 128, tieWordEmbeddings: false,
    attentionBias: false, attentionOutputBias: false, mlpBias: false, slidingWindow: null, bosTokenId: 1, eosTokenIds: [2], torchDtype: 'float32', ...over,
  };
}

export function randomWeights(cfg: ModelConfig, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const w = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[], std: number, mean = 0) =>
    w.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => mean + std * normal()) });
  const D = cfg.hiddenSize, hd = cfg.headDim, I = cfg.intermediateSize;
  add('model.embed_tokens.weight', [cfg.vocabSize, D], 0.5);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.self_attn.q_proj.weight`, [cfg.numHeads * hd, D], 0.15);
    add(`${p}.self_attn.k_proj.weight`, [cfg.numKvHeads * hd, D], 0.15);
    add(`${p}.self_attn.v_proj.weight`, [cfg.numKvHeads * hd, D], 0.15);
    add(`${p}.self_attn.o_proj.weight`, [D, cfg.numHeads * hd], 0.15);
    if (cfg.attentionBias) {
      add(`${p}.self_attn.q_proj.bias`, [cfg.numHeads * hd], 0.1);
      add(`${p}.self_attn.k_proj.bias`, [cfg.numKvHeads * hd], 0.1);
      add(`${p}.self_attn.v_proj.bias`, [cfg.numKvHeads * hd], 0.1);
    }
    add(`${p}.mlp.gate_proj.weight`, [I, D], 0.15);
    add(`${p}.mlp.up_proj.weight`, [I, D], 0.15);
    add(`${p}.mlp.down_proj.weight`, [D, I], 0.15);
    add(`${p}.input_layernorm.weight`, [D], 0.1, 1);
    add(`${p}.post_attention_layernorm.weight`, [D], 0.1, 1);
  }
  add('model.norm.weight', [D], 0.1, 1);
  if (!cfg.tieWordEmbeddings) add('lm_head.weight', [cfg.vocabSize, D], 0.15);
  return w;
}

export const invFreqOf = (cfg: ModelConfig) => Float64Array.from({ length: cfg.headDim / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim));

