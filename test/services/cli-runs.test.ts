// Runs started from the `finch` command line appear in the app: a real `finch train` writes its
// run folder under FINCH_HOME/runs, and the services import it (origin 'cli') with its loss
// history, checkpoints and adapter, linked to the library's model when the model is there.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { startApp } from '../helpers/app.js';
import { finch, mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

test('a run made by `finch train` under FINCH_HOME appears in listRuns with its history', async () => {
  const model = tinyCheckpoint();
  const data = writeJsonl(join(tempDir(), 'math.jsonl'), mathRows(40));
  const app = await startApp('dispatcher');
  try {
    const m = await app.api.addLocalModel({ path: model, name: 'tiny' });
    assert.deepEqual(await app.api.listRuns(), []);
    process.env.FINCH_HOME = app.home;
    const out = join(app.home, 'runs', 'from-cli');
    const r = await finch(['train', '--model', model, '--data', data, '--map', 'prompt=query,completion=response', '--out', out,
      '--max-steps', '3', '--batch', '4', '--seq-len', '64', '--val-fraction', '0.1', '--checkpoint-every', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);

    const runs = await app.api.listRuns();
    assert.equal(runs.length, 1);
    const [run] = runs;
    assert.equal(run!.origin, 'cli');
    assert.equal(run!.status, 'completed');
    assert.equal(run!.step, 3);
    assert.equal(run!.modelId, m.id, 'linked to the library model with that folder');
    assert.equal(run!.adapterPath, out);
    const d = await app.api.runDetails(run!.id);
    assert.deepEqual(d.metrics.map((x) => x.step), [1, 2, 3]);
    assert.ok(d.metrics.every((x) => Number.isFinite(x.loss) && x.lr > 0));
    assert.equal(d.evals.length, 1);
    assert.deepEqual(d.checkpoints.map((c) => c.step), [2, 3]);
    // Found once: listing again imports nothing new.
    assert.equal((await app.api.listRuns()).length, 1);
  } finally {
    await app.close();
  }
});
