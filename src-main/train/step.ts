// The compiled LoRA training step: forward, loss, backward for the LoRA matrices and the AdamW
// update in one graph, so one session.run is one optimizer step. With gradient accumulation the
// step splits into a gradient graph (run per micro-batch) and an update graph (run once).
//
// Graph I/O names: LoRA matrices by PEFT name; moments "m:<name>", "v:<name>"; scalars "lr",
// "step"; outputs "loss", "grad_norm", "new:<name>", "new_m:<name>", "new_v:<name>", "grad:<name>".

import { grad } from '../engine/autodiff/grad.js';
import { Graph, type Tensor } from '../engine/graph/graph.js';
import { adamw } from '../engine/optim/adamw.js';
import { FrozenWeights, buildTrainForward } from '../model/llama.js';
import { type LoraParam, type LoraSpec, loraParams } from '../model/lora.js';

export interface OptimizerConfig {
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip (null = none). */
  maxGradNorm: number | null;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = { weightDecay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, maxGradNorm: 1.0 };

export interface StepShape {
  batch: number;
  seq: number;
  /** Null only for evaluating the base model (buildLossGraph). */
  lora: LoraSpec | null;
  checkpointLayers?: boolean;
  /** With checkpointLayers: outer segments of this many layers (two-level checkpointing). */
  checkpointGroup?: number;
  lossChunks?: number;
  /** The graph takes "inputs_embeds" (rows gathered on the host) instead of holding the table. */
  hostEmbeddings?: boolean;
  /** Activations larger than twice this are computed in chunks (llama.ts chunkPlan); Infinity = never. */
  chunkBytes?: number;
}

export interface StepGraphs {
  params: LoraParam[];
  /** Forward + backward + update (gradient accumulation off). */
  fused: Graph | null;
  /** Forward + backward only, outputs "grad:<name>" (accumulation on). */
  grads: Graph | null;
  /** AdamW over summed gradients fed as "grad:<name>" (accumulation on). */
  update: Graph | null;
  dropoutModules: number;
}

function appendUpdate(g: Graph, params: LoraParam[], p: Tensor[], grads: Tensor[], opt: OptimizerConfig) {
  const m = params.map((q) => g.input(`m:${q.name}`, 'float32', q.shape));
  const v = params.map((q) => g.input(`v:${q.name}`, 'float32', q.shape));
  const lr = g.input('lr', 'float32', []);
  const step = g.input('step', 'float32', []);
  const r = adamw(p, grads, m, v, { lr, step, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay, maxGradNorm: opt.maxGradNorm });
  g.output(r.gradNorm, 'grad_norm');
  params.forEach((q, i) => {
    g.output(r.params[i]!, `new:${q.name}`);
    g.output(r.m[i]!, `new_m:${q.name}`);
    g.output(r.v[i]!, `new_v:${q.name}`);
  });
}

export function buildStepGraphs(fw: FrozenWeights, invFreq: Float64Array, shape: StepShape, opt: OptimizerConfig, gradAccum: number): StepGraphs {
  if (!shape.lora) throw new Error('buildStepGraphs: a training step needs a LoRA spec');
  const params = loraParams(fw.cfg, shape.lora);
  const forward = (g: Graph) => {
    const tg = buildTrainForward(g, fw, invFreq, { ...shape, dropout: true });
    const p = params.map((q) => tg.loraInputs.get(q.name)!);
    return { tg, p, grads: grad(tg.loss, p) };
  };
  if (gradAccum <= 1) {
    const g = new Graph('train_step');
    const { tg, p, grads } = forward(g);
    g.output(tg.loss, 'loss');
    appendUpdate(g, params, p, grads, opt);
    return { params, fused: g, grads: null, update: null, dropoutModules: tg.dropoutModules };
  }
  const gg = new Graph('train_grads');
  const { tg, grads } = forward(gg);
  gg.output(tg.loss, 'loss');
  params.forEach((q, i) => gg.output(grads[i]!, `grad:${q.name}`));
  const ug = new Graph('train_update');
  const p = params.map((q) => ug.input(q.name, 'float32', q.shape));
  const summed = params.map((q) => ug.input(`grad:${q.name}`, 'float32', q.shape));
  appendUpdate(ug, params, p, summed, opt);
  return { params, fused: null, grads: gg, update: ug, dropoutModules: tg.dropoutModules };
}

/** Forward + mean loss only (evaluation): same inputs as the step graph minus optimizer state. */
export function buildLossGraph(fw: FrozenWeights, invFreq: Float64Array, shape: StepShape): Graph {
  const g = new Graph('eval_loss');
  const tg = buildTrainForward(g, fw, invFreq, { ...shape, dropout: false });
  g.output(tg.loss, 'loss');
  return g;
}
