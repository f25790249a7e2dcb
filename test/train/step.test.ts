// The compiled LoRA step: 100 steps on a learnable toy sequence task drive the loss down, and the
// gradient-accumulation pair (gradient graph + update graph) equals the fused step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { LORA_TARGETS, initLora } from '../../src-main/model/lora.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep } from '../../src-main/train/step.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

const cfg = tinyConfig({ vocabSize: 32, numLayers: 2 });
const weights = randomWeights(cfg, 5);
const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, { quantize: true }); // QLoRA: 4-bit base
const lora = { rank: 8, alpha: 16, dropout: 0, rslora: false, targets: LORA_TARGETS };
const B = 4, T = 16;

/** Toy task: each row counts upward by a row-specific stride, modulo the vocabulary. */
function batchFeeds(): Record<string, HostTensor> {
  const ids = new BigInt64Array(B * T), targets = new Int32Array(B * T), pos = new BigInt64Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
    ids[b * T + t] = BigInt((b * 5 + t * (b + 1)) % cfg.vocabSize);
    targets[b * T + t] = t === T - 1 ? -100 : (b * 5 + (t + 1) * (b + 1)) % cfg.vocabSize;
    pos[b * T + t] = BigInt(t);
  }
  const bias = Float32Array.from({ length: B * T * T }, (_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -1e9));
  return {
    input_ids: { dtype: 'int64', dims: [B, T], data: ids }, position_ids: { dtype: 'int64', dims: [B, T], data: pos },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias }, targets: { dtype: 'int32', dims: [B * T], data: targets },
  };
}

function stateFeeds(params: ReturnType<typeof buildFusedStep>['params'], p: Map<string, Float32Array>, m: Map<string, Float32Array>, v: Map<string, Float32Array>, step: number, lr: number) {
  const f: Record<string, HostTensor> = { lr: { dtype: 'float32', dims: [], data: Float32Array.of(lr) }, step: { dtype: 'float32', dims: [], data: Float32Array.of(step) } };
  for (const q of params) {
    f[q.name] = { dtype: 'float32', dims: q.shape, data: p.get(q.name)! };
    f[`m:${q.name}`] = { dtype: 'float32', dims: q.shape, data: m.get(q.name)! };
    f[`v:${q.name}`] = { dtype: 'float32', dims: q.shape, data: v.get(q.name)! };
  }
  return f;
}

test('100 QLoRA steps on a learnable toy sequence task drive the loss down', async () => {
  const g = buildFusedStep(fw, invFreqOf(cfg), { batch: B, seq: T, lora }, DEFAULT_OPTIMIZER);
  const s = await Session.create(serializeModel(g.step), { threads: 1 });
  const p = initLora(g.params, 1);
  const m = new Map(g.params.map((q) => [q.name, new Float32Array(q.shape[0] * q.shape[1])]));
  const v = new Map(g.params.map((q) => [q.name, new Float32Array(q.shape[0] * q.shape[1])]));
  const data = batchFeeds();
  const losses: number[] = [];
  for (let step = 1; step <= 100; step++) {
    const out = await s.run({ ...data, ...stateFeeds(g.params, p, m, v, step, 1e-2) });
    losses.push((out.loss!.data as Float32Array)[0]!);
    for (const q of g.params) {
      p.set(q.name, out[`new:${q.name}`]!.data as Float32Array);
      m.set(q.name, out[`new_m:${q.name}`]!.data as Float32Array<ArrayBuffer>);
      v.set(q.name, out[`new_v:${q.name}`]!.data as Float32Array<ArrayBuffer>);
    }
  }
  console.log(`# toy task loss: ${losses[0]!.toFixed(3)} -> ${losses[99]!.toFixed(3)}`);
  assert.ok(losses[99]! < 0.3 * losses[0]!, `loss ${losses[0]} -> ${losses[99]}`);
  await s.release();
});

test('gradient accumulation (gradient graph + update graph) equals the fused step', async () => {
  const fused = buildFusedStep(fw, invFreqOf(cfg), { batch: B, seq: T, lora }, DEFAULT_OPTIMIZER);
  const split = buildAccumulatingStep(fw, invFreqOf(cfg), { batch: B, seq: T, lora }, DEFAULT_OPTIMIZER);
  const p = initLora(fused.params, 2);
  for (const q of fused.params) if (q.which === 'B') p.get(q.name)!.fill(0.01); // non-zero B: A gets a gradient
  const zeros = () => new Map(fused.params.map((q) => [q.name, new Float32Array(q.shape[0] * q.shape[1])]));
  const data = batchFeeds();
  const sf = await Session.create(serializeModel(fused.step), { threads: 1 });
  const a = await sf.run({ ...data, ...stateFeeds(fused.params, p, zeros(), zeros(), 1, 1e-3) });
  const sg = await Session.create(serializeModel(split.grads), { threads: 1 });
  const su = await Session.create(serializeModel(split.update), { threads: 1 });
  const paramFeeds = Object.fromEntries(fused.params.map((q) => [q.name, { dtype: 'float32' as const, dims: q.shape, data: p.get(q.name)! }]));
  const g = await sg.run({ ...data, ...paramFeeds });
  const upd: Record<string, HostTensor> = stateFeeds(fused.params, p, zeros(), zeros(), 1, 1e-3);
  for (const q of fused.params) upd[`grad:${q.name}`] = g[`grad:${q.name}`]!;
  const b = await su.run(upd);
  let worst = 0;
  for (const q of fused.params) {
    const x = a[`new:${q.name}`]!.data as Float32Array, y = b[`new:${q.name}`]!.data as Float32Array;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  assert.ok(worst <= 1e-6, `max parameter difference ${worst}`);
  assert.ok(Math.abs((a.grad_norm!.data as Float32Array)[0]! - (b.grad_norm!.data as Float32Array)[0]!) <= 1e-5);
});
