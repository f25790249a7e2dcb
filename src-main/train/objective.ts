// What a run's step minimises, built into its graph: the next-token cross-entropy of supervised
// fine-tuning, or a preference loss over batches of answer pairs (data/batch.ts: P chosen rows,
// then P rejected rows):
//   dpo   the policy's answer log-probabilities against a frozen reference's, computed in the same
//         graph over the same weights with the LoRA path off (or, continuing an adapter, with that
//         adapter frozen): engine/nn/preference.ts dpoLoss;
//   orpo  the chosen answers' cross-entropy plus the odds-ratio term of the mean answer
//         log-probabilities, no reference: orpoLoss.
// Graph outputs besides "loss": a preference objective's per-pair implicit rewards,
// "rewards_chosen" and "rewards_rejected" [P] (0 for padding pairs), which the trainer and the
// evaluation average as TRL's rewards/chosen, rewards/rejected, rewards/margins and rewards/accuracies.

import type { RunSettings } from '../../src-shared/run-config.js';
import type { RewardMetrics } from '../../src-shared/train-events.js';
import type { Graph, Tensor } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { type PairValues, dpoLoss, orpoLoss } from '../engine/nn/preference.js';
import { type ReferenceModel, type TrainGraph, type TrainGraphOptions, buildPreferenceForward, buildTrainForward } from '../model/graphs.js';
import type { LoraInputs } from '../model/llama.js';
import type { LoraParam } from '../model/lora.js';
import type { FrozenWeights } from '../model/weights/frozen-weights.js';

export type Method = RunSettings['method'];

/** A run's objective, as its graph plan carries it (train/plan.ts). */
export type Objective =
  | { method: 'sft' }
  /** reference 'adapter': the run continues an adapter (--init-adapter), which is also the frozen reference. */
  | { method: 'dpo'; beta: number; labelSmoothing: number; reference: 'base' | 'adapter' }
  | { method: 'orpo'; lambda: number };

export const SFT: Objective = { method: 'sft' };

/** The settings that choose the objective (defaults: SFT). */
export type ObjectiveSettings = Partial<Pick<RunSettings, 'method' | 'beta' | 'labelSmoothing' | 'orpoLambda' | 'initAdapter'>>;

export function objectiveOf(s: ObjectiveSettings): Objective {
  switch (s.method ?? 'sft') {
    case 'sft': return SFT;
    case 'dpo': return { method: 'dpo', beta: s.beta ?? 0.1, labelSmoothing: s.labelSmoothing ?? 0, reference: s.initAdapter ? 'adapter' : 'base' };
    case 'orpo': return { method: 'orpo', lambda: s.orpoLambda ?? 0.1 };
  }
}

/** Graph rows per micro-batch of `batch` items: sequences, or two rows (chosen, rejected) per pair. */
export const rowsPerItem = (o: Objective): number => (o.method === 'sft' ? 1 : 2);

export interface ObjectiveGraph {
  /** The scalar the step minimises. */
  loss: Tensor;
  /** Per-pair implicit rewards [P] of a preference objective, else null. */
  rewards: PairValues | null;
  lora: LoraParam[];
  loraInputs: LoraInputs;
  dropoutModules: number;
  /** SFT with TrainGraphOptions.headGradient, where the loss is in vocabulary pieces: where its backward starts (TrainGraph.headGrad), else null. */
  headGrad: TrainGraph['headGrad'];
}

/**
 * The forward and the objective of a training or evaluation graph. `referenceAdapter`: the frozen
 * adapter's matrices by PEFT name, for a DPO objective whose reference is 'adapter'.
 */
export function buildObjective(g: Graph, fw: FrozenWeights, invFreq: Float64Array, o: TrainGraphOptions, objective: Objective,
  referenceAdapter: ReadonlyMap<string, Float32Array> | null = null): ObjectiveGraph {
  if (objective.method === 'sft') {
    const tg = buildTrainForward(g, fw, invFreq, o);
    return { loss: tg.loss, rewards: null, lora: tg.lora, loraInputs: tg.loraInputs, dropoutModules: tg.dropoutModules, headGrad: tg.headGrad };
  }
  if (o.batch % 2) throw new Error(`buildObjective: a preference batch holds two rows per pair, got ${o.batch} rows`);
  let reference: ReferenceModel = null;
  if (objective.method === 'dpo') {
    if (objective.reference === 'adapter' && !referenceAdapter) throw new Error('buildObjective: the DPO reference is an adapter, but none was given');
    reference = { lora: objective.reference === 'adapter' ? referenceAdapter : null };
  }
  const pg = buildPreferenceForward(g, fw, invFreq, o, reference);
  const P = o.batch / 2;
  const pairs = (x: Tensor): PairValues => {
    const [chosen, rejected] = F.split(x, [P, P], 0);
    return { chosen: chosen!, rejected: rejected! };
  };
  const counts = pairs(pg.policy.count);
  const valid = F.cast(F.greater(counts.chosen, 0), 'float32'); // [P]: the pair exists (padding rows have no targets)
  let r;
  if (objective.method === 'dpo') {
    r = dpoLoss(pairs(pg.policy.sum), pairs(pg.reference!.sum), valid, { beta: objective.beta, labelSmoothing: objective.labelSmoothing });
  } else {
    const sums = pairs(pg.policy.sum);
    const mean = (s: Tensor, n: Tensor) => F.div(s, F.max2(n, 1));
    // The chosen answers' mean cross-entropy over all their tokens (as one batch of them would give).
    const nll = F.neg(F.div(F.reduceSum(sums.chosen, [0], false), F.max2(F.reduceSum(counts.chosen, [0], false), 1)));
    r = orpoLoss({ chosen: mean(sums.chosen, counts.chosen), rejected: mean(sums.rejected, counts.rejected) }, nll, valid, objective.lambda);
  }
  return { loss: r.loss, rewards: r.rewards, lora: pg.lora, loraInputs: pg.loraInputs, dropoutModules: pg.dropoutModules, headGrad: null };
}

/** Outputs an objective's loss and rewards under the names above. */
export function outputObjective(g: Graph, og: ObjectiveGraph): void {
  g.output(og.loss, 'loss');
  if (og.rewards) {
    g.output(og.rewards.chosen, 'rewards_chosen');
    g.output(og.rewards.rejected, 'rewards_rejected');
  }
}

export type { RewardMetrics };

/** Sums rewards over the pairs of several batches (a step's micro-batches, an evaluation's batches). */
export class RewardTally {
  private chosen = 0;
  private rejected = 0;
  private correct = 0;
  pairs = 0;

  /** The first n pairs of one batch's "rewards_chosen" and "rewards_rejected" outputs (the rest are padding). */
  add(chosen: Float32Array, rejected: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      this.chosen += chosen[i]!;
      this.rejected += rejected[i]!;
      if (chosen[i]! > rejected[i]!) this.correct++;
    }
    this.pairs += n;
  }

  metrics(): RewardMetrics {
    const n = Math.max(1, this.pairs);
    return { rewards_chosen: this.chosen / n, rewards_rejected: this.rejected / n, reward_margin: (this.chosen - this.rejected) / n, reward_accuracy: this.correct / n };
  }
}
