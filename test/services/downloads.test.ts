// Hub downloads through the API (over the WebSocket, against test/hub's local fake Hub): a model
// repository downloads with 'download' progress events and joins the library; a gated one fails
// with hub_auth and a hint, then downloads with a granted token; a dataset repository lists its
// data files with their splits, and the chosen file joins the library with its column mapping.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FinchEvent } from '../../src-shared/api.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { mathRows, readTree, tempDir } from '../helpers/fixtures.js';
import { FakeHub } from '../hub/fake-hub.js';

type Download = Extract<FinchEvent, { type: 'download' }>;
const hub = new FakeHub();
let app: TestApp;


before(async () => {
  const ckpt = writeSyntheticCheckpoint(join(tempDir('finch-hub-src-'), 'model'), { hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: 512 });
  const model = readTree(ckpt.dir);
  hub.add({ kind: 'model', id: 'finch-test/tiny-llama', files: model, sha: 'a'.repeat(40) });
  hub.add({ kind: 'model', id: 'finch-test/gated-llama', files: model, sha: 'b'.repeat(40), gated: true });
  const jsonl = (rows: object[]) => Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  hub.add({ kind: 'dataset', id: 'finch-test/math', sha: 'c'.repeat(40), files: new Map([
    ['data/train.jsonl', jsonl(mathRows(30))], ['data/test.jsonl', jsonl(mathRows(10))], ['README.md', Buffer.from('# math\n')],
  ]) });
  hub.validTokens.add('hf_granted');
  hub.grantedTokens.add('hf_granted');
  await hub.start();
  app = await startApp('websocket');
  await app.api.setSettings({ hfEndpoint: hub.url, cacheDir: join(app.home, 'hub') });
});
after(async () => {
  await app.close();
  await hub.stop();
});

const finished = (id: string) => app.waitFor((e): e is Download => e.type === 'download' && e.downloadId === id && e.state !== 'running');

test('a model repository downloads with progress and joins the library', async () => {
  const { downloadId } = await app.api.downloadModel({ repo: 'finch-test/tiny-llama' });
  const done = await finished(downloadId);
  assert.equal(done.state, 'done', JSON.stringify(done.error));
  const progress = app.events.filter((e): e is Download => e.type === 'download' && e.downloadId === downloadId);
  assert.ok(progress.length >= 2 && progress.some((e) => e.file !== null));
  assert.equal(done.bytes, done.totalBytes);
  const model = (await app.api.listModels()).find((m) => m.id === done.modelId)!;
  assert.equal(model.source, 'hub');
  assert.equal(model.repo, 'finch-test/tiny-llama');
  assert.equal(model.revision, 'a'.repeat(40));
  assert.equal((await app.api.modelDetails(model.id)).architecture.hiddenSize, 64);
});

test('a gated repository fails with hub_auth and what to do; a granted token downloads it', async () => {
  const refused = await finished((await app.api.downloadModel({ repo: 'finch-test/gated-llama' })).downloadId);
  assert.equal(refused.state, 'failed');
  assert.equal(refused.error?.code, 'hub_auth');
  assert.match(refused.error!.message, /gated/);
  assert.ok(refused.error!.hint && /token/i.test(refused.error!.hint), refused.error!.hint ?? '');
  const granted = await finished((await app.api.downloadModel({ repo: 'finch-test/gated-llama', token: 'hf_granted' })).downloadId);
  assert.equal(granted.state, 'done', JSON.stringify(granted.error));
  await assert.rejects(app.api.cancelDownload('no-such-download'), (e: { code: string }) => e.code === 'not_found');
});

test('a dataset repository lists its data files and splits; the chosen file joins the library', async () => {
  const listed = await app.api.listHubDatasetFiles({ repo: 'finch-test/math' });
  assert.deepEqual(listed.map((f) => [f.path, f.format, f.split]).sort(), [['data/test.jsonl', 'jsonl', 'test'], ['data/train.jsonl', 'jsonl', 'train']]);
  const { downloadId } = await app.api.downloadDataset({ repo: 'finch-test/math', file: 'data/train.jsonl', map: { prompt: 'query', completion: 'response' } });
  const done = await finished(downloadId);
  assert.equal(done.state, 'done', JSON.stringify(done.error));
  const ds = (await app.api.listDatasets()).find((d) => d.id === done.datasetId)!;
  assert.equal(ds.split, 'train');
  assert.equal(ds.format, 'completion');
  assert.equal(ds.repo, 'finch-test/math');
  const preview = await app.api.previewDataset({ datasetId: ds.id, rows: 3 });
  assert.equal(preview.rows.length, 3);
});
