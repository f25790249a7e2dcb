// The compare engine in 4 bits, as a model too large for float32 gets it (FINCH_CHAT_WEIGHTS=4bit
// forces it for the demo model): it reuses the 4-bit blocks the QLoRA run cached, answers base and
// tuned side by side with int8 activations, and says so in every answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FinchEvent } from '../../src-shared/api.js';
import { CHAT_WEIGHTS_ENV } from '../../src-main/infer/chat-weights.js';
import { clearQuantCache, listQuantCache } from '../../src-main/model/quant-cache.js';
import { startApp } from '../helpers/app.js';

test('the compare engine answers in 4 bits from the blocks the QLoRA run cached', async () => {
  process.env[CHAT_WEIGHTS_ENV] = '4bit'; // read by the generation job, forked from this process
  const app = await startApp('dispatcher');
  try {
    const { api } = app;
    const { model, config } = await api.startDemo({ start: false });
    const run = await api.startRun({ ...config, name: '4-bit chat', maxSteps: 8, checkpointEvery: 8 });
    const done = await app.waitFor((e): e is Extract<FinchEvent, { type: 'run-status' }> => e.type === 'run-status' && e.runId === run.id && ['completed', 'failed'].includes(e.status), 'the demo run to end');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const cached = listQuantCache().map((c) => [c.key, c.blockSize]);
    assert.equal(cached.length, 1, 'the QLoRA run cached its 4-bit blocks');

    const messages = [{ role: 'user' as const, content: 'Tom has 3 apples and buys 4 more. How many apples does Tom have now?' }];
    const { generationId } = await api.generate({ modelId: model.id, left: { side: { kind: 'base' }, messages }, right: { side: { kind: 'run', runId: run.id }, messages }, maxNewTokens: 24 });
    const finished = (side: 'left' | 'right') =>
      app.waitFor((e): e is Extract<FinchEvent, { type: 'generation-done' }> => e.type === 'generation-done' && e.generationId === generationId && e.side === side, `the ${side} answer`);
    const answers = await Promise.all([finished('left'), finished('right')]);
    for (const a of answers) {
      assert.equal(a.weights, '4bit', `${a.side}: answered from 4-bit weights`);
      assert.ok(a.tokens > 0 && a.text.length > 0, `${a.side}: an answer`);
    }
    assert.deepEqual(listQuantCache().map((c) => [c.key, c.blockSize]), cached, 'the chat reused the run\'s blocks instead of quantizing again');
    assert.ok(!app.events.some((e) => e.type === 'generation-progress'), 'nothing to quantize');

    // With the cache emptied the engine quantizes once, with progress, before the first token.
    app.services.generation.close(); // the next request starts a fresh engine, with nothing loaded
    clearQuantCache();
    const cold = await api.generate({ modelId: model.id, left: { side: { kind: 'base' }, messages }, maxNewTokens: 4 });
    const answer = await app.waitFor((e): e is Extract<FinchEvent, { type: 'generation-done' }> => e.type === 'generation-done' && e.generationId === cold.generationId, 'the answer after quantizing');
    assert.equal(answer.weights, '4bit');
    const progress = app.events.filter((e): e is Extract<FinchEvent, { type: 'generation-progress' }> => e.type === 'generation-progress' && e.generationId === cold.generationId);
    assert.ok(progress.length >= 2 && progress.at(-1)!.done === progress.at(-1)!.total, `progress up to every weight: ${JSON.stringify(progress.at(-1))}`);
  } finally {
    delete process.env[CHAT_WEIGHTS_ENV];
    await app.close();
  }
});
