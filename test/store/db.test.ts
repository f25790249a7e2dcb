// The library database: versioned migrations (a database file written by an earlier release opens
// with its rows intact and the new tables usable; its plain-text Hugging Face token moves out to the
// token store), WAL and foreign keys, and crash recovery: runs a crash left 'running' become
// 'interrupted' when the store opens again (a paused run stays paused: its pause wrote a checkpoint,
// or it was paused in the queue).
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { MIGRATIONS, SCHEMA_VERSION, openDb } from '../../src-main/store/db.js';
import { Store } from '../../src-main/store/store.js';
import { TokenStore, migrateTokenOutOfDb } from '../../src-main/store/token-store.js';

const dbFile = () => join(mkdtempSync(join(tmpdir(), 'finch-db-')), 'finch.db');

// What the previous release wrote (test/fixtures/finch-db-schema2/README.md lists every row).
const SCHEMA2_DB = new URL('../fixtures/finch-db-schema2/finch.db', import.meta.url).pathname;

test('a database written by schema version 2 (a committed file) migrates with every row intact', async () => {
  const file = dbFile();
  copyFileSync(SCHEMA2_DB, file);
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma('user_version', { simple: true }), 2);
  raw.close();

  const store = new Store(file);
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
  assert.deepEqual(store.db.pragma('foreign_key_check'), []);

  const models = store.listModels();
  assert.deepEqual(models.map((m) => [m.name, m.source, m.dtype, m.hasChatTemplate]),
    [['Llama-3.2-1B-Instruct', 'local', 'bfloat16', true], ['SmolLM2-135M', 'hub', 'bfloat16', false]]);
  const llama = models[0]!;
  assert.equal(models[1]!.repo, 'HuggingFaceTB/SmolLM2-135M');
  assert.deepEqual(store.listDatasets().map((d) => [d.name, d.format, d.map]),
    [['metamath.jsonl', 'prompt-completion', { prompt: 'query', completion: 'response' }], ['alpaca-cleaned', 'alpaca', null]]);

  const runs = Object.fromEntries(store.listRuns().map((r) => [r.name, r]));
  assert.deepEqual(Object.keys(runs).sort(), ['interrupted', 'math r16', 'too big']);
  const run = runs['math r16']!;
  assert.deepEqual([run.status, run.step, run.totalSteps, run.loss, run.bestEvalLoss, run.durationS, run.modelId], ['completed', 4, 4, 1.5, 1.9, 179, llama.id]);
  const row = store.runRow(run.id)!;
  assert.equal(row.config?.modelId, llama.id);
  assert.deepEqual([row.config?.quantize, row.config?.maxSteps, row.config?.lora.rank, row.config?.lora.alpha], [true, 4, 16, 32]);
  assert.equal(row.trainConfig?.model, llama.path);
  assert.equal(row.trainConfig?.out, run.dir);
  assert.deepEqual(store.metrics(run.id).map((m) => m.loss), [2.25, 2, 1.75, 1.5]);
  const evals = store.evals(run.id);
  assert.deepEqual(evals.map((e) => [e.step, e.eval_loss, e.samples.length]), [[2, 2.1, 2], [4, 1.9, 0]]);
  assert.deepEqual(evals[0]!.samples[1], { prompt: 'What is 7 * 6?', reference: '42', answer: '48', correct: false });
  assert.deepEqual(store.checkpoints(run.id).map((c) => c.step), [2, 4]);
  assert.deepEqual(store.logs(run.id).map((l) => l.level), ['info', 'warn']);
  assert.equal(runs['too big']!.error?.message, 'WebGPU buffer allocation failed');
  assert.deepEqual([runs['interrupted']!.status, runs['interrupted']!.step], ['interrupted', 10]);
  assert.deepEqual(store.checkpoints(runs['interrupted']!.id).map((c) => c.step), [10]);

  const adapters = store.listAdapters();
  assert.deepEqual(adapters.map((a) => [a.name, a.origin, a.rank, a.alpha, a.targets.length]), [['math r16', 'run', 16, 32, 7], ['imported-lora', 'imported', 8, 16, 2]]);
  assert.equal(adapters[0]!.runId, run.id);
  const [cmp] = store.listComparisons();
  assert.deepEqual([cmp?.left, cmp?.right, cmp?.rating, cmp?.sampling?.topK], [{ kind: 'base' }, { kind: 'adapter', adapterId: adapters[0]!.id }, 'right', 40]);

  assert.equal(store.setting('hfEndpoint'), 'https://hf-mirror.example.org');
  assert.equal(store.setting('defaultProvider'), 'cpu');
  // Its token moves to the token store (a private file here: no keychain) and leaves the database,
  // its pages included.
  const tokens = new TokenStore(dirname(file));
  assert.equal(await migrateTokenOutOfDb(store, tokens), 'file');
  assert.equal(store.setting('hfToken'), null);
  assert.equal(await tokens.read(), 'hf_fixtureTokenNotARealOne0123456789');
  if (process.platform !== 'win32') assert.equal((statSync(join(tokens.dir, 'hf-token')).mode & 0o777).toString(8), '600');
  assert.equal(await migrateTokenOutOfDb(store, tokens), null, 'a second start moves nothing');
  assert.equal(await tokens.read(), 'hf_fixtureTokenNotARealOne0123456789');

  // The old rows take new ones.
  store.addLog(run.id, { at: '2026-12-08T00:00:00Z', level: 'info', message: 'hello' });
  assert.equal(store.logs(run.id).length, 3);
  store.addComparison({
    modelId: llama.id, left: { kind: 'base' }, right: { kind: 'run', runId: run.id }, leftLabel: 'base', rightLabel: 'math r16',
    messages: [{ role: 'user', content: 'hi' }], leftOutput: 'a', rightOutput: 'b', sampling: null, maxNewTokens: 8, rating: null, notes: '',
  });
  store.close();
  // Reopening runs no migration twice.
  const again = new Store(file);
  assert.equal(again.listComparisons().length, 2);
  again.close();
  for (const f of [file, `${file}-wal`]) {
    assert.ok(!existsSync(f) || !readFileSync(f).includes('hf_fixtureToken'), `no copy of the token is left in ${f}`);
  }
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

test('crash recovery: runs left running are interrupted on the next start; others, paused ones too, keep their status', () => {
  const file = dbFile();
  const store = new Store(file);
  const add = (status: 'running' | 'paused' | 'queued' | 'completed', dir: string) =>
    store.addRun({ name: dir, kind: 'train', origin: 'app', status, modelId: null, datasetId: null, modelName: 'm', datasetName: 'd', config: null, trainConfig: null, provider: 'cpu', dir }).id;
  const ids = { running: add('running', '/a'), paused: add('paused', '/b'), queued: add('queued', '/c'), completed: add('completed', '/d') };
  store.close(); // the app dies here

  const next = new Store(file);
  assert.deepEqual(next.markInterrupted(), [ids.running]);
  assert.equal(next.run(ids.running)?.status, 'interrupted');
  assert.equal(next.run(ids.paused)?.status, 'paused');
  assert.equal(next.run(ids.queued)?.status, 'queued');
  assert.equal(next.run(ids.completed)?.status, 'completed');
  next.close();
});

test('a preference run\'s reward metrics round-trip per step and per evaluation; an SFT run\'s rows carry none', () => {
  const store = new Store(dbFile());
  const run = store.addRun({ name: 'r', kind: 'train', origin: 'app', status: 'running', modelId: null, datasetId: null, modelName: 'm', datasetName: 'd', config: null, trainConfig: null, provider: 'cpu', dir: '/runs/p' });
  const rewards = { rewards_chosen: 0.25, rewards_rejected: -0.5, reward_margin: 0.75, reward_accuracy: 0.875 };
  store.addMetric(run.id, { step: 1, loss: 0.6, lr: 1e-3, grad_norm: 1, tokens_per_s: 10, rss_mb: 100, ...rewards });
  store.addMetric(run.id, { step: 2, loss: 0.5, lr: 1e-3, grad_norm: 1, tokens_per_s: 10, rss_mb: 100 });
  assert.deepEqual(store.metrics(run.id), [
    { step: 1, loss: 0.6, lr: 1e-3, grad_norm: 1, tokens_per_s: 10, rss_mb: 100, ...rewards },
    { step: 2, loss: 0.5, lr: 1e-3, grad_norm: 1, tokens_per_s: 10, rss_mb: 100 },
  ]);
  // The loss with its rewards, then the samples alone: the second row keeps what the first wrote.
  store.addEval(run.id, { step: 2, eval_loss: 0.4, perplexity: Math.exp(0.4), ...rewards }, []);
  store.addEval(run.id, { step: 2, eval_loss: null, perplexity: null }, [{ prompt: 'p', reference: 'r', answer: 'a', correct: null }]);
  const [e] = store.evals(run.id);
  assert.deepEqual(e!.rewards, rewards);
  assert.equal(e!.samples.length, 1);
  store.close();
});
