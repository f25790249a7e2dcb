// Pushing to the Hub from the app, over the WebSocket transport, against the local fake Hub: an
// imported adapter with the app's stored token and endpoint, 'export-progress' events that carry
// the repository; a GGUF file and a merged model built in a staging folder that does not outlive
// the push, with the user's batch comparison in the card; refusals as {code, message, hint}; cancel.
// The build runs as an export job (services/exports.ts): held there (test/helpers/held-job.ts), the
// push leaves the API answering, and cancelPush ends that job too.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FinchEvent } from '../../src-shared/api.js';
import { savePeftAdapter } from '../../src-main/model/adapter.js';
import { loadModelConfig } from '../../src-main/model/config.js';
import { LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { failure, startApp, type TestApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';
import { mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';
import { until, within } from '../helpers/wait.js';
import { FakeHub } from '../hub/fake-hub.js';

delete process.env.HF_TOKEN;
delete process.env.HF_ENDPOINT;
const hub = new FakeHub();
const jobs = heldJobs();
let app: TestApp;
let modelId: string;
let adapterId: string;
let adapterDir: string;

type PushProgress = Extract<FinchEvent, { type: 'export-progress' }>;
const progressOf = (repo: string) => app.events.filter((e): e is PushProgress => e.type === 'export-progress' && e.repo === repo);

before(async () => {
  hub.addUser('hf_alice', 'alice');
  hub.addUser('hf_bob', 'bob');
  await hub.start();
  app = await startApp('websocket', undefined, { spawnJob: jobs.spawn });
  await app.api.setSettings({ hfToken: 'hf_alice', hfEndpoint: hub.url });
  const model = tinyCheckpoint();
  modelId = (await app.api.addLocalModel({ path: model, name: 'tiny' })).id;
  const cfg = loadModelConfig(model);
  const spec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const rand = mulberry32(3);
  adapterDir = join(tempDir(), 'adapter');
  savePeftAdapter(adapterDir, { spec, baseModel: model, tensors: new Map(loraParams(cfg, spec).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => rand() - 0.5)])), cfg });
  adapterId = (await app.api.importAdapter({ path: adapterDir, baseModelId: modelId, name: 'tiny lora' })).id;
});
after(async () => {
  await app.close();
  await hub.stop();
});

test('an adapter goes up with the app\'s token and endpoint; progress events carry the repository', async () => {
  const r = await app.api.pushToHub({ source: { kind: 'adapter', adapterId }, what: 'adapter', repo: 'alice/tiny-lora' });
  assert.equal(r.url, `${hub.url}/alice/tiny-lora`);
  assert.deepEqual([r.private, r.created], [false, true]);
  assert.deepEqual(r.files.map((f) => f.name), ['adapter_config.json', 'adapter_model.safetensors', 'README.md']);
  const repo = hub.repo('alice/tiny-lora')!;
  assert.equal(repo.sha, r.commit);
  assert.match(repo.files.get('README.md')!.toString(), /A LoRA adapter for `tiny` \(a local model\)/);
  const ev = progressOf('alice/tiny-lora');
  assert.deepEqual([...new Set(ev.map((e) => e.phase))], ['creating', 'hashing', 'uploading', 'committing', 'publishing']);
  assert.ok(ev.every((e) => e.dest === r.url));
});

test('a GGUF file and a merged model are built for the push and not kept; the batch comparison goes in the card', async () => {
  const ds = await app.api.addDataset({ path: writeJsonl(join(tempDir(), 'math.jsonl'), mathRows(8)), name: 'math rows', map: { prompt: 'query', completion: 'response' } });
  const gguf = await app.api.pushToHub({
    source: { kind: 'adapter', adapterId }, what: 'gguf', repo: 'alice/tiny-gguf', dtype: 'q8_0',
    comparison: { datasetId: ds.id, rows: 4, baseAccuracy: 0.25, tunedAccuracy: 0.75 },
  });
  assert.deepEqual(gguf.files.map((f) => f.name), ['tiny-gguf-q8_0.gguf', 'README.md']);
  const repo = hub.repo('alice/tiny-gguf')!;
  assert.equal(repo.files.get('tiny-gguf-q8_0.gguf')!.subarray(0, 4).toString(), 'GGUF');
  const card = repo.files.get('README.md')!.toString();
  assert.match(card, /A GGUF file \(q8_0 weights\) of a LoRA fine-tune of `tiny`/);
  assert.match(card, /\| Base vs tuned \| 25% → 75% right answers on 4 rows of math rows \|/);
  assert.ok(progressOf('alice/tiny-gguf').some((e) => e.phase === 'converting' && e.done === e.total), 'the GGUF conversion reports its tensors');

  const merged = await app.api.pushToHub({ source: { kind: 'adapter', adapterId }, what: 'merged', repo: 'alice/tiny-merged', private: true });
  assert.equal(merged.private, true);
  assert.ok(merged.files.some((f) => f.name === 'config.json') && merged.files.some((f) => f.name.endsWith('.safetensors')));
  assert.equal(hub.repo('alice/tiny-merged')!.private, true);
  assert.ok(progressOf('alice/tiny-merged').some((e) => e.phase === 'merging'));
  const tmp = join(app.home, 'tmp');
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('push-')) : [], [], 'the staging folders are gone');
});

test('the API answers while a push builds its merged model in an export job; cancelPush ends that job, and nothing reaches the Hub', async () => {
  const building = jobs.blockNext({ message: 'export-progress' }, 'export');
  let settled = false;
  const pushed = failure(app.api.pushToHub({ source: { kind: 'adapter', adapterId }, what: 'merged', repo: 'alice/held-merge' })).finally(() => { settled = true; });
  await building.reached();
  // Held after its first tensor: other calls are answered meanwhile, and the push has not ended.
  assert.ok((await app.api.appInfo()).providers.length > 0);
  assert.ok((await app.api.listModels()).some((m) => m.id === modelId));
  await app.waitFor((e) => e.type === 'export-progress' && e.repo === 'alice/held-merge' && e.phase === 'merging', 'the merge\'s first progress event');
  assert.equal(settled, false, 'the push is still building');
  const job = jobs.spawned.filter((j) => j.kind === 'export').at(-1)!.job;
  assert.ok(job.pid && job.pid !== process.pid, 'the merge runs in a process of its own');

  await app.api.cancelPush('alice/held-merge');
  const e = await within(pushed, 30_000, 'the push cancelled while building');
  building.release();
  assert.equal(e.code, 'cancelled');
  assert.match(e.message, /the push to alice\/held-merge was cancelled while its merged model was being built/);
  await until(() => !alive(job.pid!), 'the merge job to end', 30_000);
  assert.equal(hub.repo('alice/held-merge'), undefined, 'no repository was created');
  const tmp = join(app.home, 'tmp');
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('push-')) : [], [], 'the staging folder is gone');
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('refusals cross as {code, message, hint}: another namespace, a public repository asked to stay private, no push to cancel', async () => {
  const forbidden = await failure(app.api.pushToHub({ source: { kind: 'adapter', adapterId }, what: 'adapter', repo: 'alice/by-bob', token: 'hf_bob' }));
  assert.equal(forbidden.code, 'hub_auth');
  assert.match(forbidden.hint ?? '', /"alice" must be the token's account/);
  const conflict = await failure(app.api.pushToHub({ source: { kind: 'adapter', adapterId }, what: 'adapter', repo: 'alice/tiny-lora', private: true }));
  assert.equal(conflict.code, 'conflict');
  assert.match(conflict.message, /exists and is public/);
  assert.equal((await failure(app.api.cancelPush('alice/nothing-running'))).code, 'not_found');
});

test('cancelPush stops a running push; it rejects with code "cancelled" and nothing is committed', async () => {
  hub.holdUploadAfter.set(createHash('sha256').update(readFileSync(join(adapterDir, 'adapter_model.safetensors'))).digest('hex'), 1);
  const pushed = failure(app.api.pushToHub({ source: { kind: 'adapter', adapterId }, what: 'adapter', repo: 'alice/cancelled' }));
  await until(() => hub.heldUploads === 1, 'the adapter\'s weights held mid-upload', 30_000);
  await app.api.cancelPush('alice/cancelled');
  const e = await within(pushed, 30_000, 'the cancelled push');
  hub.cutHeld();
  assert.equal(e.code, 'cancelled');
  assert.deepEqual(hub.repo('alice/cancelled')!.commits!.map((c) => c.title), ['initial commit']);
  assert.equal(hub.repo('alice/cancelled')!.private, true);
});
