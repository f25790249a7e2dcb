// The graphs the trainer and the generator build for a model (the shapes llama-webgpu.test.ts
// uses for the demo model), and the tiny models of the other families as frozen weights: what
// graph-ops.test.ts collects ops from and families-webgpu.test.ts runs on WebGPU.
import { Graph } from '../../src-main/engine/graph/graph.js';
import { ropeInvFreq } from '../../src-main/model/config.js';
import { buildGeneration } from '../../src-main/model/graphs.js';
import { DEFAULT_LORA, resolveLora } from '../../src-main/model/lora.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep, buildLossGraph } from '../../src-main/train/step.js';
import { randomWeights } from './tiny-llama.js';

/** Random frozen weights of `cfg` (4-bit in blocks of 32 when `quantize`) and its RoPE frequencies. */
export function tinyModel(cfg: ModelConfig, quantize: boolean, seed = 1): { fw: FrozenWeights; invFreq: Float64Array } {
  const w = randomWeights(cfg, seed);
  return { fw: new FrozenWeights(cfg, (n) => w.get(n)!.data, { quantize, blockSize: 32 }), invFreq: ropeInvFreq(cfg) };
}

/** The generation graph for batch 2, with its outputs named as the generator reads them. */
export function generationOf(fw: FrozenWeights, invFreq: Float64Array, maxPositions: number): Graph {
  const g = new Graph('generate');
  const gen = buildGeneration(g, fw, invFreq, maxPositions, resolveLora(fw.cfg, DEFAULT_LORA), 2);
  g.output(gen.logits, 'logits');
  gen.presentK.forEach((t, l) => g.output(t, `present_k.${l}`));
  gen.presentV.forEach((t, l) => g.output(t, `present_v.${l}`));
  return g;
}

/**
 * Every graph of a run on these weights: the fused step, the gradient and update graphs of
 * gradient accumulation, a checkpointed step chunked at `chunkBytes`, a row-chunked loss, the eval
 * loss, and prefill/decode. (4-bit runs gather embeddings on the host, as the plan does.)
 */
export function allGraphs(fw: FrozenWeights, invFreq: Float64Array, seq: number, chunkBytes: number): [string, Graph][] {
  const lora = resolveLora(fw.cfg, DEFAULT_LORA);
  const shape = { batch: 2, seq, lora, hostEmbeddings: fw.quantize };
  const pair = buildAccumulatingStep(fw, invFreq, shape, DEFAULT_OPTIMIZER);
  return [
    ['fused step', buildFusedStep(fw, invFreq, shape, DEFAULT_OPTIMIZER).step],
    ['gradient graph', pair.grads],
    ['update graph', pair.update],
    ['checkpointed + chunked step', buildFusedStep(fw, invFreq, { ...shape, checkpointLayers: true, checkpointGroup: 2, chunkBytes }, DEFAULT_OPTIMIZER).step],
    ['row-chunked loss step', buildFusedStep(fw, invFreq, { ...shape, lossChunks: 2 }, DEFAULT_OPTIMIZER).step],
    ['eval loss', buildLossGraph(fw, invFreq, shape)],
    ['prefill/decode', generationOf(fw, invFreq, 96)],
  ];
}
