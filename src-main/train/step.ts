// The compiled LoRA training step: forward, loss, backward for the LoRA matrices and the AdamW
// update in one graph, so one session.run is one optimizer step. With gradient accumulation the
// step splits into a gradient graph (run per micro-batch) and an update graph (run once).
//
// Graph I/O names: LoRA matrices by PEFT name; moments "m:<name>", "v:<name>"; scalars "lr",
// "step"; outputs "loss", "grad_norm", "new:<name>", "new_m:<name>", "new_v:<name>", "grad:<name>",
// and a preference objective's "rewards_chosen", "rewards_rejected" (train/objective.ts).

import { TRAIN_DEFAULTS } from '../../src-shared/run-config.js';
import { grad } from '../engine/autodiff/grad.js';
import { Graph, type Tensor } from '../engine/graph/graph.js';
import { ADAMW_DEFAULTS, adamw } from '../engine/optim/adamw.js';
import * as F from '../engine/graph/ops.js';
import type { TrainGraphOptions } from '../model/graphs.js';
import { type Objective, SFT, buildObjective, outputObjective } from './objective.js';
import { FrozenWeights } from '../model/weights/frozen-weights.js';
import { type LoraParam, loraParams } from '../model/lora.js';

export interface OptimizerConfig {
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip (null = none). */
  maxGradNorm: number | null;
}

/** AdamW with the run configuration's default weight decay and clipping (benches and tests; the trainer takes both from its config). */
export const DEFAULT_OPTIMIZER: OptimizerConfig = { ...ADAMW_DEFAULTS, weightDecay: TRAIN_DEFAULTS.weightDecay, maxGradNorm: TRAIN_DEFAULTS.maxGradNorm };

/**
 * The shape of a step: the training graph's options (model/graphs.ts) less the two the step decides
 * itself (dropout: on in the step, off in evaluation; trainBase: never), and its objective (default
 * SFT). A run passes its GraphPlan (train/plan.ts); tests pass the options they exercise.
 */
export type StepShape = Omit<TrainGraphOptions, 'dropout' | 'trainBase'> & { objective?: Objective };

/** The compiled step of one LoRA layout: either one fused graph, or gradient + update graphs. */
export type StepGraphs = FusedStep | AccumulatingStep;

interface StepCommon {
  params: LoraParam[];
  /** LoRA modules with dropout: the length of the "dropout_seeds" input (0 = no such input). */
  dropoutModules: number;
}

/** Forward + backward + update in one graph (gradient accumulation off). */
export interface FusedStep extends StepCommon {
  kind: 'fused';
  step: Graph;
}

/** Gradient accumulation on: "grads" (forward + backward, outputs "grad:<name>") runs per micro-batch, "update" (AdamW over gradients fed as "grad:<name>") once per step. */
export interface AccumulatingStep extends StepCommon {
  kind: 'accumulating';
  grads: Graph;
  update: Graph;
}

function appendUpdate(g: Graph, params: LoraParam[], p: Tensor[], grads: Tensor[], opt: OptimizerConfig) {
  const m = params.map((q) => g.input(`m:${q.name}`, 'float32', q.shape));
  const v = params.map((q) => g.input(`v:${q.name}`, 'float32', q.shape));
  const lr = g.input('lr', 'float32', []);
  const step = g.input('step', 'float32', []);
  // Scoped "optimizer/...": a profile tells the update's nodes from the forward's and the backward's (bench/step-phases.ts).
  const r = g.scope('optimizer', () => adamw(p, grads, m, v, { lr, step, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay, maxGradNorm: opt.maxGradNorm }));
  g.output(r.gradNorm, 'grad_norm');
  params.forEach((q, i) => {
    g.output(r.params[i]!, `new:${q.name}`);
    g.output(r.m[i]!, `new_m:${q.name}`);
    g.output(r.v[i]!, `new_v:${q.name}`);
  });
}

/** The frozen adapter a DPO step's reference adds to the base (its objective's reference 'adapter'), by PEFT name. */
export type ReferenceAdapter = ReadonlyMap<string, Float32Array> | null;

export function buildStepGraphs(fw: FrozenWeights, invFreq: Float64Array, shape: StepShape, opt: OptimizerConfig, gradAccum: number, reference: ReferenceAdapter = null): StepGraphs {
  return gradAccum <= 1 ? buildFusedStep(fw, invFreq, shape, opt, reference) : buildAccumulatingStep(fw, invFreq, shape, opt, reference);
}

function stepForward(g: Graph, fw: FrozenWeights, invFreq: Float64Array, shape: StepShape, reference: ReferenceAdapter) {
  if (!shape.lora) throw new Error('buildStepGraphs: a training step needs a LoRA spec');
  const params = loraParams(fw.cfg, shape.lora);
  const og = buildObjective(g, fw, invFreq, { ...shape, dropout: true, headGradient: true }, shape.objective ?? SFT, reference);
  const p = params.map((q) => og.loraInputs.get(q.name)!);
  // A vocabulary-chunked SFT loss brings its own gradient with respect to the final hidden states (model/llama.ts lmLossAndGradient).
  const root: GradRoot = og.headGrad ? { of: og.headGrad.h, seed: og.headGrad.dh } : { of: og.loss, seed: null };
  const grads = shape.computeDtype === 'float16' ? perTokenScaledGrads(g, root, p) : grad(root.of, p, root.seed ? { seed: root.seed } : {});
  outputObjective(g, og);
  return { params, p, grads, dropoutModules: og.dropoutModules };
}

/**
 * Gradients of the mean loss with a float16 backward: the backward runs on the summed loss
 * (loss * trained tokens), so float16 gradients are per-token sized, O(1) for the logits, instead
 * of 1/tokens of that, which underflows float16 (6e-8 is its smallest subnormal) at a few thousand
 * tokens per batch. The LoRA gradients are divided back in float32. Static loss scaling as
 * mixed-precision peers do it, with the scale taken from the batch instead of searched for.
 */
function perTokenScaledGrads(g: Graph, root: GradRoot, params: Tensor[]): Tensor[] {
  const targets = g.inputs.find((t) => t.name === 'targets');
  if (!targets) throw new Error('perTokenScaledGrads: the graph has no "targets" input');
  const tokens = F.max2(F.reduceSum(F.cast(F.greater(targets, F.scalar(g, 'int32', -100)), 'float32'), [0], false), 1); // [] trained tokens
  const scaled = root.seed ? grad(root.of, params, { seed: F.mul(root.seed, tokens) }) : grad(F.mul(root.of, tokens), params);
  return scaled.map((d) => F.div(d, tokens));
}

/** Where the backward starts: the loss (seed 1), or a tensor with its gradient already known (ObjectiveGraph.headGrad). */
interface GradRoot {
  of: Tensor;
  seed: Tensor | null;
}

export function buildFusedStep(fw: FrozenWeights, invFreq: Float64Array, shape: StepShape, opt: OptimizerConfig, reference: ReferenceAdapter = null): FusedStep {
  const g = new Graph('train_step');
  const { params, p, grads, dropoutModules } = stepForward(g, fw, invFreq, shape, reference);
  appendUpdate(g, params, p, grads, opt);
  return { kind: 'fused', params, step: g, dropoutModules };
}

export function buildAccumulatingStep(fw: FrozenWeights, invFreq: Float64Array, shape: StepShape, opt: OptimizerConfig, reference: ReferenceAdapter = null): AccumulatingStep {
  const gg = new Graph('train_grads');
  const { params, grads, dropoutModules } = stepForward(gg, fw, invFreq, shape, reference);
  params.forEach((q, i) => gg.output(grads[i]!, `grad:${q.name}`));
  const ug = new Graph('train_update');
  const p = params.map((q) => ug.input(q.name, 'float32', q.shape));
  const summed = params.map((q) => ug.input(`grad:${q.name}`, 'float32', q.shape));
  appendUpdate(ug, params, p, summed, opt);
  return { kind: 'accumulating', params, grads: gg, update: ug, dropoutModules };
}

/** Forward + the objective's loss (and rewards) only (evaluation): same inputs as the step graph minus optimizer state. */
export function buildLossGraph(fw: FrozenWeights, invFreq: Float64Array, shape: StepShape, reference: ReferenceAdapter = null): Graph {
  const g = new Graph('eval_loss');
  outputObjective(g, buildObjective(g, fw, invFreq, { ...shape, dropout: false }, shape.objective ?? SFT, reference));
  return g;
}
