// The 4-bit weight cache through the app's API, with entries the real quantizer made: a QLoRA run
// of the app writes an entry (its job loads through the cache), the entry is listed with its model,
// block size and size on disk, removing it is refused while the run holds its checkpoint, a corrupt
// entry is rebuilt by the next run with a warning in the run's log, and remove/clear delete the files.
// The first run is held after its first step (test/helpers/held-job.ts): it cannot finish first.
import assert from 'node:assert/strict';
import { existsSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FinchEvent, RunConfig } from '../../src-shared/api.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { loadModel } from '../../src-main/model/load.js';
import { prepareInt4 } from '../../src-main/model/quant-cache.js';
import { failure, startApp, type TestApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';
import { mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

let app: TestApp;
let cfg: RunConfig;
const jobs = heldJobs();
const modelDir = tinyCheckpoint();
before(async () => {
  app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
  const model = await app.api.addLocalModel({ path: modelDir, name: 'tiny' });
  const data = writeJsonl(join(tempDir(), 'math.jsonl'), mathRows(16));
  const dataset = await app.api.addDataset({ path: data, map: { prompt: 'query', completion: 'response' } });
  cfg = {
    ...RUN_DEFAULTS, modelId: model.id, datasetId: dataset.id, quantize: true, blockSize: 32, maxSteps: 3, batch: 2, seqLen: 64,
    valFraction: 0, checkpointEvery: 3, samplePrompts: 0, provider: 'cpu', threads: 1,
  };
});
after(() => app.close());

/** The run's end: it must complete (a failure shows its error here instead of a hang). */
async function completes(id: string): Promise<void> {
  const e = await app.waitFor((x): x is StatusEvent => x.type === 'run-status' && x.runId === id && ['completed', 'failed', 'cancelled'].includes(x.status), `run ${id} to end`);
  assert.equal(e.status, 'completed', e.error?.message);
}
type StatusEvent = Extract<FinchEvent, { type: 'run-status' }>;

test('a 4-bit run writes an entry; removing it is refused while the run holds it; a corrupt entry is rebuilt with a warning', async () => {
  const { api } = app;
  assert.deepEqual((await api.listWeightCache()).entries, []);
  jobs.holdNext([1]);
  const run = await api.startRun({ ...cfg, name: 'qlora one' });
  const held = await app.waitFor((e) => (e.type === 'run-log' && e.runId === run.id && e.line.message === 'paused at step 1') || (e.type === 'run-status' && e.runId === run.id && e.status === 'failed'), 'the run held after step 1');
  assert.equal(held.type, 'run-log', JSON.stringify(held));
  assert.equal((await api.pauseRun(run.id)).status, 'paused');

  // The job quantized cold and stored the entry before its first step; it holds the model while paused.
  const during = await api.listWeightCache();
  assert.equal(during.entries.length, 1);
  const entry = during.entries[0]!;
  assert.equal(entry.checkpoint, modelDir);
  assert.equal(entry.modelName, 'tiny');
  assert.equal(entry.blockSize, 32);
  assert.equal(entry.bytes, statSync(entry.file).size);
  assert.equal(during.totalBytes, entry.bytes);
  assert.equal(entry.readable, true);
  assert.equal(entry.inUseBy, 'qlora one');
  assert.ok(app.events.some((e) => e.type === 'library-changed' && e.what === 'weight-cache'), 'the cold load announced the new entry');
  const busy = await failure(api.removeWeightCacheEntry(entry.id));
  assert.equal(busy.code, 'conflict');
  assert.match(busy.message, /4-bit weights of tiny are in use by run "qlora one"/);
  assert.match(busy.hint ?? '', /once the run has ended/);
  assert.equal((await failure(api.clearWeightCache())).code, 'conflict');
  assert.ok(existsSync(entry.file), 'a refused removal leaves the file');

  await api.resumeRun(run.id);
  await completes(run.id);
  const ready = (await api.runDetails(run.id)).logs.find((l) => l.message.startsWith('ready after'));
  assert.match(ready?.message ?? '', /^ready after \d+\.\d s: loading \d+\.\d s \(4-bit weights quantized and cached\), data \d+\.\d s, graphs \d+\.\d s, sessions \d+\.\d s$/);
  assert.equal((await api.listWeightCache()).entries[0]!.inUseBy, null);

  // Damaged on disk: the next run's load reports it in the run log, deletes it and quantizes again.
  truncateSync(entry.file, 100);
  const second = await api.startRun({ ...cfg, name: 'qlora two' });
  await completes(second.id);
  const logs = (await api.runDetails(second.id)).logs;
  assert.ok(logs.some((l) => l.level === 'warn' && /4-bit cache .* is unreadable .*; deleting it and quantizing again/.test(l.message)), JSON.stringify(logs));
  const third = await api.startRun({ ...cfg, name: 'qlora three' });
  await completes(third.id);
  assert.ok((await api.runDetails(third.id)).logs.some((l) => /^ready after .*\(4-bit weights from the cache\)/.test(l.message)), 'the rebuilt entry serves the next run');
  const rebuilt = (await api.listWeightCache()).entries;
  assert.deepEqual(rebuilt.map((e) => [e.id, e.bytes, e.readable]), [[entry.id, entry.bytes, true]]);

  const changes = app.events.filter((e) => e.type === 'library-changed' && e.what === 'weight-cache').length;
  const after = await api.removeWeightCacheEntry(entry.id);
  assert.deepEqual(after.entries, []);
  assert.equal(after.totalBytes, 0);
  assert.ok(!existsSync(entry.file), 'removing the entry deletes its file');
  assert.equal(app.events.filter((e: FinchEvent) => e.type === 'library-changed' && e.what === 'weight-cache').length, changes + 1);
  const gone = await failure(api.removeWeightCacheEntry(entry.id));
  assert.equal(gone.code, 'not_found');
  assert.match(gone.message, new RegExp(`no entry ${entry.id}`));
});

test('entries list each block size, the last use, and unreadable files; remove takes one, clear the rest', async () => {
  const { api } = app;
  const model = loadModel(modelDir, { quantize: true, blockSize: 64 });
  const made64 = await prepareInt4(modelDir, model.config, model.weights, { threads: 1 });
  model.close();
  const model32 = loadModel(modelDir, { quantize: true, blockSize: 32 });
  const made32 = await prepareInt4(modelDir, model32.config, model32.weights, { threads: 1 });
  model32.close();
  const junk = join((await api.listWeightCache()).dir, '0123abcd.safetensors');
  writeFileSync(junk, 'not a safetensors file');

  const view = await api.listWeightCache();
  const byFile = new Map(view.entries.map((e) => [e.file, e]));
  assert.deepEqual([...byFile.keys()].sort(), [made32.file!, made64.file!, junk].sort());
  assert.equal(byFile.get(made64.file!)!.blockSize, 64);
  assert.equal(byFile.get(made32.file!)!.blockSize, 32);
  assert.ok(byFile.get(made64.file!)!.bytes < byFile.get(made32.file!)!.bytes, 'block 64 keeps half the scales');
  assert.equal(view.totalBytes, made64.bytes + made32.bytes + statSync(junk).size);
  const bad = byFile.get(junk)!;
  assert.deepEqual([bad.id, bad.readable, bad.checkpoint, bad.modelName], ['0123abcd', false, '', null]);

  // A hit marks the entry used: its last use moves forward, its creation date stays.
  const old = new Date('2026-01-02T03:04:05Z');
  utimesSync(made32.file!, old, old);
  assert.equal((await api.listWeightCache()).entries.find((e) => e.file === made32.file)!.lastUsedAt, old.toISOString());
  const again = loadModel(modelDir, { quantize: true, blockSize: 32 });
  assert.equal((await prepareInt4(modelDir, again.config, again.weights, { threads: 1 })).source, 'cache');
  again.close();
  const used = (await api.listWeightCache()).entries.find((e) => e.file === made32.file)!;
  assert.ok(Date.parse(used.lastUsedAt) > old.getTime());
  assert.equal(used.createdAt, byFile.get(made32.file!)!.createdAt);

  const left = await api.removeWeightCacheEntry(bad.id);
  assert.ok(!existsSync(junk) && existsSync(made32.file!) && existsSync(made64.file!), 'remove deletes only its own file');
  assert.equal(left.entries.length, 2);
  const cleared = await api.clearWeightCache();
  assert.deepEqual(cleared, { dir: view.dir, totalBytes: 0, entries: [] });
  assert.ok(!existsSync(made32.file!) && !existsSync(made64.file!));
});
