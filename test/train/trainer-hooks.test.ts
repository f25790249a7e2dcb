// The one way into training (train/trainer.ts train) and its hook: the loop calls onEvaluated after
// the checkpoint of a step that evaluated and after the last step's, with that checkpoint (a PEFT
// adapter) and the run's model, and waits for it before the next step. A model the caller opened
// (openTrainingModel, as the demo does) is used as it is and stays open.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadPeftAdapter } from '../../src-main/model/adapter.js';
import type { LoadedModel } from '../../src-main/model/load.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';
import { openTrainingModel, train } from '../../src-main/train/trainer.js';
import { mathRows, tempDir, tinyCheckpoint, useFinchHome, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
const restoreHome = useFinchHome(join(work, 'home')); // the 4-bit weight cache
after(() => { restoreHome(); rmSync(work, { recursive: true, force: true }); });
const data = writeJsonl(join(work, 'math.jsonl'), mathRows(40));

const config = (out: string, over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TRAIN_DEFAULTS, model, data, out: join(work, out), map: { prompt: 'query', completion: 'response' },
  batch: 4, lr: 5e-3, maxSteps: 8, valFraction: 0.1, evalEvery: 2, checkpointEvery: 4, seed: 3, threads: 1, quantize: true, provider: 'cpu', ...over,
});

interface Call { step: number; dir: string; model: LoadedModel; eventsBefore: number; eventsAfter: number }

/** Trains cfg with a hook that records its calls and takes 50 ms, to show whether the loop waits for it. */
async function trainWithHook(cfg: TrainConfig, opened?: Awaited<ReturnType<typeof openTrainingModel>>) {
  const events: TrainEvent[] = [], calls: Call[] = [];
  await train(cfg, (e) => events.push(e), undefined, {
    model: opened,
    hooks: {
      onEvaluated: async (step, dir, m) => {
        const eventsBefore = events.length;
        await new Promise((r) => setTimeout(r, 50));
        // The adapter of that checkpoint loads, for the model the run trains.
        assert.ok(loadPeftAdapter(dir, m.config).tensors.size > 0);
        calls.push({ step, dir, model: m, eventsBefore, eventsAfter: events.length });
      },
    },
  });
  return { events, calls };
}

test('onEvaluated follows the checkpoint of each evaluated step and of the last step, and the loop waits for it', async () => {
  const { events, calls } = await trainWithHook(config('evaluated'));
  // Evaluations at 2, 4, 6, 8; checkpoints at 4 and 8: a hook where both happen.
  assert.deepEqual(events.filter((e) => e.event === 'eval').map((e) => e.step), [2, 4, 6, 8]);
  assert.deepEqual(calls.map((c) => c.step), [4, 8]);
  for (const c of calls) {
    const i = c.eventsBefore - 1;
    assert.deepEqual(events[i], { event: 'checkpoint', step: c.step, path: c.dir }, 'called right after its checkpoint');
    assert.equal(c.eventsAfter, c.eventsBefore, 'nothing happened while the hook ran');
    assert.equal(c.model.weights.quantize, true);
  }
  assert.equal(events.at(-1)!.event, 'done');
});

test('without a validation split the hook follows the last step\'s checkpoint only', async () => {
  const { calls } = await trainWithHook(config('no-validation', { valFraction: 0, evalEvery: 0, maxSteps: 6, checkpointEvery: 2 }));
  assert.deepEqual(calls.map((c) => c.step), [6]);
});

test('a model opened by the caller is trained as it is and stays open; the ready event reports its load', async () => {
  const cfg = config('opened', { maxSteps: 4, checkpointEvery: 4, evalEvery: 0 });
  const opened = await openTrainingModel(cfg, { generates: true });
  try {
    const { events, calls } = await trainWithHook(cfg, opened);
    assert.deepEqual(calls.map((c) => c.step), [4]);
    assert.equal(calls[0]!.model, opened.model);
    const ready = events.find((e) => e.event === 'ready') as Extract<TrainEvent, { event: 'ready' }>;
    assert.equal(ready.load_s, opened.loadS);
    assert.equal(ready.int4_source, opened.int4Source);
    assert.ok(opened.int4Source === 'quantized' || opened.int4Source === 'cache');
    // Still open: its weights gather embedding rows after the run.
    assert.equal(opened.model.weights.embedRows(BigInt64Array.of(1n, 2n)).length, 2 * opened.model.config.hiddenSize);
  } finally {
    opened.model.close();
  }
  // A model loaded for another precision is refused with what to do.
  const float = await openTrainingModel({ ...cfg, quantize: false }, { generates: false });
  try {
    await assert.rejects(train(cfg, () => {}, undefined, { model: float }), /loaded in full precision but the run asks for 4-bit \(block 32\); load it with the run's settings/);
  } finally {
    float.model.close();
  }
});
