// Finch's composite blocks (engine/nn/layers.ts) against PyTorch (test/oracle/composite.py):
// forward values and gradients in float32, relative difference <= 1e-5 per tensor.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import * as nn from '../../../src-main/engine/nn/layers.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';
import { Rng } from '../../helpers/gradcheck.js';
import { checkCase, host, randomData } from './harness.js';

test('rmsNorm matches torch (Llama RMSNorm), values and gradients', async () => {
  const { comparison } = await checkCase(
    'rms_norm', 11,
    // Small activations (mean square ~0.01) so that eps visibly matters.
    { x: { shape: [2, 5, 48], std: 0.1 }, weight: { shape: [48], mean: 1, std: 0.2 } },
    ['x', 'weight'],
    (t) => nn.rmsNorm(t.x!, t.weight!, 1e-5),
    { eps: 1e-5 },
  );
  console.log(comparison.summary());
});

test('silu matches torch', async () => {
  const { comparison } = await checkCase('silu', 12, { x: { shape: [4, 33], std: 3 } }, ['x'], (t) => nn.silu(t.x!));
  console.log(comparison.summary());
});

test('gated MLP (Llama SwiGLU) matches torch, 3-D input', async () => {
  const { comparison } = await checkCase(
    'gated_mlp', 13,
    {
      x: { shape: [2, 6, 32] },
      gate: { shape: [80, 32], std: 0.2 },
      up: { shape: [80, 32], std: 0.2 },
      down: { shape: [32, 80], std: 0.2 },
    },
    ['x', 'gate', 'up', 'down'],
    (t) => nn.gatedMlp(t.x!, { gate: t.gate!, up: t.up!, down: t.down! }),
  );
  console.log(comparison.summary());
});

for (const [nHeads, nKvHeads] of [[4, 4], [4, 2]] as const) {
  test(`causal self-attention, ${nHeads} heads / ${nKvHeads} kv heads, matches torch`, async () => {
    const D = 32, hd = 8;
    const { comparison } = await checkCase(
      'self_attention', 14 + nKvHeads,
      {
        x: { shape: [2, 7, D] },
        wq: { shape: [nHeads * hd, D], std: 0.3 },
        wk: { shape: [nKvHeads * hd, D], std: 0.3 },
        wv: { shape: [nKvHeads * hd, D], std: 0.3 },
        wo: { shape: [D, nHeads * hd], std: 0.3 },
      },
      ['x', 'wq', 'wk', 'wv', 'wo'],
      (t) => nn.selfAttention(t.x!, { q: t.wq!, k: t.wk!, v: t.wv!, o: t.wo! }, { nHeads, nKvHeads }),
      { n_heads: nHeads, n_kv_heads: nKvHeads },
    );
    console.log(comparison.summary());
  });
}

test('cross-entropy with ignored (-100) rows matches torch.nn.functional.cross_entropy', async () => {
  const N = 12, V = 50;
  const labels = [3, -100, 49, 0, 17, -100, 17, 8, -100, 22, 1, 40];
  const { comparison, loss } = await checkCase(
    'cross_entropy', 16,
    { logits: { shape: [N, V], std: 4 }, labels: { shape: [N], dtype: 'int32', data: labels } },
    ['logits'],
    (t) => nn.crossEntropy(t.logits!, t.labels!),
    {},
    { probe: false },
  );
  console.log(comparison.summary());
  assert.ok(loss > 1 && loss < 20, `loss ${loss} is implausible for random logits`);
});

test('cross-entropy stays finite for huge logits (shifted log-sum-exp)', async () => {
  const N = 4, V = 6;
  const logits = Array.from({ length: N * V }, (_, i) => (i % V === 2 ? 1e4 : -1e4 + i));
  const { comparison } = await checkCase(
    'cross_entropy', 17,
    { logits: { shape: [N, V], data: logits }, labels: { shape: [N], dtype: 'int32', data: [2, 0, -100, 5] } },
    ['logits'],
    (t) => nn.crossEntropy(t.logits!, t.labels!),
    {},
    { probe: false },
  );
  console.log(comparison.summary());
});

// The fused head loss (vocabulary pieces that bring their own gradient) against autodiff over the
// whole head: the loss agrees to 1e-6, dLoss/dh to 1e-5 of its largest entry. Pieces of uneven
// size, a piece whose logits dwarf the others' (the online rescaling), ignored rows, and a batch
// where every row is ignored (loss and gradient 0, not NaN). Logits near 1e3 carry float32 rounding
// of about 6e-5 (their ulp), which each side's softmax inherits as a relative error: there dLoss/dh
// agrees to 1e-4 (measured 2.6e-5).
for (const [label, huge, labels] of [
  ['random logits', false, [3, -100, 49, 0, 17, -100, 17, 8, -100, 22, 1, 40]],
  ['one piece 1e3 above the rest', true, [3, -100, 49, 0, 17, -100, 17, 8, -100, 22, 1, 40]],
  ['every row ignored', false, Array<number>(12).fill(-100)],
] as const) {
  test(`fusedHeadCrossEntropy equals autodiff of the whole head's cross-entropy: ${label}`, async () => {
    const N = 12, D = 16, V = 50, sizes = [7, 20, 11, 12];
    const rng = new Rng(31);
    const hData = randomData(rng, N * D);
    const wData = randomData(rng, V * D, 0.5);
    if (huge) for (let v = 27; v < 38; v++) for (let d = 0; d < D; d++) wData[v * D + d]! += 1e3 / D * Math.sign(hData[d]!); // piece 3's logits for row 0 ~ +1e3
    const g = new Graph('fused_head');
    const h = g.input('h', 'float32', [N, D]);
    const lab = g.input('labels', 'int32', [N]);
    const w = g.initializer('w', 'float32', [V, D], { kind: 'inline', bytes: new Uint8Array(wData.buffer) });
    const whole = nn.crossEntropy(nn.linear(h, w), lab);
    const [dWhole] = grad(whole, [h]);
    const pieces = F.split(w, sizes, 0);
    const fused = nn.fusedHeadCrossEntropy(h, lab, sizes.map((size, j) => ({
      size, weight: () => ({ forward: (x) => nn.linear(x, pieces[j]!), backward: (dy) => F.matmul(dy, pieces[j]!), rows: (ids) => F.gather(pieces[j]!, ids) }),
    })));
    g.output(whole, 'whole'); g.output(dWhole!, 'd_whole'); g.output(fused.loss, 'fused'); g.output(fused.dh, 'd_fused');
    const s = await Session.create(serializeModel(g), { threads: 1 });
    const out = await s.run({ h: host('float32', [N, D], hData), labels: host('int32', [N], Int32Array.from(labels)) });
    await s.release();
    const loss = (k: string) => (out[k]!.data as Float32Array)[0]!;
    assert.ok(Number.isFinite(loss('fused')), `loss ${loss('fused')}`);
    assert.ok(Math.abs(loss('fused') - loss('whole')) <= 1e-6 * Math.max(1, Math.abs(loss('whole'))), `loss ${loss('fused')} vs ${loss('whole')}`);
    const a = out.d_fused!.data as Float32Array, b = out.d_whole!.data as Float32Array;
    const scale = Math.max(...b.map(Math.abs));
    const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
    if (labels.every((l) => l === -100)) assert.ok(a.every((x) => x === 0), 'every row ignored: dh is 0');
    else assert.ok(worst <= (huge ? 1e-4 : 1e-5) * scale, `dh differs by ${worst} (largest entry ${scale})`);
  });
}
