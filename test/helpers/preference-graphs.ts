// The graphs of the preference objectives as a run builds them (symbolic length, dropout,
// checkpointing; DPO against the base and against a frozen reference adapter, ORPO; steps and
// evaluations), for the tests that check every graph Finch builds: WebGPU placement
// (test/model/llama-webgpu.test.ts) and the op table of docs/gpu.md (test/model/graph-ops.test.ts).
import type { Graph } from '../../src-main/engine/graph/graph.js';
import type { LoadedModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, loraParams } from '../../src-main/model/lora.js';
import type { Objective } from '../../src-main/train/objective.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep, buildLossGraph } from '../../src-main/train/step.js';

/** Named graphs for `pairs` pairs of `seq` tokens at most (4-bit: host embeddings, as QLoRA runs). */
export function preferenceGraphs(m: LoadedModel, quantize: boolean, pairs: number, seq: number): [string, Graph][] {
  const lora = DEFAULT_LORA;
  const shape = { batch: 2 * pairs, seq, lora, hostEmbeddings: quantize, dynamicSeq: true, checkpointLayers: true, checkpointGroup: 2 };
  const reference = new Map(loraParams(m.config, lora).map((p) => [p.name, new Float32Array(p.shape[0] * p.shape[1]).fill(0.01)]));
  const dpo: Objective = { method: 'dpo', beta: 0.1, labelSmoothing: 0.1, reference: 'base' };
  const orpo: Objective = { method: 'orpo', lambda: 0.1 };
  return [
    ['DPO step', buildFusedStep(m.weights, m.invFreq, { ...shape, objective: dpo }, DEFAULT_OPTIMIZER).step],
    ['DPO gradient graph, reference adapter', buildAccumulatingStep(m.weights, m.invFreq, { ...shape, objective: { ...dpo, reference: 'adapter' } }, DEFAULT_OPTIMIZER, reference).grads],
    ['DPO eval', buildLossGraph(m.weights, m.invFreq, { ...shape, objective: dpo })],
    ['ORPO step', buildFusedStep(m.weights, m.invFreq, { ...shape, objective: orpo }, DEFAULT_OPTIMIZER).step],
    ['ORPO eval', buildLossGraph(m.weights, m.invFreq, { ...shape, objective: orpo })],
  ];
}
