// Model shapes for `finch bench train` presets.
import { llamaLayout } from '../model/config.js';
import type { ModelConfig } from '../model/types.js';
import type { GraphPlan } from '../train/plan.js';

export interface TrainPreset {
  name: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  batch: number;
  seq: number;
  rank: number;
  alpha: number;
}

export const PRESETS: Record<string, TrainPreset> = {
  small: { name: 'small', hidden: 512, layers: 8, heads: 8, kvHeads: 4, intermediate: 1376, vocab: 32000, batch: 4, seq: 256, rank: 16, alpha: 32 },
  tiny: { name: 'tiny', hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 344, vocab: 1024, batch: 2, seq: 64, rank: 8, alpha: 16 },
  // Llama 3.2 1B's shapes (untied head here), float32: gpu-check runs it on GPU providers only.
  'llama3.2-1b': { name: 'llama3.2-1b', hidden: 2048, layers: 16, heads: 32, kvHeads: 8, intermediate: 8192, vocab: 128256, batch: 1, seq: 512, rank: 16, alpha: 32 },
  'llama3-8b': { name: 'llama3-8b', hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocab: 128256, batch: 1, seq: 2048, rank: 16, alpha: 32 },
};

export function presetConfig(p: TrainPreset): ModelConfig {
  return {
    modelType: 'llama', vocabSize: p.vocab, hiddenSize: p.hidden, intermediateSize: p.intermediate, numLayers: p.layers,
    numHeads: p.heads, numKvHeads: p.kvHeads, headDim: p.hidden / p.heads, rmsNormEps: 1e-5, ropeTheta: 500000,
    ropeScaling: null, maxPositionEmbeddings: 8192, tieWordEmbeddings: false, attentionBias: false, attentionOutputBias: false,
    mlpBias: false, slidingWindow: null, bosTokenId: 1, eosTokenIds: [2], torchDtype: 'float32', ...llamaLayout(p.layers, p.hidden / p.heads),
  };
}

/** A plan as `finch bench train --json` prints it: the plan, and the LoRA rank and target count under the keys they had before the plan held the LoRA spec. */
export function planJson(p: GraphPlan): GraphPlan & { rank: number; targets: number } {
  return { ...p, rank: p.lora.rank, targets: p.lora.targets.length };
}
