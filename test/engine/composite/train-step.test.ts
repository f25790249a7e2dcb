// The whole training step of a one-layer Llama-style model (tiny-block.ts: embedding, attention,
// gated MLP, RMSNorms, LM head, cross-entropy with ignored positions, backward, clipped AdamW) in
// one ONNX graph on the CPU EP, against the same model trained by PyTorch for several steps.

import { test } from 'node:test';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { Comparison, type OracleTensor, runOracle, values } from '../../helpers/torch.js';
import { TOLERANCE } from './harness.js';
import { PARAMS, buildTinyStep, carryState, initialFeeds, oracleRequest, setStep, tinyData } from './tiny-block.js';

const STEPS = 5;

test(`one-graph training step matches PyTorch over ${STEPS} AdamW steps`, async () => {
  const data = tinyData(7, STEPS);
  const { graph, opt } = buildTinyStep(data);
  const session = await Session.create(serializeModel(graph), { provider: 'cpu', threads: 2 });
  const feeds = initialFeeds(data);
  const losses: number[] = [], norms: number[] = [];
  for (let t = 0; t < STEPS; t++) {
    setStep(feeds, data, t);
    const out = await session.run(feeds);
    losses.push(out.loss!.data[0] as number);
    norms.push(out[opt.gradNorm]!.data[0] as number);
    carryState(feeds, out, opt);
  }
  await session.release();

  type Ref = { losses: number[]; grad_norms: number[]; params: Record<string, OracleTensor>; m: Record<string, OracleTensor>; v: Record<string, OracleTensor> };
  const ref = runOracle<Ref>('composite.py', oracleRequest(data, STEPS));
  const cmp = new Comparison(TOLERANCE);
  losses.forEach((l, t) => cmp.check(`loss step ${t + 1}`, [l], [ref.losses[t]!]));
  norms.forEach((n, t) => cmp.check(`grad norm step ${t + 1}`, [n], [ref.grad_norms[t]!]));
  opt.slots.forEach((s, i) => {
    const k = Object.keys(PARAMS)[i]!;
    cmp.check(`param ${k}`, feeds[s.param.input]!.data as Float32Array, values(ref.params[k], k));
    cmp.check(`adam m ${k}`, feeds[s.m.input]!.data as Float32Array, values(ref.m[k], k));
    cmp.check(`adam v ${k}`, feeds[s.v.input]!.data as Float32Array, values(ref.v[k], k));
  });
  console.log(`losses ${losses.map((l) => l.toFixed(5)).join(' ')}; grad norms ${norms.map((n) => n.toFixed(4)).join(' ')}`);
  console.log(cmp.summary().split('\n').slice(0, 8).join('\n'));
});
