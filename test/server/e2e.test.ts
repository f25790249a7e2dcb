// End to end over browser mode's WebSocket: the demo model and dataset join the library
// (startDemo), a short run trains them (startRun) with live step events and sample answers, base
// and tuned answers stream side by side from one loaded model, a comparison is saved, and after
// the server and services restart on the same FINCH_HOME everything is still there.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FinchEvent } from '../../src-shared/api.js';
import { startApp } from '../helpers/app.js';

const STEPS = 24;
const QUESTION = 'Mia has 7 marbles and finds 5 more. How many marbles does Mia have now?';

test('train the demo over the WebSocket, compare base and tuned, and find it all after a restart', async () => {
  const app = await startApp('websocket');
  const { api } = app;
  const { model, dataset, config } = await api.startDemo({ start: false });
  const run = await api.startRun({ ...config, name: 'e2e demo', maxSteps: STEPS, checkpointEvery: STEPS, samplePrompts: 2 });
  assert.ok(run.status === 'queued' || run.status === 'running');
  const done = await app.waitFor((e): e is Extract<FinchEvent, { type: 'run-status' }> => e.type === 'run-status' && e.runId === run.id && ['completed', 'failed'].includes(e.status));
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  const steps = app.events.filter((e) => e.type === 'run-step' && e.runId === run.id) as Extract<FinchEvent, { type: 'run-step' }>[];
  assert.deepEqual(steps.map((s) => s.step), Array.from({ length: STEPS }, (_, i) => i + 1));
  assert.ok(steps.every((s) => s.tokens_per_s > 0 && s.rss_mb > 0 && s.lr > 0));
  assert.ok(steps.at(-1)!.loss < steps[0]!.loss, `loss should fall: ${steps[0]!.loss} -> ${steps.at(-1)!.loss}`);
  const sampled = await app.waitFor((e): e is Extract<FinchEvent, { type: 'run-samples' }> => e.type === 'run-samples' && e.runId === run.id);
  assert.equal(sampled.samples.length, 2);
  assert.ok(sampled.samples.every((s) => s.prompt.length > 0 && typeof s.answer === 'string'));

  // Base on the left, the run's adapter on the right: one request, both streamed.
  const messages = [{ role: 'user' as const, content: QUESTION }];
  const { generationId } = await api.generate({ modelId: model.id, left: { side: { kind: 'base' }, messages }, right: { side: { kind: 'run', runId: run.id }, messages }, maxNewTokens: 40 });
  const finished = (side: 'left' | 'right') => app.waitFor((e): e is Extract<FinchEvent, { type: 'generation-done' }> => e.type === 'generation-done' && e.generationId === generationId && e.side === side);
  const [left, right] = await Promise.all([finished('left'), finished('right')]);
  for (const d of [left, right]) {
    const streamed = app.events.filter((e) => e.type === 'generation-delta' && e.generationId === generationId && e.side === d.side).map((e) => (e as { text: string }).text).join('');
    assert.equal(streamed, d.text, `${d.side}: the deltas add up to the answer`);
    assert.ok(d.text.length > 0 && d.tokens > 0);
    assert.equal(d.weights, 'float32', `${d.side}: the demo model's float32 weights fit any machine's memory`);
  }
  console.log(`# base: ${JSON.stringify(left.text)}\n# tuned (${STEPS} steps): ${JSON.stringify(right.text)}`);
  assert.notEqual(right.text, left.text, 'the tuned side answers differently from the base');

  // A long sampled answer stopped at once ends 'stopped', well short of its token budget.
  const long = await api.generate({ modelId: model.id, left: { side: { kind: 'run', runId: run.id }, messages }, maxNewTokens: 400, sampling: { temperature: 1.5, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 } });
  await api.stopGeneration(long.generationId);
  const stopped = await app.waitFor((e): e is Extract<FinchEvent, { type: 'generation-done' }> => e.type === 'generation-done' && e.generationId === long.generationId);
  assert.equal(stopped.finish, 'stopped');
  assert.ok(stopped.tokens < 400);

  const saved = await api.saveComparison({
    modelId: model.id, left: { kind: 'base' }, right: { kind: 'run', runId: run.id }, messages,
    leftOutput: left.text, rightOutput: right.text, rating: 'right', notes: 'tuned follows the answer format',
  });
  const home = app.home;
  await app.close();

  // A new server and services over the same FINCH_HOME.
  const again = await startApp('websocket', home);
  try {
    const runs = await again.api.listRuns();
    assert.deepEqual(runs.map((r) => [r.id, r.status, r.step]), [[run.id, 'completed', STEPS]]);
    const details = await again.api.runDetails(run.id);
    assert.equal(details.metrics.length, STEPS);
    assert.deepEqual(details.metrics.map((m) => m.loss), steps.map((s) => s.loss));
    assert.ok(details.samples.length >= 1 && details.checkpoints.some((c) => c.step === STEPS));
    assert.ok(details.adapterPath && existsSync(join(details.adapterPath, 'adapter_model.safetensors')));
    assert.equal(details.config?.maxSteps, STEPS);
    assert.ok(details.logs.length > 0);
    assert.deepEqual((await again.api.listModels()).map((m) => m.id), [model.id]);
    assert.deepEqual((await again.api.listDatasets()).map((d) => d.id), [dataset.id]);
    assert.deepEqual((await again.api.listAdapters()).map((a) => a.runId), [run.id]);
    const comparisons = await again.api.listComparisons({ runId: run.id });
    assert.deepEqual(comparisons.map((c) => [c.id, c.rightOutput, c.rating]), [[saved.id, right.text, 'right']]);
  } finally {
    await again.close();
  }
});
