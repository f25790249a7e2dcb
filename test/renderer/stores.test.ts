import { settle } from './dom.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedApi } from './fake-api.ts';
import { runTrainEvent, type MemoryEstimateResult, type RunConfig } from '../../src-shared/api.ts';
import { RUN_DEFAULTS, RunConfig as RunConfigSchema } from '../../src-shared/schemas.ts';

const { useApi } = await import('../../src-renderer/src/lib/services/finch.ts');
const { RunView } = await import('../../src-renderer/src/lib/stores/runs.svelte.ts');
const { CompareSession } = await import('../../src-renderer/src/lib/stores/compare.svelte.ts');
const { Wizard, PRESETS, describePreset } = await import('../../src-renderer/src/lib/stores/wizard.svelte.ts');
const { parseRoute, routeHash } = await import('../../src-renderer/src/lib/stores/router.svelte.ts');

test('RunView grows its series from the trainer\'s events as the app tags them, and ignores a repeated step', () => {
  const v = new RunView('r1');
  // `finch train --json`'s step line, tagged with its run (api.ts runTrainEvent).
  const step = (s: number, loss: number) => runTrainEvent('r1', { event: 'step', step: s, total_steps: 10, loss, lr: 1e-3, grad_norm: 1, tokens_per_s: 500, elapsed_s: s, eta_s: 10 - s, rss_mb: 300 });
  v.apply({ type: 'run-status', runId: 'r1', status: 'running', error: null });
  v.apply(step(1, 2.5));
  v.apply(step(2, 2.1));
  v.apply(step(2, 2.1));
  v.apply(runTrainEvent('r1', { event: 'eval', step: 2, eval_loss: 2.2, perplexity: Math.exp(2.2) }));
  v.apply({ type: 'run-samples', runId: 'r1', step: 2, samples: [{ prompt: 'p', reference: 'r', answer: 'a', correct: false }] });
  v.apply({ type: 'run-log', runId: 'r1', line: { at: '2026-01-01T00:00:00Z', level: 'info', message: 'hello' } });
  assert.deepEqual(v.metrics.map((m) => m.loss), [2.5, 2.1]);
  assert.deepEqual(v.metrics[1], { step: 2, loss: 2.1, lr: 1e-3, grad_norm: 1, tokens_per_s: 500, rss_mb: 300 });
  assert.equal(v.step, 2);
  assert.equal(v.progress, 0.2);
  assert.equal(v.etaS, 8);
  assert.equal(v.evals[0]!.perplexity, Math.exp(2.2));
  assert.equal(v.samples[0]!.samples[0]!.answer, 'a');
  assert.equal(v.logs.length, 1);
  assert.equal(v.live, true);
  v.apply({ type: 'run-status', runId: 'r1', status: 'paused', error: null });
  assert.equal(v.etaS, null);
});

test('RunView: the charts follow a storm of steps a few times a second, the step counter follows each one', async () => {
  const { watch } = await import('./watch.svelte.ts');
  const { flushSync } = await import('svelte');
  const v = new RunView('storm');
  const charted = watch(() => v.chartMetrics.length), counted = watch(() => v.step);
  flushSync();
  for (let s = 1; s <= 500; s++) {
    v.apply(runTrainEvent('storm', { event: 'step', step: s, total_steps: 1e6, loss: 1, lr: 1e-3, grad_norm: 1, tokens_per_s: 500, elapsed_s: s, eta_s: 1, rss_mb: 300 }));
    flushSync();
  }
  assert.equal(counted.seen.at(-1), 500);
  assert.equal(counted.seen.length, 501, 'the step counter re-ran once per step');
  assert.deepEqual(charted.seen, [0, 1], 'the charts drew the first step at once and wait for the rest');
  await new Promise((r) => setTimeout(r, 400)); // > CHART_REDRAW_MS
  flushSync();
  assert.deepEqual(charted.seen, [0, 1, 500], 'then one redraw brought in the other 499 steps');
  charted.stop();
  counted.stop();
});

test('RunView follows what the run\'s job was asked ("pausing…") and what it is doing, until the job honours it', async () => {
  const { api } = scriptedApi({ pauseRun: async () => ({ status: 'running', request: 'pause' }) as never, cancelRun: async () => ({ status: 'paused', request: 'cancel' }) as never });
  useApi({ api, rpc: null });
  const v = new RunView('r2');
  v.apply({ type: 'run-status', runId: 'r2', status: 'running', error: null });
  v.apply(runTrainEvent('r2', { event: 'phase', phase: 'quantizing', step: 0 }));
  assert.equal(v.phase, 'quantizing');
  await v.pause();
  assert.deepEqual([v.status, v.request], ['running', 'pause'], 'pausing…: the job has not held yet');
  v.apply({ type: 'run-status', runId: 'r2', status: 'paused', error: null, request: null });
  assert.deepEqual([v.status, v.request], ['paused', null]);
  await v.cancel();
  assert.equal(v.request, 'cancel');
  v.apply(runTrainEvent('r2', { event: 'done', adapter: '', steps: 0, loss: null, eval_loss: null, status: 'cancelled' }));
  assert.deepEqual([v.status, v.request, v.phase], ['cancelled', null, null]);
});

test('CompareSession streams both sides of one generate call into two message lists, keeping each side its own history', async () => {
  const { api, emit, log } = scriptedApi({ generate: async () => ({ generationId: 'g1' }) });
  useApi({ api, rpc: null });
  const c = new CompareSession();
  c.setup('m1', { kind: 'base' }, { kind: 'run', runId: 'r1' }, { left: 'Base', right: 'Tuned' });
  await c.send('What is 2 + 3?');
  assert.equal(c.streaming, true);
  emit({ type: 'generation-delta', generationId: 'g1', side: 'left', text: 'It is ' });
  emit({ type: 'generation-delta', generationId: 'other', side: 'left', text: 'IGNORED' });
  emit({ type: 'generation-delta', generationId: 'g1', side: 'right', text: '5' });
  assert.equal(c.messages.left.at(-1)!.content, 'It is ');
  emit({ type: 'generation-done', generationId: 'g1', side: 'left', text: 'It is 6', tokens: 3, finish: 'eos', seconds: 0.1, tokensPerS: 30, weights: '4bit' });
  assert.equal(c.streaming, true, 'still waiting for the right side');
  emit({ type: 'generation-done', generationId: 'g1', side: 'right', text: '5', tokens: 1, finish: 'eos', seconds: 0.1, tokensPerS: 10, weights: '4bit' });
  assert.equal(c.streaming, false);
  assert.equal(c.messages.left.at(-1)!.content, 'It is 6');
  assert.equal(c.messages.right.at(-1)!.content, '5');
  assert.deepEqual(c.messages.left.at(-1)!.stats, { tokens: 3, tokensPerS: 30, finish: 'eos', weights: '4bit' });

  // The second turn sends each side its own earlier answer.
  await c.send('And 3 + 3?');
  const req = log.filter((l) => l.name === 'generate')[1]!.args[0] as { left: { messages: { content: string }[] }; right: { messages: { content: string }[]; side: unknown } };
  assert.deepEqual(req.left.messages.map((m) => m.content), ['What is 2 + 3?', 'It is 6', 'And 3 + 3?']);
  assert.deepEqual(req.right.messages.map((m) => m.content), ['What is 2 + 3?', '5', 'And 3 + 3?']);
  assert.deepEqual(req.right.side, { kind: 'run', runId: 'r1' });
});

test('CompareSession shows the 4-bit quantization before the first token, and only its own', async () => {
  const { api, emit } = scriptedApi({ generate: async () => ({ generationId: 'g7' }) });
  useApi({ api, rpc: null });
  const c = new CompareSession();
  c.setup('m1', { kind: 'base' }, { kind: 'base' }, { left: 'Base', right: 'Base' });
  await c.send('hi');
  emit({ type: 'generation-progress', generationId: 'other', phase: 'quantizing', done: 1, total: 9 });
  assert.equal(c.quantizing, null, 'another generation\'s progress');
  emit({ type: 'generation-progress', generationId: 'g7', phase: 'quantizing', done: 3, total: 9 });
  assert.deepEqual(c.quantizing, { done: 3, total: 9 });
  emit({ type: 'generation-delta', generationId: 'g7', side: 'left', text: 'Hel' });
  assert.equal(c.quantizing, null, 'the first token ends it');
});

test('CompareSession puts a failed generate back as it was and keeps the error to show', async () => {
  const { api } = scriptedApi({ generate: async () => { throw Object.assign(new Error('no adapter for run r9'), { code: 'not_found', hint: 'finish the run first' }); } });
  useApi({ api, rpc: null });
  const c = new CompareSession();
  c.setup('m1', { kind: 'base' }, { kind: 'run', runId: 'r9' }, { left: 'Base', right: 'Tuned' });
  await c.send('hi');
  assert.equal(c.messages.left.length, 0);
  assert.equal(c.streaming, false);
  assert.equal((c.error as { hint: string }).hint, 'finish the run first');
});

test('Wizard: presets set exactly what they list; a memory suggestion applies in one call and re-estimates', async () => {
  const estimates: RunConfig[] = [];
  const verdict = (cfg: RunConfig): MemoryEstimateResult => ({
    hostBytes: cfg.seqLen * 1e6, parts: {}, gpuBytes: null, availableHostBytes: 400e6, totalHostBytes: 1e9, availableGpuBytes: null,
    totalGpuBytes: null, gpuName: null, gpuNote: null, unifiedMemory: false, computeDtype: 'float32',
    verdict: cfg.seqLen > 256 ? 'will-not-fit' : 'fits', provider: 'cpu',
    suggestions: cfg.seqLen > 256 ? [{ text: 'Sequence length 256', change: { seqLen: 256 }, hostBytes: 256e6, gpuBytes: null }] : [],
  });
  const { api } = scriptedApi({ estimateMemory: async (cfg) => { estimates.push(cfg); return verdict(cfg); } });
  useApi({ api, rpc: null });
  const w = new Wizard();
  w.modelId = 'm1';
  w.datasetId = 'd1';
  w.applyPreset('quality');
  assert.equal(w.knobs.lora.rank, PRESETS.quality.set.lora!.rank);
  assert.ok(describePreset('quality').some((l) => l.includes('rank 32')));
  await w.runEstimate();
  assert.equal(w.estimate!.verdict, 'will-not-fit');
  w.apply(w.estimate!.suggestions[0]!.change);
  assert.equal(w.knobs.seqLen, 256);
  assert.equal(w.preset, null, 'a changed knob is no longer the preset');
  assert.equal(w.knobs.lora.rank, 32, 'the rest of the settings stay');
  await new Promise((r) => setTimeout(r, 400));
  await settle();
  assert.equal(w.estimate!.verdict, 'fits');
  assert.equal(estimates.at(-1)!.seqLen, 256);
  assert.equal(estimates.at(-1)!.modelId, 'm1');
});

test('every preset is a run the app accepts: its settings parse with the run-configuration schema as they are', () => {
  for (const [name, p] of Object.entries(PRESETS)) {
    const config = { ...RUN_DEFAULTS, ...p.set, modelId: 'm', datasetId: 'd' };
    const parsed = RunConfigSchema.safeParse(config);
    assert.ok(parsed.success, `${name}: ${parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    assert.deepEqual(parsed.data, config, `${name}: the schema changed nothing`);
  }
});

test('routes round-trip through the URL hash', () => {
  for (const r of [{ name: 'home' }, { name: 'wizard' }, { name: 'run', id: 'a b' }, { name: 'compare', id: null }, { name: 'compare', id: 'x' }, { name: 'export', id: 'y' }] as const) {
    assert.deepEqual(parseRoute(routeHash(r)), r);
  }
  assert.deepEqual(parseRoute('#/nonsense'), { name: 'home' });
});

test('RunView keeps a preference run\'s reward metrics from its step and eval events, and none for SFT', () => {
  const v = new RunView('r2');
  const rewards = { rewards_chosen: 0.3, rewards_rejected: -0.1, reward_margin: 0.4, reward_accuracy: 0.75 };
  v.apply(runTrainEvent('r2', { event: 'step', step: 1, total_steps: 4, loss: 0.69, lr: 1e-3, grad_norm: 1, tokens_per_s: 500, elapsed_s: 1, eta_s: 3, rss_mb: 300, ...rewards }));
  v.apply(runTrainEvent('r2', { event: 'eval', step: 1, eval_loss: 0.6, perplexity: Math.exp(0.6), ...rewards, reward_accuracy: 0.5 }));
  assert.deepEqual(v.metrics[0], { step: 1, loss: 0.69, lr: 1e-3, grad_norm: 1, tokens_per_s: 500, rss_mb: 300, ...rewards });
  assert.equal(v.evals[0]!.reward_accuracy, 0.5);
  assert.equal(v.evals[0]!.reward_margin, 0.4);
});
