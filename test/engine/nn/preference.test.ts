// The preference-loss blocks (engine/nn/preference.ts): values against the formulas written out in
// float64 here, and gradients against central finite differences in float64 on ORT's CPU EP (the
// blocks add no gradient rule: autodiff differentiates the ops they are made of). The whole losses
// are checked against TRL in test/train/objective-trl.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { dpoLoss, log1mExp, logSigmoid, orpoLoss } from '../../../src-main/engine/nn/preference.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { gradcheck } from '../../helpers/gradcheck.js';

const TOL = 1e-8;
const ref = {
  logSigmoid: (x: number) => -Math.log1p(Math.exp(-Math.abs(x))) + Math.min(x, 0),
  log1mExp: (x: number) => (x < -Math.LN2 ? Math.log1p(-Math.exp(x)) : Math.log(-Math.expm1(x))),
};

/** Runs a one-input float64 graph elementwise over xs. */
async function values(xs: number[], f: (x: ReturnType<Graph['input']>) => ReturnType<Graph['input']>): Promise<Float64Array> {
  const g = new Graph('values');
  const x = g.input('x', 'float64', [xs.length]);
  g.output(f(x), 'y');
  const s = await Session.create(serializeModel(g), { threads: 1 });
  try {
    return (await s.run({ x: { dtype: 'float64', dims: [xs.length], data: Float64Array.from(xs) } })).y!.data as Float64Array;
  } finally {
    await s.release();
  }
}

test('logSigmoid is finite and exact from -1000 to 1000; log1mExp keeps its precision near 0', async () => {
  const xs = [-1000, -40, -5, -0.5, 0, 1e-7, 0.5, 5, 40, 1000];
  const got = await values(xs, logSigmoid);
  xs.forEach((x, i) => assert.ok(Math.abs(got[i]! - ref.logSigmoid(x)) <= 1e-12 * Math.max(1, Math.abs(ref.logSigmoid(x))), `logSigmoid(${x}) = ${got[i]}`));
  const ys = [-80, -10, -1, -Math.LN2, -0.1, -1e-4, -1e-9];
  const got2 = await values(ys, log1mExp);
  ys.forEach((x, i) => assert.ok(Math.abs(got2[i]! - ref.log1mExp(x)) <= 1e-12 * Math.max(1, Math.abs(ref.log1mExp(x))), `log1mExp(${x}) = ${got2[i]}, want ${ref.log1mExp(x)}`));
  // The naive log(1 - exp(x)) loses half its digits at -1e-9; the tanh form keeps them all (float32 likewise keeps ~7).
  assert.ok(Math.abs(Math.log(1 - Math.exp(-1e-9)) - ref.log1mExp(-1e-9)) > 1e-8);
});

test('logSigmoid and log1mExp gradients match finite differences', async () => {
  for (const [label, build] of [
    ['logSigmoid', (b: Parameters<Parameters<typeof gradcheck>[1]>[0]) => logSigmoid(b.input('x', [2, 5], (r) => r.uniform(-30, 30)))],
    ['log1mExp', (b: Parameters<Parameters<typeof gradcheck>[1]>[0]) => log1mExp(b.input('x', [2, 5], (r) => -r.uniform(0.01, 20)))],
  ] as const) {
    const r = await gradcheck('Log', build, { tol: TOL, label }); // each block holds a Log (gradcheck names an op it contains)
    assert.ok(r.maxRel <= TOL, `${label}: ${r.maxRel}`);
  }
});

// Three pairs of which the last is padding (valid 0): it must change neither the loss nor any gradient.
const VALID = Float64Array.of(1, 1, 0);

test('DPO (plain and label-smoothed): the loss over existing pairs, rewards, and gradients match the formula and finite differences', async () => {
  for (const eps of [0, 0.1]) {
    const beta = 0.3;
    const build = (b: Parameters<Parameters<typeof gradcheck>[1]>[0]) => {
      const valid = b.feed('valid', 'float64', [3], VALID);
      const pc = b.input('pc', [3], (r) => -r.uniform(5, 40)), pr = b.input('pr', [3], (r) => -r.uniform(5, 40));
      const rc = b.input('rc', [3], (r) => -r.uniform(5, 40)), rr = b.input('rr', [3], (r) => -r.uniform(5, 40));
      const o = dpoLoss({ chosen: pc, rejected: pr }, { chosen: rc, rejected: rr }, valid, { beta, labelSmoothing: eps });
      return [o.loss, o.rewards.chosen, o.rewards.rejected];
    };
    const r = await gradcheck('Log', build, { tol: TOL, label: `DPO, label smoothing ${eps}` });
    assert.ok(r.maxRel <= TOL, `label smoothing ${eps}: ${r.maxRel}`);

    // Values, against the formula over the two existing pairs.
    const g = new Graph('dpo');
    const inp = (n: string) => g.input(n, 'float64', [3]);
    const [pc, pr, rc, rr, valid] = ['pc', 'pr', 'rc', 'rr', 'valid'].map(inp);
    const o = dpoLoss({ chosen: pc!, rejected: pr! }, { chosen: rc!, rejected: rr! }, valid!, { beta, labelSmoothing: eps });
    g.output(o.loss, 'loss');
    g.output(o.rewards.chosen, 'rc_out');
    const v = { pc: [-10, -12, 99], pr: [-11, -9, 99], rc: [-10.5, -12, 7], rr: [-10.2, -10, 7] };
    const s = await Session.create(serializeModel(g), { threads: 1 });
    const f = (k: keyof typeof v) => ({ dtype: 'float64' as const, dims: [3], data: Float64Array.from(v[k]) });
    const out = await s.run({ pc: f('pc'), pr: f('pr'), rc: f('rc'), rr: f('rr'), valid: { dtype: 'float64', dims: [3], data: VALID } });
    await s.release();
    let want = 0;
    for (let i = 0; i < 2; i++) {
      const z = beta * ((v.pc[i]! - v.rc[i]!) - (v.pr[i]! - v.rr[i]!));
      want += (-(1 - eps) * ref.logSigmoid(z) - eps * ref.logSigmoid(-z)) / 2;
    }
    assert.ok(Math.abs((out.loss!.data as Float64Array)[0]! - want) <= 1e-12, `loss ${(out.loss!.data as Float64Array)[0]} vs ${want}`);
    assert.deepEqual([...(out.rc_out!.data as Float64Array)].map((x) => +x.toFixed(12)), [beta * 0.5, 0, 0].map((x) => +x.toFixed(12)));
  }
});

test('ORPO: NLL plus lambda times the odds-ratio term over existing pairs; gradients match finite differences', async () => {
  const lambda = 0.25;
  const build = (b: Parameters<Parameters<typeof gradcheck>[1]>[0]) => {
    const valid = b.feed('valid', 'float64', [3], VALID);
    const c = b.input('c', [3], (r) => -r.uniform(0.05, 4)), r = b.input('r', [3], (rng) => -rng.uniform(0.05, 4));
    const o = orpoLoss({ chosen: c, rejected: r }, b.input('nll', []), valid, lambda);
    return [o.loss, o.rewards.chosen, o.rewards.rejected];
  };
  const rep = await gradcheck('Log', build, { tol: TOL, label: 'ORPO' });
  assert.ok(rep.maxRel <= TOL, `${rep.maxRel}`);

  const g = new Graph('orpo');
  const [c, r, valid] = ['c', 'r', 'valid'].map((n) => g.input(n, 'float64', [3]));
  const nll = g.input('nll', 'float64', []);
  g.output(orpoLoss({ chosen: c!, rejected: r! }, nll, valid!, lambda).loss, 'loss');
  const v = { c: [-0.5, -2, 0], r: [-1.5, -1, 0] }; // the padding pair's means are 0, where log(1 - exp) is -inf
  const s = await Session.create(serializeModel(g), { threads: 1 });
  const out = await s.run({
    c: { dtype: 'float64', dims: [3], data: Float64Array.from(v.c) }, r: { dtype: 'float64', dims: [3], data: Float64Array.from(v.r) },
    valid: { dtype: 'float64', dims: [3], data: VALID }, nll: { dtype: 'float64', dims: [], data: Float64Array.of(1.7) },
  });
  await s.release();
  let ratio = 0;
  for (let i = 0; i < 2; i++) ratio += ref.logSigmoid((v.c[i]! - v.r[i]!) - (ref.log1mExp(v.c[i]!) - ref.log1mExp(v.r[i]!))) / 2;
  const loss = (out.loss!.data as Float64Array)[0]!;
  assert.ok(Number.isFinite(loss));
  assert.ok(Math.abs(loss - (1.7 - lambda * ratio)) <= 1e-12, `${loss} vs ${1.7 - lambda * ratio}`);
});

test('a graph of only padding pairs has loss 0, not NaN', async () => {
  const g = new Graph('empty');
  const x = g.input('x', 'float64', [2]);
  const zero = F.mul(x, 0);
  g.output(dpoLoss({ chosen: x, rejected: x }, { chosen: x, rejected: x }, zero, { beta: 0.1, labelSmoothing: 0 }).loss, 'loss');
  const s = await Session.create(serializeModel(g), { threads: 1 });
  const out = await s.run({ x: { dtype: 'float64', dims: [2], data: Float64Array.of(1, 2) } });
  await s.release();
  assert.equal((out.loss!.data as Float64Array)[0], 0);
});
