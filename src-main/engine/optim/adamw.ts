// AdamW as graph ops, appended after the backward so that forward + backward + update is one
// session.run. Parameters and moments are graph inputs and the updated ones graph outputs: the
// trainer feeds each output back as the next step's input (on WebGPU they can stay on the device
// through preferredOutputLocation). The learning rate and step count are scalar inputs, so a
// schedule needs no graph rebuild.
//
// The arithmetic follows torch.optim.AdamW (decoupled weight decay, bias-corrected moments) and
// torch.nn.utils.clip_grad_norm_ (one global norm over all gradients), step for step, so that
// test/engine/optim/adamw.test.ts can hold it to PyTorch's numbers.

import type { DType } from '../graph/dtype.js';
import type { Graph, Tensor } from '../graph/graph.js';
import * as F from '../graph/ops.js';

/**
 * Finch's AdamW defaults, the one place they are set (the trainer, bench and tests read them from
 * here through train/step.ts DEFAULT_OPTIMIZER): torch.optim.AdamW's betas and eps, and no weight
 * decay, the usual choice for LoRA fine-tuning (torch's own AdamW default is 0.01).
 */
export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 } as const;

export interface AdamWHyper {
  /** Learning rate: a scalar graph input (read every step, so schedules need no rebuild). */
  lr: Tensor;
  /** Step count t >= 1 (after this update), a scalar float input: drives the bias correction. */
  step: Tensor;
  /** Absent hyperparameters take ADAMW_DEFAULTS. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip gradients to this global L2 norm first (torch.nn.utils.clip_grad_norm_); none if absent. */
  maxGradNorm?: number | null;
}

export interface AdamWResult {
  params: Tensor[];
  m: Tensor[];
  v: Tensor[];
  /** Global L2 norm of the gradients before clipping (what clip_grad_norm_ returns), a scalar. */
  gradNorm: Tensor;
}

/**
 * 1 - beta^t without the cancellation of computing beta^t first: for beta2 = 0.999 and t = 1 the
 * naive float32 form is off by 1e-5 relative, which would show in every early update. Uses
 * -expm1(t ln beta), with expm1 as a Taylor series near 0 (ONNX has no Expm1 op).
 */
function oneMinusPow(beta: number, t: Tensor): Tensor {
  if (!(beta > 0 && beta < 1)) throw new F.GraphBuildError(`adamw: beta ${beta} must lie in (0, 1)`);
  const z = F.mul(t, Math.log(beta)); // [] <= 0
  let acc: Tensor | number = 1; // Horner: -expm1(z) = -z (1 + z/2 (1 + z/3 (... (1 + z/11))))
  for (let k = 11; k >= 2; k--) acc = F.add(F.mul(F.mul(z, 1 / k), acc), 1);
  const series = F.neg(F.mul(z, acc)); // truncation < 1e-11 relative for |z| <= 0.5
  const direct = F.sub(1, F.exp(z)); // no harmful cancellation once exp(z) <= 0.61
  return F.where(F.greater(z, -0.5), series, direct);
}

/** A scalar input in the dtype of the parameters it scales. */
const asDtype = (x: Tensor, dtype: DType): Tensor => (x.dtype === dtype ? x : F.cast(x, dtype));

/**
 * One AdamW update of every parameter: optional global-norm clipping of `grads`, then per tensor
 *   p <- p * (1 - lr * wd)
 *   m <- beta1 * m + (1 - beta1) * g
 *   v <- beta2 * v + (1 - beta2) * g * g
 *   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * `params`, `m`, `v` and `grads` are parallel lists; all tensors of one index share a shape.
 */
export function adamw(params: readonly Tensor[], grads: readonly Tensor[], m: readonly Tensor[], v: readonly Tensor[], hp: AdamWHyper): AdamWResult {
  if (params.length === 0) throw new F.GraphBuildError('adamw: no parameters to update');
  if (grads.length !== params.length || m.length !== params.length || v.length !== params.length) {
    throw new F.GraphBuildError(`adamw: ${params.length} params but ${grads.length} grads, ${m.length} m, ${v.length} v`);
  }
  params.forEach((p, i) => {
    for (const [what, t] of [['grad', grads[i]!], ['m', m[i]!], ['v', v[i]!]] as const) {
      if (t.dtype !== p.dtype || t.rank !== p.rank || t.shape.some((d, j) => d !== p.shape[j])) {
        throw new F.GraphBuildError(`adamw: ${what} ${t} does not match parameter ${p}`);
      }
    }
  });
  if (hp.lr.rank !== 0 || hp.step.rank !== 0) throw new F.GraphBuildError(`adamw: lr ${hp.lr} and step ${hp.step} must be scalars`);
  const D = ADAMW_DEFAULTS;
  const beta1 = hp.beta1 ?? D.beta1, beta2 = hp.beta2 ?? D.beta2, eps = hp.eps ?? D.eps, wd = hp.weightDecay ?? D.weightDecay;
  const dtype = params[0]!.dtype;
  for (const p of params) if (p.dtype !== dtype) throw new F.GraphBuildError(`adamw: parameters mix ${dtype} and ${p.dtype} (${p})`);

  // Global norm over all gradients, as if concatenated into one vector.
  const squares = grads.map((g) => F.reduceSum(F.mul(g, g), g.shape.map((_, i) => i), false)); // [] each
  const gradNorm = F.sqrt(squares.reduce((a, b) => F.add(a, b))); // []
  let clipped: readonly Tensor[] = grads;
  if (hp.maxGradNorm != null) {
    if (!(hp.maxGradNorm > 0)) throw new F.GraphBuildError(`adamw: maxGradNorm must be > 0, got ${hp.maxGradNorm}`);
    const scale = F.min2(F.div(F.scalar(gradNorm.graph, dtype, hp.maxGradNorm), F.add(gradNorm, 1e-6)), 1); // []
    clipped = grads.map((g) => F.mul(g, scale));
  }

  const lr = asDtype(hp.lr, dtype), t = asDtype(hp.step, dtype);
  const decay = F.sub(1, F.mul(lr, wd)); // [] decoupled weight decay factor
  const stepSize = F.div(lr, oneMinusPow(beta1, t)); // [] lr / (1 - beta1^t)
  const bc2Sqrt = F.sqrt(oneMinusPow(beta2, t)); // [] sqrt(1 - beta2^t)

  const out: AdamWResult = { params: [], m: [], v: [], gradNorm };
  params.forEach((p, i) => {
    const g = clipped[i]!;
    const m1 = F.add(F.mul(m[i]!, beta1), F.mul(g, 1 - beta1));
    const v1 = F.add(F.mul(v[i]!, beta2), F.mul(F.mul(g, 1 - beta2), g));
    const denom = F.add(F.div(F.sqrt(v1), bc2Sqrt), eps);
    out.params.push(F.sub(F.mul(p, decay), F.mul(stepSize, F.div(m1, denom))));
    out.m.push(m1);
    out.v.push(v1);
  });
  return out;
}

/** Names of one parameter's optimizer tensors, graph input -> graph output (fed back each step). */
export interface AdamWSlot {
  param: { input: string; output: string };
  m: { input: string; output: string };
  v: { input: string; output: string };
}

export interface AdamWGraph {
  lr: Tensor;
  step: Tensor;
  slots: AdamWSlot[];
  /** Output name of the pre-clipping global gradient norm. */
  gradNorm: string;
}

export type AdamWConfig = Omit<AdamWHyper, 'lr' | 'step'>;

/**
 * Declares the optimizer's graph inputs (`optim.lr`, `optim.step`, `<param>.adam_m`,
 * `<param>.adam_v`), appends the update, and marks the outputs `<name>.next` and `optim.grad_norm`.
 * `params` must be graph inputs; the returned slots tell the trainer which output feeds which input.
 */
export function appendAdamW(g: Graph, params: readonly Tensor[], grads: readonly Tensor[], cfg: AdamWConfig = {}, scalarDtype: DType = 'float32'): AdamWGraph {
  for (const p of params) {
    if (!g.inputs.includes(p)) throw new F.GraphBuildError(`appendAdamW: parameter ${p} must be a graph input (trainable state is fed each step)`);
  }
  const lr = g.input('optim.lr', scalarDtype, []);
  const step = g.input('optim.step', scalarDtype, []);
  const m = params.map((p) => g.input(`${p.name}.adam_m`, p.dtype, p.shape));
  const v = params.map((p) => g.input(`${p.name}.adam_v`, p.dtype, p.shape));
  const r = g.scope('adamw', () => adamw(params, grads, m, v, { ...cfg, lr, step }));
  const slots = params.map((p, i): AdamWSlot => {
    const link = (input: Tensor, next: Tensor) => ({ input: input.name, output: g.output(next, `${input.name}.next`).name });
    return { param: link(p, r.params[i]!), m: link(m[i]!, r.m[i]!), v: link(v[i]!, r.v[i]!) };
  });
  g.output(r.gradNorm, 'optim.grad_norm');
  return { lr, step, slots, gradNorm: 'optim.grad_norm' };
}
