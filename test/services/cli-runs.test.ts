// Runs started from the `finch` command line appear in the app: a real `finch train` writes its
// run folder under FINCH_HOME/runs, and the services import it (origin 'cli') with its loss
// history, checkpoints and adapter, linked to the library's model when the model is there; that
// adapter then exports, imports back, merges into its base, and answers a batch comparison.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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

    // Its adapter exports, imports back (checked against the base) and merges into the base.
    const exported = await app.api.exportAdapter({ source: { kind: 'run', runId: run!.id }, dest: join(tempDir(), 'exported') });
    assert.deepEqual(exported.files.map((f) => f.name).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    await assert.rejects(app.api.exportAdapter({ source: { kind: 'run', runId: run!.id }, dest: exported.path }), (e: { code: string; message: string }) => e.code === 'conflict' && /not empty/.test(e.message));
    const imported = await app.api.importAdapter({ path: exported.path, baseModelId: m.id, name: 'round trip' });
    assert.equal(imported.rank, 16);
    const merged = await app.api.exportMerged({ modelId: m.id, source: { kind: 'adapter', adapterId: imported.id }, dest: join(tempDir(), 'merged') });
    assert.ok(merged.files.some((f) => f.name.endsWith('.safetensors')) && merged.files.some((f) => f.name === 'config.json'));
    const mergedModel = await app.api.addLocalModel({ path: merged.path, name: 'merged' });
    assert.equal(mergedModel.parameters, m.parameters);
    const wrongBase = await app.api.addLocalModel({ path: tinyCheckpoint({ hiddenSize: 32 }), name: 'other' });
    await assert.rejects(app.api.importAdapter({ path: exported.path, baseModelId: wrongBase.id }), (e: { code: string }) => e.code === 'bad_adapter');

    // GGUF for llama.cpp (merged, and the adapter alone), a folder for Ollama, the run for Accelerate.
    const gguf = await app.api.exportGguf({ modelId: m.id, source: { kind: 'run', runId: run!.id }, dest: join(tempDir(), 'tiny.gguf'), dtype: 'q8_0' });
    assert.equal(readFileSync(gguf.path).subarray(0, 4).toString(), 'GGUF');
    const lora = await app.api.exportGguf({ modelId: m.id, source: { kind: 'run', runId: run!.id }, dest: join(tempDir(), 'lora.gguf'), loraOnly: true });
    assert.ok(lora.files[0]!.bytes < gguf.files[0]!.bytes);
    const ollama = await app.api.exportOllama({ modelId: m.id, source: { kind: 'run', runId: run!.id }, dest: join(tempDir(), 'ollama'), name: 'tiny-math' });
    assert.ok(ollama.files.some((f) => f.name === 'Modelfile') && /ollama create tiny-math/.test(ollama.command ?? ''));
    const acc = await app.api.exportAccelerate({ runId: run!.id, dest: join(tempDir(), 'accelerate') });
    assert.ok(acc.files.some((f) => f.name === 'train.py') && /accelerate launch/.test(acc.command ?? ''));

    // Held-out rows answered by both sides, scored by exact match.
    const ds = await app.api.addDataset({ path: data, map: { prompt: 'query', completion: 'response' } });
    const batch = await app.api.batchCompare({ modelId: m.id, left: { kind: 'base' }, right: { kind: 'run', runId: run!.id }, datasetId: ds.id, rows: 4, maxNewTokens: 8, batchId: 'b1' });
    assert.equal(batch.rows.length, 4);
    assert.ok(batch.rows.every((r) => r.prompt.startsWith('What is') && typeof r.left === 'string' && typeof r.right === 'string'));
    assert.ok(app.events.some((e) => e.type === 'batch-progress' && e.batchId === 'b1' && e.done === e.total));
    assert.deepEqual(batch.differing, batch.rows.flatMap((r, i) => (r.leftCorrect !== r.rightCorrect ? [i] : [])));
  } finally {
    await app.close();
  }
});
