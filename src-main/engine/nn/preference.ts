// Preference losses over the log-probabilities of answer pairs, composed from graph ops that have
// gradient rules and WebGPU kernels (no Abs, Softplus or Log1p): DPO (Rafailov et al. 2023) with
// conservative label smoothing (cDPO), and ORPO (Hong et al. 2024). Each takes P pairs as [P]
// tensors and a [P] 0/1 mask of the pairs that exist (a batch's last rows may be padding), and
// gives the mean loss over the existing pairs and each pair's implicit rewards, as TRL reports
// them (rewards/chosen, rewards/rejected; margins and accuracies follow from them).

import type { Tensor } from '../graph/graph.js';
import * as F from '../graph/ops.js';

/** log(sigmoid(x)) without overflow: min(x, 0) - log(1 + exp(-|x|)), with -|x| = 2 min(x, 0) - x. */
export function logSigmoid(x: Tensor): Tensor {
  const m = F.min2(x, 0);
  return F.sub(m, F.log(F.add(F.exp(F.sub(F.mul(m, 2), x)), 1)));
}

/**
 * log(1 - exp(x)) for x < 0 without the cancellation of 1 - exp(x) near 0 (what TRL's log1mexp
 * does with log1p and expm1, which ONNX lacks): with t = tanh(x / 2), 1 - exp(x) = -2t / (1 - t),
 * and both -2t and 1 - t keep their relative precision. -inf at x = 0, as TRL's.
 */
export function log1mExp(x: Tensor): Tensor {
  const t = F.tanh(F.mul(x, 0.5));
  return F.sub(F.log(F.mul(t, -2)), F.log(F.sub(1, t)));
}

/** One value per pair: [P] each. */
export interface PairValues {
  chosen: Tensor;
  rejected: Tensor;
}

export interface PairLoss {
  /** The mean loss over existing pairs (0 when there are none). */
  loss: Tensor;
  /** Each pair's implicit rewards [P] (0 for missing pairs). */
  rewards: PairValues;
}

/** sum(x * valid) / max(sum(valid), 1): the mean over existing pairs. x, valid: [P] -> [] */
function maskedMean(x: Tensor, valid: Tensor): Tensor {
  return F.div(F.reduceSum(F.mul(x, valid), [0], false), F.max2(F.reduceSum(valid, [0], false), 1));
}

export interface DpoOptions {
  beta: number;
  /** cDPO: the probability that a pair's preference label is flipped (0 = plain DPO). */
  labelSmoothing: number;
}

/**
 * DPO's sigmoid loss from the policy's and the frozen reference's summed answer log-probabilities:
 * z = beta ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))),
 * loss = -(1 - eps) log sigmoid(z) - eps log sigmoid(-z). Rewards: beta (log pi - log ref) per side.
 */
export function dpoLoss(policy: PairValues, reference: PairValues, valid: Tensor, o: DpoOptions): PairLoss {
  const chosen = F.mul(F.sub(policy.chosen, reference.chosen), o.beta); // [P]
  const rejected = F.mul(F.sub(policy.rejected, reference.rejected), o.beta); // [P]
  const z = F.sub(chosen, rejected); // [P]
  let perPair = F.neg(logSigmoid(z));
  if (o.labelSmoothing > 0) perPair = F.sub(F.mul(perPair, 1 - o.labelSmoothing), F.mul(logSigmoid(F.neg(z)), o.labelSmoothing));
  return { loss: maskedMean(perPair, valid), rewards: { chosen: F.mul(chosen, valid), rejected: F.mul(rejected, valid) } };
}

/**
 * ORPO: the chosen answers' mean negative log-likelihood `nll` plus lambda times the odds-ratio
 * loss -log sigmoid(log odds(c) - log odds(r)), with log odds(y) = a - log(1 - exp(a)) for a side's
 * mean token log-probability a. Rewards: lambda a per side.
 */
export function orpoLoss(meanLogProbs: PairValues, nll: Tensor, valid: Tensor, lambda: number): PairLoss {
  const present = F.greater(valid, 0);
  // A missing pair's mean is 0, where log(1 - exp(0)) is -inf: give it a finite stand-in the mask then drops.
  const safe = (a: Tensor) => F.where(present, a, -1);
  const c = safe(meanLogProbs.chosen), r = safe(meanLogProbs.rejected); // [P]
  const logOdds = F.sub(F.sub(c, r), F.sub(log1mExp(c), log1mExp(r))); // [P]
  const ratio = maskedMean(logSigmoid(logOdds), valid); // []
  return {
    loss: F.sub(nll, F.mul(ratio, lambda)),
    rewards: { chosen: F.mul(F.mul(c, lambda), valid), rejected: F.mul(F.mul(r, lambda), valid) },
  };
}
