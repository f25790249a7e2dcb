// Finch's in-graph AdamW (engine/optim/adamw.ts) against torch.optim.AdamW with
// torch.nn.utils.clip_grad_norm_ (test/oracle/adamw.py): 20 steps on the same pre-generated
// gradients, whose scale varies so that clipping acts on some steps and not on others, with a
// learning rate that changes every step (a graph input) and weight decay on.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import { appendAdamW } from '../../../src-main/engine/optim/adamw.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../../src-main/engine/runtime/session.js';
import { Rng } from '../../helpers/gradcheck.js';
import { Comparison, type OracleTensor, runOracle, tensor, values } from '../../helpers/torch.js';

const SHAPES: Record<string, number[]> = { 'w.a': [8, 16], 'w.b': [16], 'w.c': [3, 4, 5] };
const STEPS = 20;
const HYPER = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 2 };
const lrAt = (t: number) => 0.05 * (t < 3 ? (t + 1) / 3 : 1 - t / 40); // warm-up, then linear decay

async function runBoth(dtype: 'float32' | 'float64') {
  const Arr = dtype === 'float32' ? Float32Array : Float64Array;
  const rng = new Rng(2024);
  const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const draw = (n: number, std: number) => new Arr(Array.from({ length: n }, () => std * rng.normal()));
  const names = Object.keys(SHAPES);
  const init = Object.fromEntries(names.map((k) => [k, draw(numel(SHAPES[k]!), 0.5)]));
  // Gradient scale cycles 0.05 .. 0.5: global norms of about 0.7 .. 7 around maxGradNorm = 2.
  const grads = Array.from({ length: STEPS }, (_, t) =>
    Object.fromEntries(names.map((k) => [k, draw(numel(SHAPES[k]!), 0.05 * (1 + 3 * (t % 4)))])));

  // Finch: parameters and gradients are inputs; the update's outputs are fed back each step.
  const g = new Graph(`adamw_${dtype}`);
  const params = names.map((k) => g.input(k, dtype, SHAPES[k]!));
  const gradInputs = names.map((k) => g.input(`${k}.grad`, dtype, SHAPES[k]!));
  const opt = appendAdamW(g, params, gradInputs, HYPER, dtype);
  const session = await Session.create(serializeModel(g), { provider: 'cpu', threads: 2 });
  const feeds: Record<string, HostTensor> = {};
  names.forEach((k) => {
    feeds[k] = { dtype, dims: SHAPES[k]!, data: init[k]! };
    feeds[`${k}.adam_m`] = { dtype, dims: SHAPES[k]!, data: new Arr(numel(SHAPES[k]!)) };
    feeds[`${k}.adam_v`] = { dtype, dims: SHAPES[k]!, data: new Arr(numel(SHAPES[k]!)) };
  });
  const history: Record<string, HostTensor>[] = [];
  const norms: number[] = [];
  for (let t = 0; t < STEPS; t++) {
    names.forEach((k) => (feeds[`${k}.grad`] = { dtype, dims: SHAPES[k]!, data: grads[t]![k]! }));
    feeds['optim.lr'] = { dtype, dims: [], data: Arr.of(lrAt(t)) };
    feeds['optim.step'] = { dtype, dims: [], data: Arr.of(t + 1) };
    const out = await session.run(feeds);
    for (const s of opt.slots) for (const io of [s.param, s.m, s.v]) feeds[io.input] = out[io.output]!;
    history.push(out);
    norms.push(out[opt.gradNorm]!.data[0] as number);
  }
  await session.release();

  const ref = runOracle<{ params: Record<string, OracleTensor>[]; grad_norms: number[]; m: Record<string, OracleTensor>; v: Record<string, OracleTensor> }>(
    'adamw.py',
    {
      params: Object.fromEntries(names.map((k) => [k, tensor(dtype, SHAPES[k]!, init[k]!)])),
      grads: grads.map((step) => Object.fromEntries(names.map((k) => [k, tensor(dtype, SHAPES[k]!, step[k]!)]))),
      lr: Array.from({ length: STEPS }, (_, t) => lrAt(t)),
      hyper: { beta1: HYPER.beta1, beta2: HYPER.beta2, eps: HYPER.eps, weight_decay: HYPER.weightDecay, max_grad_norm: HYPER.maxGradNorm },
    },
  );
  return { names, opt, history, norms, ref };
}

for (const [dtype, tolerance] of [['float32', 1e-6], ['float64', 1e-12]] as const) {
  test(`AdamW with clipping and weight decay matches torch.optim.AdamW over ${STEPS} steps (${dtype})`, async () => {
    const { names, opt, history, norms, ref } = await runBoth(dtype);
    const clippedSteps = ref.grad_norms.filter((n) => n > HYPER.maxGradNorm).length;
    assert.ok(clippedSteps > 3 && clippedSteps < STEPS - 3, `clipping should act on some steps only, acted on ${clippedSteps}`);

    const cmp = new Comparison(tolerance);
    cmp.check('grad norm', norms, ref.grad_norms);
    for (let t = 0; t < STEPS; t++) {
      names.forEach((k, i) => cmp.check(`param ${k}`, history[t]![opt.slots[i]!.param.output]!.data as Float32Array, values(ref.params[t]![k], k)));
    }
    const last = history[STEPS - 1]!;
    names.forEach((k, i) => {
      cmp.check(`m ${k}`, last[opt.slots[i]!.m.output]!.data as Float32Array, values(ref.m[k], `m.${k}`));
      cmp.check(`v ${k}`, last[opt.slots[i]!.v.output]!.data as Float32Array, values(ref.v[k], `v.${k}`));
    });
    console.log(`${dtype}, max relative difference per tensor over all steps:\n${cmp.summary()}`);
  });
}
