// Finch's composite blocks (engine/nn/layers.ts) against PyTorch (test/oracle/composite.py):
// forward values and gradients in float32, relative difference <= 1e-5 per tensor.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as nn from '../../../src-main/engine/nn/layers.js';
import { checkCase } from './harness.js';

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
