// Cutting a training step's memory into forward, backward and optimizer by its profiled nodes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NodeSpan, phaseMemory, phaseOfNode } from '../../src-main/bench/step-phases.js';
import type { RssSample } from '../../src-main/bench/rss-sampler.js';

test('phaseOfNode reads the phase from the step graph scopes', () => {
  assert.equal(phaseOfNode('layers.3/attn/q_proj/MatMul'), 'forward');
  assert.equal(phaseOfNode('layers.3/attn/q_proj/MatMul/grad/MatMul_1'), 'backward');
  assert.equal(phaseOfNode('segment.1/recompute/layers.4/mlp/Mul'), 'backward');
  assert.equal(phaseOfNode('optimizer/adamw/Sqrt'), 'optimizer');
  assert.equal(phaseOfNode('regrade/Mul'), 'forward', 'a name containing "grad" is not a gradient node');
});

test('phaseMemory gives each sample to the node running at its time', () => {
  const span = (name: string, start: number, end: number): NodeSpan => ({ name, phase: phaseOfNode(name), start, end, outputBytes: 0 });
  const spans = [span('a/MatMul', 100, 200), span('a/MatMul/grad/x', 200, 400), span('optimizer/Add', 400, 405)];
  const sample = (t: number, anon: number): RssSample => ({ t, rss: anon + 10, anon, file: 10 });
  const samples = [sample(90, 50), sample(150, 80), sample(250, 120), sample(350, 100), sample(500, 60)];
  const m = phaseMemory(spans, samples, 95);
  assert.deepEqual(m.forward, { s: 0.1, anon_mb: 80, added_anon_mb: 30, rss_mb: 90, peak_node: 'a/MatMul' });
  assert.deepEqual(m.backward, { s: 0.2, anon_mb: 120, added_anon_mb: 70, rss_mb: 130, peak_node: 'a/MatMul/grad/x' });
  // The update ran between two samples: it reports the first sample after it started.
  assert.deepEqual(m.optimizer, { s: 0.005, anon_mb: 60, added_anon_mb: 10, rss_mb: 70, peak_node: null });
});
