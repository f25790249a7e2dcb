// The library database: versioned migrations (a database made by the previous schema version opens
// with its rows intact and the new tables usable), WAL and foreign keys, and crash recovery: runs a
// crash left 'running' or 'paused' become 'interrupted' when the store opens again.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MIGRATIONS, SCHEMA_VERSION, openDb } from '../../src-main/store/db.js';
import { Store } from '../../src-main/store/store.js';

const dbFile = () => join(mkdtempSync(join(tmpdir(), 'finch-db-')), 'finch.db');

test('a database made by the previous schema version migrates with its rows intact', () => {
  const file = dbFile();
  // Made by the previous version: only its migrations ran, and it holds a model, a run and metrics.
  const old = openDb(file, SCHEMA_VERSION - 1);
  assert.equal(old.pragma('user_version', { simple: true }), SCHEMA_VERSION - 1);
  old.prepare(`INSERT INTO models (id, name, path, source, model_type, parameters, size_bytes, dtype, has_chat_template, added_at)
    VALUES ('m1', 'tiny', '/models/tiny', 'local', 'llama', 1000, 4000, 'float32', 1, '2026-01-01T00:00:00Z')`).run();
  old.prepare(`INSERT INTO runs (id, name, kind, origin, status, model_id, model_name, dataset_name, dir, step, created_at)
    VALUES ('r1', 'old run', 'train', 'app', 'completed', 'm1', 'tiny', 'data', '/runs/r1', 20, '2026-01-01T00:00:00Z')`).run();
  old.prepare(`INSERT INTO evals (run_id, step, eval_loss, perplexity) VALUES ('r1', 20, 1.5, 4.48)`).run();
  assert.throws(() => old.prepare('SELECT * FROM comparisons').all(), /no such table/);
  old.close();

  const store = new Store(file);
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(store.model('m1')?.name, 'tiny');
  assert.equal(store.run('r1')?.step, 20);
  // The columns and tables the new version added work on the old rows.
  assert.deepEqual(store.evals('r1'), [{ step: 20, eval_loss: 1.5, perplexity: 4.48, samples: [] }]);
  store.addLog('r1', { at: '2026-01-02T00:00:00Z', level: 'info', message: 'hello' });
  assert.equal(store.logs('r1').length, 1);
  const c = store.addComparison({
    modelId: 'm1', left: { kind: 'base' }, right: { kind: 'run', runId: 'r1' }, leftLabel: 'base', rightLabel: 'old run',
    messages: [{ role: 'user', content: 'hi' }], leftOutput: 'a', rightOutput: 'b', sampling: null, maxNewTokens: 8, rating: 'right', notes: '',
  });
  assert.deepEqual(store.listComparisons().map((x) => x.id), [c.id]);
  store.close();
  // Reopening runs no migration twice.
  const again = new Store(file);
  assert.equal(again.listComparisons().length, 1);
  again.close();
});

test('every migration applies in order from an empty database', () => {
  const file = dbFile();
  for (let v = 1; v <= MIGRATIONS.length; v++) {
    const db = openDb(file, v);
    assert.equal(db.pragma('user_version', { simple: true }), v);
    db.close();
  }
});

test('a database from a newer Finch is refused with what to do', () => {
  const file = dbFile();
  const db = openDb(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => openDb(file), /made by a newer Finch .*update Finch or point FINCH_HOME elsewhere/);
});

test('foreign keys: deleting a run deletes its metrics, checkpoints and logs; deleting a model keeps its runs', () => {
  const store = new Store(dbFile());
  const m = store.addModel({ name: 'm', path: '/m', source: 'local', repo: null, revision: null, modelType: 'llama', parameters: 1, sizeBytes: 1, dtype: 'float32', hasChatTemplate: false });
  const run = store.addRun({ name: 'r', kind: 'train', origin: 'app', status: 'running', modelId: m.id, datasetId: null, modelName: 'm', datasetName: 'd', config: null, trainConfig: null, provider: 'cpu', dir: '/runs/r' });
  store.addMetric(run.id, { step: 1, loss: 2, lr: 1e-3, grad_norm: 1, tokens_per_s: 10, rss_mb: 100 });
  store.addCheckpoint(run.id, 1, '/runs/r/checkpoints/step-1');
  store.addLog(run.id, { at: 'now', level: 'info', message: 'x' });
  store.removeModel(m.id);
  assert.equal(store.run(run.id)?.modelId, null);
  store.deleteRun(run.id);
  for (const t of ['metrics', 'checkpoints', 'run_logs']) {
    assert.equal((store.db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n, 0, t);
  }
  store.close();
});

test('crash recovery: runs left running or paused are interrupted on the next start; others keep their status', () => {
  const file = dbFile();
  const store = new Store(file);
  const add = (status: 'running' | 'paused' | 'queued' | 'completed', dir: string) =>
    store.addRun({ name: dir, kind: 'train', origin: 'app', status, modelId: null, datasetId: null, modelName: 'm', datasetName: 'd', config: null, trainConfig: null, provider: 'cpu', dir }).id;
  const ids = { running: add('running', '/a'), paused: add('paused', '/b'), queued: add('queued', '/c'), completed: add('completed', '/d') };
  store.close(); // the app dies here

  const next = new Store(file);
  assert.deepEqual(next.markInterrupted().sort(), [ids.running, ids.paused].sort());
  assert.equal(next.run(ids.running)?.status, 'interrupted');
  assert.equal(next.run(ids.paused)?.status, 'interrupted');
  assert.equal(next.run(ids.queued)?.status, 'queued');
  assert.equal(next.run(ids.completed)?.status, 'completed');
  next.close();
});
