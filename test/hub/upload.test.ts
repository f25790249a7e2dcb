// Pushing to the Hub against the local fake of huggingface.co (test/hub/fake-hub.ts), which answers
// @huggingface/hub's upload calls as the Hub does: an adapter as one commit of a repository created
// private and made public at the end, read back byte for byte through the download path; a large
// file in parts; a connection cut mid-upload (nothing public, the next run sends only what is
// missing), retried within one push; 401, 403 and 409 (an existing repository); a publish that failed
// after the commit; cancel; and the progress phases.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { HubError, downloadRepo, pushToHub, type UploadProgress } from '../../src-main/hub/index.js';
import { uploadToRepo } from '../../src-main/hub/upload.js';
import { savePeftAdapter } from '../../src-main/model/adapter.js';
import { loadModelConfig } from '../../src-main/model/config.js';
import { LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { tempDir, tinyCheckpoint, useFinchHome } from '../helpers/fixtures.js';
import { until, within } from '../helpers/wait.js';
import { FakeHub } from './fake-hub.js';

delete process.env.HF_TOKEN;
delete process.env.HF_ENDPOINT;

const hub = new FakeHub();
const TOKEN = 'hf_alice';
let adapterDir: string;
let restoreHome: () => void;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rejection(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HubError, `expected a HubError, got ${(e as Error)?.stack ?? e}`);
    return e;
  }
  assert.fail('expected the push to fail');
}

/** Two large files (a small one and one over the multipart threshold) and a small one, in a new folder. */
function someFiles(seed: number): { dir: string; small: Buffer; large: Buffer; files: { path: string; source: string }[] } {
  const dir = tempDir('finch-push-files-');
  const rand = mulberry32(seed);
  const small = Buffer.from(Uint8Array.from({ length: 200_000 }, () => Math.floor(rand() * 256)));
  const large = Buffer.from(Uint8Array.from({ length: 1_500_000 }, () => Math.floor(rand() * 256)));
  writeFileSync(join(dir, 'a.safetensors'), small);
  writeFileSync(join(dir, 'b.safetensors'), large);
  writeFileSync(join(dir, 'config.json'), `{"seed": ${seed}}`);
  return { dir, small, large, files: ['a.safetensors', 'b.safetensors', 'config.json'].map((p) => ({ path: p, source: join(dir, p) })) };
}

const journal = (repo: string) => join(process.env.FINCH_HOME!, 'push', ...repo.split('/')) + '.json';

before(async () => {
  restoreHome = useFinchHome(tempDir('finch-push-home-'));
  const model = tinyCheckpoint();
  const cfg = loadModelConfig(model);
  const spec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const rand = mulberry32(5);
  const tensors = new Map(loraParams(cfg, spec).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => rand() - 0.5)]));
  adapterDir = join(tempDir(), 'run');
  savePeftAdapter(adapterDir, { spec, baseModel: model, tensors, cfg, finch: { template: 'model' } });
  mkdirSync(join(adapterDir, 'checkpoints', 'step-00010'), { recursive: true });
  hub.addUser(TOKEN, 'alice', { orgs: ['finch-org'] });
  hub.addUser('hf_bob', 'bob');
  hub.addUser('hf_reader', 'carol', { write: false });
  hub.multipartThreshold = 1_000_000;
  hub.partSize = 256 * 1024;
  await hub.start();
});

after(async () => {
  await hub.stop();
  restoreHome();
});

beforeEach(() => {
  hub.faults.clear();
  hub.holdUploadAfter.clear();
});

test('an adapter goes up as one commit of a repository created private and made public at the end; it reads back byte for byte', async () => {
  const events: UploadProgress[] = [];
  const r = await pushToHub({ kind: 'adapter', path: adapterDir, repo: 'alice/math-lora', token: TOKEN, endpoint: hub.url, onProgress: (p) => events.push(p) });
  assert.equal(r.url, `${hub.url}/alice/math-lora`);
  assert.equal(r.created, true);
  assert.equal(r.private, false);
  assert.deepEqual(r.files.map((f) => [f.path, f.lfs]), [['adapter_config.json', false], ['adapter_model.safetensors', true], ['finch_adapter.json', false], ['README.md', false]]);
  assert.deepEqual(r.skipped.map((s) => s.path), ['checkpoints'], 'checkpoints stay home');

  const repo = hub.repo('alice/math-lora')!;
  assert.equal(repo.private, false);
  assert.deepEqual(repo.commits!.map((c) => [c.title, c.private]), [['initial commit', true], ['Upload LoRA adapter with Finch', true]],
    'created private, every file in one commit made while private');
  assert.equal(repo.commits![1]!.oid, r.commit);
  // (This test runs first: the one repository created so far is this one.)
  const calls = hub.requests.filter((q) => q.method !== 'GET' && (q.url.includes('math-lora') || q.url === '/api/repos/create')).map((q) => `${q.method} ${q.url.replace(/\?.*/, '').replace(/[0-9a-f]{64}/, '<oid>')}`);
  assert.deepEqual(calls, [
    'POST /api/repos/create', 'POST /api/models/alice/math-lora/preupload/main', 'POST /alice/math-lora.git/info/lfs/objects/batch',
    'PUT /cdn/upload/alice%2Fmath-lora/<oid>', 'POST /api/models/alice/math-lora/commit/main', 'PUT /api/models/alice/math-lora/settings',
  ]);
  assert.ok(!existsSync(journal('alice/math-lora')), 'the journal goes once the repository is public');

  // Read back through Finch's own download path (resolve, LFS through the storage origin, hashes checked).
  const files = ['adapter_config.json', 'adapter_model.safetensors', 'finch_adapter.json', 'README.md'];
  const back = await downloadRepo({ repo: 'alice/math-lora', kind: 'model', files, endpoint: hub.url, cacheDir: tempDir() });
  for (const f of ['adapter_model.safetensors', 'finch_adapter.json']) assert.deepEqual(readFileSync(join(back.dir, f)), readFileSync(join(adapterDir, f)), f);
  const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config(back.dir), { ...config(adapterDir), base_model_name_or_path: 'model' }, 'the base named by its folder, not its local path');
  assert.equal(readFileSync(join(back.dir, 'README.md'), 'utf8'), r.card);

  const phases = [...new Set(events.map((e) => e.phase))];
  assert.deepEqual(phases, ['creating', 'hashing', 'uploading', 'committing', 'publishing']);
  const uploading = events.filter((e) => e.phase === 'uploading');
  for (let i = 1; i < uploading.length; i++) assert.ok(uploading[i]!.done >= uploading[i - 1]!.done, 'upload progress never goes back within one try');
  const total = r.files.reduce((a, f) => a + f.bytes, 0), large = readFileSync(join(adapterDir, 'adapter_model.safetensors')).length;
  assert.deepEqual([uploading.at(-1)!.done, uploading.at(-1)!.total], [large, total], 'the large file went to storage');
  const committed = events.filter((e) => e.phase === 'committing').at(-1)!;
  assert.deepEqual([committed.done, committed.total], [total, total], 'the small files went with the commit');
  assert.equal(r.bytesSent, large);
});

test('a file over the multipart threshold goes up in parts; the commit names the whole', async () => {
  const f = someFiles(1);
  const r = await uploadToRepo({ repo: 'alice/parts', files: f.files, title: 'parts', token: TOKEN, endpoint: hub.url });
  const parts = hub.puts.filter((p) => p.oid === sha256(f.large));
  assert.deepEqual(parts.map((p) => p.part), [1, 2, 3, 4, 5, 6], '1.5 MB in parts of 256 kB');
  assert.deepEqual(hub.puts.filter((p) => p.oid === sha256(f.small)).map((p) => p.part), [null], 'the small one in one PUT');
  assert.deepEqual(hub.repo('alice/parts')!.files.get('b.safetensors'), f.large);
  assert.equal(r.bytesSent, f.small.length + f.large.length);
});

test('a connection cut mid-upload leaves nothing public; the next run sends only what is missing', async () => {
  const f = someFiles(2);
  const oidA = sha256(f.small), oidB = sha256(f.large);
  hub.holdUploadAfter.set(oidB, 100_000);
  const o = { repo: 'alice/cut', files: f.files, title: 'cut', token: TOKEN, endpoint: hub.url };
  const failed = rejection(uploadToRepo({ ...o, retries: 0 }));
  // The small file is stored and the large one held mid-body before the cut: the cut point is exact.
  await until(() => hub.timesStored(oidA) === 1 && hub.heldUploads === 1, 'a.safetensors stored and b.safetensors held', 30_000);
  hub.cutHeld();
  const e = await within(failed, 30_000, 'the push to fail after the cut');
  assert.equal(e.code, 'network');
  assert.match(e.message, /connection was cut while uploading \(b\.safetensors\)|storage answered/);
  assert.match(e.hint, /nothing of this push is public: alice\/cut stays private/);
  assert.match(e.hint, /run the same push again/);

  const repo = hub.repo('alice/cut')!;
  assert.equal(repo.private, true, 'nobody else sees the repository');
  assert.deepEqual(repo.commits!.map((c) => c.title), ['initial commit'], 'no commit with part of the files');
  assert.ok(existsSync(journal('alice/cut')), 'the journal remembers the push was meant to be public');

  const r = await uploadToRepo(o);
  assert.deepEqual(r.alreadyStored, ['a.safetensors']);
  assert.equal(hub.timesStored(oidA), 1, 'a.safetensors was not sent again');
  assert.equal(hub.timesStored(oidB), 1);
  assert.equal(r.bytesSent, f.large.length);
  assert.equal(r.created, true, 'the repository an earlier run created is this push\'s');
  assert.equal(repo.private, false, 'made public once complete');
  assert.deepEqual(repo.commits!.map((c) => c.title), ['initial commit', 'cut']);
  for (const file of f.files) assert.deepEqual(repo.files.get(file.path), readFileSync(file.source), file.path);
  assert.ok(!existsSync(journal('alice/cut')));
});

test('within one push, a cut upload and a commit whose answer never came are retried', async () => {
  const f = someFiles(3);
  const oidB = sha256(f.large);
  hub.holdUploadAfter.set(oidB, 50_000);
  hub.faults.set('commit', 'hang-up');
  const pushed = uploadToRepo({ repo: 'alice/retried', files: f.files, title: 'retried', token: TOKEN, endpoint: hub.url, retries: 2 });
  await until(() => hub.heldUploads === 1, 'b.safetensors held', 30_000);
  hub.cutHeld();
  const r = await within(pushed, 60_000, 'the retried push');
  assert.equal(hub.timesStored(oidB), 1);
  assert.equal(hub.timesStored(sha256(f.small)), 1, 'what was stored before the cut is not sent again');
  assert.equal(hub.faults.size, 0, 'the commit was cut once');
  assert.deepEqual(hub.repo('alice/retried')!.commits!.map((c) => c.title), ['initial commit', 'retried'], 'one commit');
  assert.equal(r.private, false);
});

test('401 (a token the Hub refuses), 403 (another namespace, a read-only token) and no token create nothing', async () => {
  const f = someFiles(4);
  const o = { files: f.files, title: 't', endpoint: hub.url };
  const e401 = await rejection(uploadToRepo({ ...o, repo: 'alice/x401', token: 'hf_expired' }));
  assert.equal(e401.code, 'unauthorized');
  assert.match(e401.hint, /write access/);
  const e403 = await rejection(uploadToRepo({ ...o, repo: 'bob/not-alices', token: TOKEN }));
  assert.equal(e403.code, 'forbidden');
  assert.match(e403.message, /may not write to bob\/not-alices \(the Hub says: You don't have the rights to create a model under the namespace "bob"\)/);
  assert.match(e403.hint, /"bob" must be the token's account or an organization/);
  const eRead = await rejection(uploadToRepo({ ...o, repo: 'carol/x', token: 'hf_reader' }));
  assert.equal(eRead.code, 'forbidden');
  const none = await rejection(uploadToRepo({ ...o, repo: 'alice/none', token: undefined }));
  assert.equal(none.code, 'unauthorized');
  assert.match(none.message, /needs a Hugging Face token with write access/);
  for (const id of ['alice/x401', 'bob/not-alices', 'carol/x', 'alice/none']) {
    assert.equal(hub.repo(id), undefined, `${id} was not created`);
    assert.ok(!existsSync(journal(id)), `no journal for ${id}`);
  }
  // An organization the token's account belongs to is a namespace it may push to.
  const org = await uploadToRepo({ ...o, repo: 'finch-org/shared', token: TOKEN });
  assert.equal(org.created, true);
});

test('409: an existing repository is updated in place and keeps its visibility; "private" never publishes a public one', async () => {
  const f = someFiles(5);
  const o = { files: f.files, title: 'v1', token: TOKEN, endpoint: hub.url };
  await uploadToRepo({ ...o, repo: 'alice/existing' });
  writeFileSync(join(f.dir, 'config.json'), '{"version": 2}');
  const again = await uploadToRepo({ ...o, repo: 'alice/existing', title: 'v2' });
  assert.equal(again.created, false);
  assert.equal(again.private, false);
  assert.deepEqual(again.alreadyStored.sort(), ['a.safetensors', 'b.safetensors'], 'unchanged large files are not sent again');
  const repo = hub.repo('alice/existing')!;
  assert.deepEqual(repo.commits!.map((c) => c.title), ['initial commit', 'v1', 'v2']);
  assert.equal(repo.files.get('config.json')!.toString(), '{"version": 2}');

  const refused = await rejection(uploadToRepo({ ...o, repo: 'alice/existing', title: 'v3', private: true }));
  assert.equal(refused.code, 'conflict');
  assert.match(refused.message, /exists and is public/);
  assert.equal(repo.commits!.length, 3, 'nothing committed');
  assert.equal(repo.private, false);

  await uploadToRepo({ ...o, repo: 'alice/kept-private', private: true });
  const kept = await uploadToRepo({ ...o, repo: 'alice/kept-private' });
  assert.equal(kept.private, true, 'a private repository that existed stays private');
  assert.equal(hub.repo('alice/kept-private')!.private, true);
});

test('a publish that fails after the commit: the next run only makes the repository public', async () => {
  const f = someFiles(6);
  hub.faults.set('settings', { status: 503, message: 'Service Unavailable' });
  const o = { repo: 'alice/late', files: f.files, title: 'late', token: TOKEN, endpoint: hub.url };
  const e = await rejection(uploadToRepo({ ...o, retries: 0 }));
  assert.equal(e.code, 'network');
  assert.match(e.hint, /every file is in alice\/late, which is still private/);
  const repo = hub.repo('alice/late')!;
  assert.equal(repo.private, true);
  const r = await uploadToRepo(o);
  assert.equal(r.private, false);
  assert.equal(repo.private, false);
  assert.deepEqual(repo.commits!.map((c) => c.title), ['initial commit', 'late'], 'the files were not committed twice');
  assert.equal(r.commit, repo.sha);
  assert.deepEqual(r.files.filter((f) => f.lfs).map((f) => f.path), ['a.safetensors', 'b.safetensors']);
});

test('cancel: the signal stops the upload with code "cancelled"', async () => {
  const f = someFiles(7);
  hub.holdUploadAfter.set(sha256(f.large), 10_000);
  const ac = new AbortController();
  const pushed = rejection(uploadToRepo({ repo: 'alice/cancelled', files: f.files, title: 't', token: TOKEN, endpoint: hub.url, signal: ac.signal }));
  await until(() => hub.heldUploads === 1, 'b.safetensors held', 30_000);
  ac.abort();
  const e = await within(pushed, 30_000, 'the cancelled push');
  hub.cutHeld();
  assert.equal(e.code, 'cancelled');
  assert.deepEqual(hub.repo('alice/cancelled')!.commits!.map((c) => c.title), ['initial commit']);
});
