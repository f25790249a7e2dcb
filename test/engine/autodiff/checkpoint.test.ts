// Gradient checkpointing (Graph.checkpoint + grad.ts's Recomputer): the backward of a checkpointed
// graph gives the same gradients as the plain graph, recomputes the segment's forward in clones
// named "<segment>/recompute/...", never reads an activation from inside a segment, cannot run
// a clone before the backward reaches it, and lowers ONNX Runtime's peak memory.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph, type Node, type Tensor } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { Rng, gradcheck, relError } from '../../helpers/gradcheck.js';

// ORT's extended optimizations fuse x * sigmoid(x) into com.microsoft.QuickGelu, which has only
// a float32 CPU kernel: float64 graphs with SiLU then fail to load. 'basic' keeps them loadable.
const FLOAT64_SAFE = 'basic' as const;

const SHAPES = { x: [4, 6], w1: [6, 8], w2: [8, 6], s: [6] } as const;

/** Two residual blocks: h = h + (silu(tanh(h @ w1)) @ w2) * s, each optionally a checkpoint segment. */
function block(h: Tensor, w1: Tensor, w2: Tensor, s: Tensor): Tensor {
  const a = F.tanh(F.matmul(h, w1)); // [4, 8]
  const b = F.mul(F.sigmoid(a), a);
  return F.add(F.mul(F.matmul(b, w2), s), h); // [4, 6]
}

function build(checkpoint: boolean, recompute?: boolean) {
  const g = new Graph('ckpt');
  const [x, w1, w2, s] = (['x', 'w1', 'w2', 's'] as const).map((n) => g.input(n, 'float64', SHAPES[n]));
  let h = x!;
  for (let l = 0; l < 2; l++) {
    const f = () => block(h, w1!, w2!, s!);
    h = checkpoint ? g.checkpoint(`layer${l}`, f) : g.scope(`layer${l}`, f);
  }
  const loss = F.reduceSum(F.mul(h, h), [0, 1], false);
  const forwardEnd = g.nodes.length;
  const grads = grad(loss, [x!, w1!, w2!, s!], recompute === undefined ? {} : { recompute });
  g.output(loss, 'loss');
  grads.forEach((d, i) => g.output(d, `grad/${['x', 'w1', 'w2', 's'][i]}`));
  return { g, forwardEnd };
}

async function run(g: Graph): Promise<Record<string, Float64Array>> {
  const rng = new Rng(3);
  const feeds: Parameters<Session['run']>[0] = {};
  for (const [name, shape] of Object.entries(SHAPES)) {
    feeds[name] = { dtype: 'float64', dims: shape, data: Float64Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => rng.normal()) };
  }
  const session = await Session.create(serializeModel(g), { threads: 1, optimization: FLOAT64_SAFE });
  const r = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float64Array]));
}

const recomputed = (g: Graph) => g.nodes.filter((n) => n.name.includes('/recompute/'));

test('checkpointed gradients equal the plain ones', async () => {
  const plain = await run(build(false).g);
  const ckpt = await run(build(true).g);
  for (const k of ['loss', 'grad/x', 'grad/w1', 'grad/w2', 'grad/s']) {
    assert.ok(relError(ckpt[k]!, plain[k]!) <= 1e-14, `${k}: checkpointed and plain results differ`);
  }
});

test('the backward recomputes each segment in "<segment>/recompute" clones', () => {
  const { g } = build(true);
  for (const seg of ['layer0', 'layer1']) {
    const ops = recomputed(g).filter((n) => n.name.startsWith(`${seg}/recompute/`)).map((n) => n.op);
    for (const op of ['MatMul', 'Tanh', 'Sigmoid']) assert.ok(ops.includes(op), `${seg}: no recomputed ${op} (have ${ops.join(', ')})`);
  }
  assert.equal(recomputed(build(false).g).length, 0, 'a graph without segments recomputes nothing');
  assert.equal(recomputed(build(true, false).g).length, 0, 'grad(..., { recompute: false }) recomputes nothing');
});

test('the backward reads no activation internal to a segment', () => {
  const { g, forwardEnd } = build(true);
  const segmentOf = new Map<string, number>(); // tensor -> segment of its producer
  for (const n of g.nodes.slice(0, forwardEnd)) if (n.segment !== null) for (const o of n.outputs) segmentOf.set(o.name, n.segment);
  // A segment's outputs (read in the forward outside the segment) stay alive anyway; the rest must not.
  const escapes = new Set<string>();
  for (const n of g.nodes.slice(0, forwardEnd)) {
    for (const t of n.inputs) if (t && segmentOf.has(t.name) && segmentOf.get(t.name) !== n.segment) escapes.add(t.name);
  }
  for (const n of g.nodes.slice(forwardEnd)) {
    for (const t of n.inputs) {
      if (t && segmentOf.has(t.name) && !escapes.has(t.name)) assert.fail(`backward node ${n.name} reads ${t.name}, internal to segment ${segmentOf.get(t.name)}`);
    }
  }
});

test('every recomputed node waits for the backward (depends on a gradient)', () => {
  const { g } = build(true);
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o.name, n);
  const afterBackward = new Map<Node, boolean>();
  const waits = (n: Node): boolean => {
    const known = afterBackward.get(n);
    if (known !== undefined) return known;
    const r = n.name.includes('/grad/') || n.inputs.some((t) => !!t && !!producer.get(t.name) && waits(producer.get(t.name)!));
    afterBackward.set(n, r);
    return r;
  };
  for (const n of recomputed(g)) assert.ok(waits(n), `${n.name} could run during the forward: it depends on no gradient`);
});

test('checkpointed graph passes the finite-difference check', async () => {
  await gradcheck('Tanh', (b) => {
    const x = b.input('x', [...SHAPES.x]), w1 = b.input('w1', [...SHAPES.w1]), w2 = b.input('w2', [...SHAPES.w2]), s = b.input('s', [...SHAPES.s]);
    let h = x;
    for (let l = 0; l < 2; l++) h = b.g.checkpoint(`layer${l}`, () => block(h, w1, w2, s));
    return h;
  }, { label: 'two checkpointed residual blocks', tol: 1e-8, optimization: FLOAT64_SAFE });
});

// Peak memory as ONNX Runtime sees it is only visible through its profiler, which session.ts does
// not expose; the process's peak RSS in a fresh child is a cruder but sufficient signal.
test('checkpointing lowers peak memory of a training step', () => {
  const child = fileURLToPath(new URL('./checkpoint-memory.child.ts', import.meta.url));
  const peak = (mode: string) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, mode], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${mode} child failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { mb: number; loss: number };
  };
  const plain = peak('plain'), ckpt = peak('checkpoint');
  assert.equal(ckpt.loss, plain.loss);
  assert.ok(ckpt.mb < 0.6 * plain.mb, `checkpointing should cut peak memory: plain +${plain.mb} MB, checkpointed +${ckpt.mb} MB`);
});
