// A one-layer Llama-style model built from engine/nn/layers.ts, with its whole training step in one
// graph: embedding lookup (frozen), x + attn(norm(x)), + mlp(norm(.)), final norm, LM head,
// cross-entropy with ignored positions, backward, AdamW. The train-step test holds it to PyTorch,
// the WebGPU test holds WebGPU to the CPU.

import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph, type Tensor } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import * as nn from '../../../src-main/engine/nn/layers.js';
import { type AdamWConfig, type AdamWGraph, appendAdamW } from '../../../src-main/engine/optim/adamw.js';
import type { HostTensor } from '../../../src-main/engine/runtime/session.js';
import { Rng } from '../../helpers/gradcheck.js';
import { type OracleTensor, tensor } from '../../helpers/torch.js';

export const CFG = { B: 2, T: 8, D: 32, nHeads: 4, nKvHeads: 2, hd: 8, I: 48, V: 64, eps: 1e-5 };
export const ADAMW: Required<AdamWConfig> = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 };
export const LR = [3e-3, 2e-3, 1e-3, 1e-3, 5e-4];

const { B, T, D, nHeads, nKvHeads, hd, I, V } = CFG;

/** Trainable tensors: name -> [shape, init std, init mean]. */
export const PARAMS: Record<string, [number[], number, number]> = {
  attn_norm: [[D], 0.1, 1],
  wq: [[nHeads * hd, D], 0.2, 0],
  wk: [[nKvHeads * hd, D], 0.2, 0],
  wv: [[nKvHeads * hd, D], 0.2, 0],
  wo: [[D, nHeads * hd], 0.2, 0],
  mlp_norm: [[D], 0.1, 1],
  gate: [[I, D], 0.2, 0],
  up: [[I, D], 0.2, 0],
  down: [[D, I], 0.2, 0],
  final_norm: [[D], 0.1, 1],
  lm_head: [[V, D], 0.2, 0],
};

export interface TinyData {
  embed: Float32Array; // [V, D] frozen
  params: Record<string, Float32Array>;
  batches: { ids: Int32Array; labels: Int32Array }[]; // [B*T] each
}

export function tinyData(seed: number, steps: number): TinyData {
  const rng = new Rng(seed);
  const draw = (n: number, std: number, mean = 0) => Float32Array.from({ length: n }, () => mean + std * rng.normal());
  const embed = draw(V * D, 1);
  const params = Object.fromEntries(Object.entries(PARAMS).map(([k, [s, std, mean]]) => [k, draw(s.reduce((a, b) => a * b), std, mean)]));
  const batches = Array.from({ length: steps }, () => {
    const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
    // Next-token labels, with the prompt-like first quarter of each row and each row's end ignored.
    const labels = Int32Array.from({ length: B * T }, (_, i) => (i % T < T / 4 || i % T === T - 1 ? -100 : ids[i + 1]!));
    return { ids, labels };
  });
  return { embed, params, batches };
}

export interface TinyStep {
  graph: Graph;
  opt: AdamWGraph;
}

export function buildTinyStep(data: TinyData): TinyStep {
  const g = new Graph('tiny_block_step');
  const p: Record<string, Tensor> = Object.fromEntries(Object.entries(PARAMS).map(([k, [s]]) => [k, g.input(k, 'float32', s)]));
  const ids = g.input('ids', 'int32', [B, T]);
  const labels = g.input('labels', 'int32', [B * T]);
  const embed = g.initializer('embed', 'float32', [V, D], { kind: 'inline', bytes: new Uint8Array(data.embed.buffer.slice(0)) });

  const loss = g.scope('model', () => {
    const x = F.gather(embed, ids); // [B, T, D]
    const attn = g.scope('attn', () =>
      nn.selfAttention(nn.rmsNorm(x, p.attn_norm!, CFG.eps), { q: p.wq!, k: p.wk!, v: p.wv!, o: p.wo! }, { nHeads, nKvHeads }));
    const h = F.add(x, attn); // [B, T, D]
    const mlp = g.scope('mlp', () => nn.gatedMlp(nn.rmsNorm(h, p.mlp_norm!, CFG.eps), { gate: p.gate!, up: p.up!, down: p.down! }));
    const h2 = F.add(h, mlp); // [B, T, D]
    const logits = nn.linear(nn.rmsNorm(h2, p.final_norm!, CFG.eps), p.lm_head!); // [B, T, V]
    return nn.crossEntropy(F.reshape(logits, [B * T, V]), labels); // []
  });
  const names = Object.keys(PARAMS);
  const grads = grad(loss, names.map((k) => p[k]!));
  g.output(loss, 'loss');
  const opt = appendAdamW(g, names.map((k) => p[k]!), grads, ADAMW);
  return { graph: g, opt };
}

/** The feeds of the first step: parameters, zero moments, step 1. */
export function initialFeeds(data: TinyData): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const [k, [shape]] of Object.entries(PARAMS)) {
    const n = shape.reduce((a, b) => a * b);
    feeds[k] = { dtype: 'float32', dims: shape, data: data.params[k]!.slice() };
    feeds[`${k}.adam_m`] = { dtype: 'float32', dims: shape, data: new Float32Array(n) };
    feeds[`${k}.adam_v`] = { dtype: 'float32', dims: shape, data: new Float32Array(n) };
  }
  return feeds;
}

/** Sets step t's batch and schedule in `feeds` (t counts from 0). */
export function setStep(feeds: Record<string, HostTensor>, data: TinyData, t: number): void {
  const b = data.batches[t]!;
  feeds.ids = { dtype: 'int32', dims: [B, T], data: b.ids };
  feeds.labels = { dtype: 'int32', dims: [B * T], data: b.labels };
  feeds['optim.lr'] = { dtype: 'float32', dims: [], data: Float32Array.of(LR[t]!) };
  feeds['optim.step'] = { dtype: 'float32', dims: [], data: Float32Array.of(t + 1) };
}

/** Feeds each updated parameter and moment back as the next step's input. */
export function carryState(feeds: Record<string, HostTensor>, out: Record<string, HostTensor>, opt: AdamWGraph): void {
  for (const s of opt.slots) for (const io of [s.param, s.m, s.v]) feeds[io.input] = out[io.output]!;
}

/** The request for test/oracle/composite.py's train_steps case. */
export function oracleRequest(data: TinyData, steps: number) {
  const f32 = (shape: number[], d: Float32Array): OracleTensor => tensor('float32', shape, d);
  return {
    case: 'train_steps',
    config: {
      eps: CFG.eps, n_heads: nHeads, n_kv_heads: nKvHeads, lr: LR.slice(0, steps), beta1: ADAMW.beta1, beta2: ADAMW.beta2,
      eps_adam: ADAMW.eps, weight_decay: ADAMW.weightDecay, max_grad_norm: ADAMW.maxGradNorm,
    },
    embed: f32([V, D], data.embed),
    params: Object.fromEntries(Object.entries(PARAMS).map(([k, [s]]) => [k, f32(s, data.params[k]!)])),
    batches: data.batches.slice(0, steps).map((b) => ({ ids: tensor('int32', [B, T], b.ids), labels: tensor('int32', [B * T], b.labels) })),
  };
}
