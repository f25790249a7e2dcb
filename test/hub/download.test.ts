// Hub downloads against a local fake of huggingface.co (test/hub/fake-hub.ts): a generated
// checkpoint downloaded byte for byte and loaded, a cut transfer resumed with a Range request,
// gated (401/403), unknown repository and revision, cancel, pickle refused, the disk-space check,
// and a dataset repository's files and splits.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parquetWriteFile } from 'hyparquet-writer';
import { openRows } from '../../src-main/data/read/index.js';
import { HubError, PARQUET_CONVERSION, downloadRepo, listDatasetFiles, type DownloadProgress } from '../../src-main/hub/index.js';
import { loadModel } from '../../src-main/model/load.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { mathRows, readTree, tempDir } from '../helpers/fixtures.js';
import { FakeHub } from './fake-hub.js';
import { within } from '../helpers/wait.js';

delete process.env.HF_TOKEN;
delete process.env.HF_ENDPOINT;

const COMMIT = 'a'.repeat(40);
const SHARD1 = 'model-00001-of-00002.safetensors';
const hub = new FakeHub();
let modelFiles: Map<string, Buffer>;

/** Cuts the connection for `path` once the client has written `bytes` of it; pass the result as onProgress. */
function cutOnceAt(path: string, bytes: number): (p: DownloadProgress) => void {
  hub.stallAfter.set(path, bytes);
  return (p) => {
    if (p.file === path && p.fileBytes >= bytes && hub.stallAfter.has(path)) {
      hub.stallAfter.delete(path);
      hub.cutStalled();
    }
  };
}

async function rejection(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HubError, `expected a HubError, got ${(e as Error)?.stack ?? e}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

before(async () => {
  const ckpt = writeSyntheticCheckpoint(join(tempDir('finch-hub-src-'), 'model'), { hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: 512, sharded: true });
  modelFiles = readTree(ckpt.dir);
  const withExtras = new Map(modelFiles);
  // What real repositories also hold: pickle weights, Meta's original/ folder, git metadata.
  withExtras.set('pytorch_model.bin', Buffer.from('not to be downloaded'));
  withExtras.set('original/consolidated.00.pth', Buffer.from('not to be downloaded either'));
  withExtras.set('.gitattributes', Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n'));
  hub.add({ kind: 'model', id: 'finch-test/tiny-llama', files: withExtras, sha: COMMIT, refs: ['v1'] });
  hub.add({ kind: 'model', id: 'finch-test/gated-llama', files: modelFiles, sha: 'b'.repeat(40), gated: true });
  hub.add({ kind: 'model', id: 'finch-test/pickle-only', files: new Map([['config.json', modelFiles.get('config.json')!], ['pytorch_model.bin', Buffer.from('x')]]), sha: 'c'.repeat(40) });
  hub.validTokens.add('hf_granted').add('hf_not_granted');
  hub.grantedTokens.add('hf_granted');
  await hub.start();
});

after(() => hub.stop());

test('a sharded model downloads byte for byte (no pickle, no extras), reports progress, then loads with model/load.ts', async () => {
  const cacheDir = tempDir('finch-hub-');
  const events: DownloadProgress[] = [];
  const r = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, onProgress: (p) => events.push(p) });
  assert.equal(r.commit, COMMIT);
  assert.equal(r.dir, join(cacheDir, 'models', 'finch-test', 'tiny-llama', COMMIT));
  assert.deepEqual(readTree(r.dir), modelFiles, 'exactly the checkpoint, byte for byte');
  assert.deepEqual(r.files.map((f) => f.path).sort(), [...modelFiles.keys()].sort());
  const skipped = new Map(r.skipped.map((s) => [s.path, s]));
  for (const p of ['pytorch_model.bin', 'original/consolidated.00.pth']) {
    assert.ok(skipped.get(p)!.pickle);
    assert.match(skipped.get(p)!.reason, /pickle .* can run arbitrary code/);
  }
  assert.equal(skipped.get('.gitattributes')!.pickle, false);
  const total = [...modelFiles.values()].reduce((a, b) => a + b.length, 0);
  assert.equal(r.bytesReceived, total);
  // Progress: one plan, bytes never go back, the last event has every byte.
  assert.equal(events[0]!.event, 'start');
  assert.equal(events[0]!.total, total);
  assert.equal(events[0]!.filesTotal, modelFiles.size);
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytes >= events[i - 1]!.bytes);
  assert.deepEqual([events.at(-1)!.bytes, events.at(-1)!.filesDone], [total, modelFiles.size]);
  assert.ok(events.some((e) => e.event === 'bytes' && e.file === SHARD1 && e.fileBytes > 0));
  // Only the wanted files were requested; the safetensors came through the CDN redirect.
  assert.ok(!hub.requests.some((q) => q.url.includes('pytorch_model.bin') || q.url.includes('consolidated')));
  assert.ok(hub.requests.some((q) => q.url.startsWith('/cdn/')));

  const model = loadModel(r.dir);
  try {
    assert.equal(model.config.hiddenSize, 64);
    assert.equal(model.config.numLayers, 2);
  } finally {
    model.close();
  }

  // A second call finds everything in the cache and transfers nothing.
  const again = await downloadRepo({ repo: 'finch-test/tiny-llama', revision: 'v1', kind: 'model', endpoint: hub.url, cacheDir });
  assert.equal(again.dir, r.dir, 'a tag naming the same commit lands in the same folder');
  assert.equal(again.bytesReceived, 0);
  assert.ok(again.files.every((f) => f.cached));
});

test('a transfer cut mid-file leaves a .part; the next call resumes it with Range from the part size', async () => {
  const cacheDir = tempDir('finch-hub-');
  const cut = 3000;
  assert.ok(modelFiles.get(SHARD1)!.length > 2 * cut);
  const failed = await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, retries: 0, onProgress: cutOnceAt(SHARD1, cut) }));
  assert.equal(failed.code, 'network');
  assert.match(failed.message, new RegExp(`cut after ${cut} of ${modelFiles.get(SHARD1)!.length} bytes of ${SHARD1}`));
  const dest = join(cacheDir, 'models', 'finch-test', 'tiny-llama', COMMIT, SHARD1);
  assert.equal(statSync(`${dest}.part`).size, cut);
  assert.ok(!existsSync(dest));

  const before = hub.fileRequests(SHARD1).length;
  const r = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, retries: 0 });
  const resumed = hub.fileRequests(SHARD1).slice(before);
  assert.ok(resumed.length >= 1 && resumed.every((q) => q.range === `bytes=${cut}-`), JSON.stringify(resumed));
  assert.deepEqual(readFileSync(dest), modelFiles.get(SHARD1));
  assert.equal(r.files.find((f) => f.path === SHARD1)!.resumedFrom, cut);
  assert.ok(!existsSync(`${dest}.part`));
  assert.deepEqual(readTree(r.dir), modelFiles);
});

test('a request that gets no answer at all (a connection closed as it was reused) is sent again, even with retries 0', async () => {
  hub.hangUpOnce.add('tokenizer.json');
  const before = hub.fileRequests('tokenizer.json').length;
  const r = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir: tempDir('finch-hub-'), retries: 0, files: ['tokenizer.json'] });
  assert.equal(hub.fileRequests('tokenizer.json').length - before, 2);
  assert.deepEqual(readFileSync(r.files[0]!.localPath), modelFiles.get('tokenizer.json'));
});

test('a server that ignores Range (200 to a resume) restarts the file from byte 0, and the result is still exact', async () => {
  const cacheDir = tempDir('finch-hub-');
  const onProgress = cutOnceAt(SHARD1, 1500);
  assert.equal((await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, retries: 0, onProgress }))).code, 'network');
  hub.ignoreRange.add(SHARD1);
  try {
    const r = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, retries: 0 });
    assert.equal(hub.fileRequests(SHARD1).at(-1)!.range, 'bytes=1500-', 'a resume was asked for');
    assert.equal(r.files.find((f) => f.path === SHARD1)!.resumedFrom, 0, 'but nothing of the part was kept');
    assert.deepEqual(readTree(r.dir), modelFiles);
  } finally {
    hub.ignoreRange.delete(SHARD1);
  }
});

test('by default a cut connection is resumed within the same call', async () => {
  const cacheDir = tempDir('finch-hub-');
  const before = hub.fileRequests(SHARD1).length;
  const r = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, onProgress: cutOnceAt(SHARD1, 1000) });
  const ranges = hub.fileRequests(SHARD1).slice(before).map((q) => q.range ?? null);
  assert.ok(ranges.includes('bytes=1000-'), JSON.stringify(ranges));
  assert.deepEqual(readTree(r.dir), modelFiles);
});

test('a gated repository: 401 without a token names the page and HF_TOKEN; 403 with an ungranted token; a granted token downloads', async () => {
  const cacheDir = tempDir('finch-hub-');
  const page = `${hub.url}/finch-test/gated-llama`;
  const e401 = await rejection(downloadRepo({ repo: 'finch-test/gated-llama', kind: 'model', endpoint: hub.url, cacheDir }));
  assert.equal(e401.code, 'unauthorized');
  assert.match(e401.message, /finch-test\/gated-llama is gated/);
  assert.ok(e401.hint.includes(`request access on ${page}`), e401.hint);
  assert.match(e401.hint, /HF_TOKEN/);

  const e403 = await rejection(downloadRepo({ repo: 'finch-test/gated-llama', kind: 'model', endpoint: hub.url, cacheDir, token: 'hf_not_granted' }));
  assert.equal(e403.code, 'forbidden');
  assert.ok(e403.hint.includes(page), e403.hint);

  process.env.HF_TOKEN = 'hf_granted'; // the environment is read when no token is passed
  try {
    const r = await downloadRepo({ repo: 'finch-test/gated-llama', kind: 'model', endpoint: hub.url, cacheDir });
    assert.deepEqual(readTree(r.dir), modelFiles);
  } finally {
    delete process.env.HF_TOKEN;
  }
  assert.ok(hub.requests.some((q) => q.authorization === 'Bearer hf_granted'));
  // The token never follows the redirect to the CDN.
  assert.ok(hub.requests.filter((q) => q.url.startsWith('/cdn/')).every((q) => q.authorization === undefined));
});

test('an unknown repository is not_found (401 RepoNotFound without a token, 404 with one); a malformed id or token is bad_request', async () => {
  for (const token of [undefined, 'hf_granted']) {
    const e = await rejection(downloadRepo({ repo: 'finch-test/no-such-model', kind: 'model', endpoint: hub.url, token, cacheDir: tempDir() }));
    assert.equal(e.code, 'not_found');
    assert.match(e.message, /model finch-test\/no-such-model does not exist/);
    assert.match(e.hint, /--dataset/);
  }
  assert.equal((await rejection(downloadRepo({ repo: '../etc', kind: 'model', endpoint: hub.url }))).code, 'bad_request');
  assert.equal((await rejection(downloadRepo({ repo: 'a/b', kind: 'model', endpoint: hub.url, token: 'secret' }))).code, 'bad_request');
  const refused = await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, token: 'hf_unknown', cacheDir: tempDir() }));
  assert.equal(refused.code, 'unauthorized');
  assert.match(refused.message, /token is invalid/);
});

test('an unknown revision is revision_not_found and names it', async () => {
  const e = await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', revision: 'no-such-branch', kind: 'model', endpoint: hub.url, cacheDir: tempDir() }));
  assert.equal(e.code, 'revision_not_found');
  assert.match(e.message, /revision "no-such-branch" does not exist in model finch-test\/tiny-llama/);
});

test('cancel: aborting mid-file rejects with cancelled and keeps the .part for a later resume', async () => {
  const cacheDir = tempDir('finch-hub-');
  hub.stallAfter.set(SHARD1, 2000);
  const ac = new AbortController();
  const p = downloadRepo({
    repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, signal: ac.signal,
    onProgress: (e) => { if (e.file === SHARD1 && e.fileBytes >= 2000) ac.abort(); },
  });
  const e = await rejection(p);
  hub.stallAfter.delete(SHARD1);
  assert.equal(e.code, 'cancelled');
  const dest = join(cacheDir, 'models', 'finch-test', 'tiny-llama', COMMIT, SHARD1);
  assert.equal(statSync(`${dest}.part`).size, 2000);
  const r = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir });
  assert.equal(r.files.find((f) => f.path === SHARD1)!.resumedFrom, 2000);
  assert.deepEqual(readTree(r.dir), modelFiles);
});

test('a file whose bytes differ from the hash the Hub lists is refused and its part deleted', async () => {
  const cacheDir = tempDir('finch-hub-');
  for (const path of [SHARD1, 'tokenizer.json']) { // sha256 of an LFS file; git blob id of a small one
    hub.corrupt.add(path);
    try {
      const e = await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, files: [path] }));
      assert.equal(e.code, 'integrity');
      assert.match(e.message, new RegExp(`${path.replace('.', '\\.')} of model finch-test/tiny-llama: (sha256|git blob id) [0-9a-f]+ differs`));
    } finally {
      hub.corrupt.delete(path);
    }
    const dest = join(cacheDir, 'models', 'finch-test', 'tiny-llama', COMMIT, path);
    assert.ok(!existsSync(dest) && !existsSync(`${dest}.part`));
  }
});

test('a second download of a file being downloaded is refused as busy; other files of the repository are not', async () => {
  const cacheDir = tempDir('finch-hub-');
  hub.stallAfter.set(SHARD1, 500);
  const ac = new AbortController();
  let stalled!: () => void;
  const reached = new Promise<void>((r) => { stalled = r; });
  const first = downloadRepo({
    repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, signal: ac.signal,
    onProgress: (e) => { if (e.file === SHARD1 && e.fileBytes >= 500) stalled(); },
  });
  await within(reached, 60_000, 'the first download to stall after 500 bytes of the shard');
  const busy = await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir }));
  assert.equal(busy.code, 'busy');
  assert.match(busy.message, /is already being downloaded/);
  const other = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir, files: ['config.json'] });
  assert.equal(other.files.length, 1);
  ac.abort();
  assert.equal((await rejection(first)).code, 'cancelled');
  hub.stallAfter.delete(SHARD1);
  const done = await downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, cacheDir });
  assert.deepEqual(readTree(done.dir), modelFiles, 'the lock is released after the cancelled download');
});

test('pickle is refused by name, and a model with only pickle weights is no_weights', async () => {
  const n = hub.requests.length;
  const e = await rejection(downloadRepo({ repo: 'finch-test/tiny-llama', kind: 'model', endpoint: hub.url, files: ['pytorch_model.bin'], cacheDir: tempDir() }));
  assert.equal(e.code, 'pickle_refused');
  assert.match(e.message, /pytorch_model\.bin .* pickle/);
  assert.ok(!hub.requests.slice(n).some((q) => q.url.includes('/resolve/')), 'nothing was downloaded');
  const w = await rejection(downloadRepo({ repo: 'finch-test/pickle-only', kind: 'model', endpoint: hub.url, cacheDir: tempDir() }));
  assert.equal(w.code, 'no_weights');
  assert.match(w.message, /only pickle weights \(pytorch_model\.bin\)/);
});

test('the disk-space check refuses a download larger than the free space before transferring anything', async () => {
  hub.add({ kind: 'model', id: 'finch-test/huge', files: modelFiles, sha: 'd'.repeat(40) });
  const { statfsSync } = await import('node:fs');
  const cacheDir = tempDir('finch-hub-');
  const free = statfsSync(cacheDir).bavail * statfsSync(cacheDir).bsize;
  // The listing claims a shard larger than the disk's free space (as a 70B model would on a small disk).
  hub.claimSize('finch-test/huge', SHARD1, free * 2);
  const n = hub.requests.length;
  const e = await rejection(downloadRepo({ repo: 'finch-test/huge', kind: 'model', endpoint: hub.url, cacheDir }));
  assert.equal(e.code, 'no_space');
  assert.match(e.message, /needs .* GB more in .*, but only .* are free/);
  assert.ok(!hub.requests.slice(n).some((q) => q.url.includes('/resolve/') && !q.url.endsWith('.index.json')));
});

test('a dataset repository: data files with format and split listed; the chosen one downloaded and readable', async () => {
  const rows = mathRows(12);
  const src = tempDir('finch-hub-ds-');
  parquetWriteFile({
    filename: join(src, 'train.parquet'),
    columnData: [{ name: 'query', data: rows.map((r) => r.query), type: 'STRING' }, { name: 'response', data: rows.map((r) => r.response), type: 'STRING' }],
  });
  const files = new Map<string, Buffer>([
    ['README.md', Buffer.from('# MetaMathQA (test copy)\n')],
    ['.gitattributes', Buffer.from('*.parquet filter=lfs\n')],
    ['MetaMathQA-395K.json', Buffer.from(JSON.stringify(rows))],
    ['data/train-00000-of-00001.parquet', readFileSync(join(src, 'train.parquet'))],
    ['data/validation.jsonl', Buffer.from(rows.slice(0, 3).map((r) => JSON.stringify(r)).join('\n') + '\n')],
    ['eval/test.csv', Buffer.from('query,response\n"1+1?","2"\n')],
    ['dataset_infos.json', Buffer.from('{}')],
  ]);
  hub.add({ kind: 'dataset', id: 'meta-math/MetaMathQA', files, sha: 'e'.repeat(40) });
  const listed = await listDatasetFiles({ repo: 'meta-math/MetaMathQA', endpoint: hub.url });
  assert.deepEqual(listed.sort((a, b) => (a.path < b.path ? -1 : 1)), [
    { path: 'MetaMathQA-395K.json', size: files.get('MetaMathQA-395K.json')!.length, format: 'json' },
    { path: 'data/train-00000-of-00001.parquet', size: files.get('data/train-00000-of-00001.parquet')!.length, format: 'parquet', split: 'train' },
    { path: 'data/validation.jsonl', size: files.get('data/validation.jsonl')!.length, format: 'jsonl', split: 'validation' },
    { path: 'eval/test.csv', size: files.get('eval/test.csv')!.length, format: 'csv', split: 'test' },
  ]);
  // A model id asked as a dataset (and the reverse) is not found, with a hint.
  assert.equal((await rejection(listDatasetFiles({ repo: 'finch-test/tiny-llama', endpoint: hub.url }))).code, 'not_found');

  const cacheDir = tempDir('finch-hub-');
  const r = await downloadRepo({ repo: 'meta-math/MetaMathQA', kind: 'dataset', files: ['data/train-00000-of-00001.parquet'], endpoint: hub.url, cacheDir });
  assert.deepEqual([...readTree(r.dir).keys()], ['data/train-00000-of-00001.parquet']);
  assert.ok(hub.requests.some((q) => q.url.startsWith('/datasets/meta-math/MetaMathQA/resolve/')));
  const opened = await openRows(r.files[0]!.localPath);
  const got = [];
  for await (const rec of opened.rows) got.push(rec.row);
  assert.deepEqual(got, rows);

  // Without a choice: every data file, no README or metadata.
  const all = await downloadRepo({ repo: 'datasets/meta-math/MetaMathQA', kind: 'dataset', endpoint: hub.url, cacheDir });
  assert.deepEqual(all.files.map((f) => f.path).sort(), listed.map((f) => f.path).sort());
});

test('a dataset without data files lists the Hub\'s Parquet conversion (refs/convert/parquet), which then downloads', async () => {
  const src = tempDir('finch-hub-ds-');
  const rows = mathRows(4);
  parquetWriteFile({ filename: join(src, 'p.parquet'), columnData: [{ name: 'query', data: rows.map((r) => r.query), type: 'STRING' }] });
  const parquet = readFileSync(join(src, 'p.parquet'));
  hub.add({
    kind: 'dataset', id: 'finch-test/scripted', sha: '4'.repeat(40), files: new Map([['README.md', Buffer.from('#')], ['scripted.py', Buffer.from('import datasets')]]),
    branches: { 'refs/convert/parquet': { sha: '5'.repeat(40), files: new Map([['default/train/0000.parquet', parquet], ['default/test/0000.parquet', parquet]]) } },
  });
  const listed = await listDatasetFiles({ repo: 'finch-test/scripted', endpoint: hub.url });
  assert.deepEqual(listed.map((f) => [f.path, f.split, f.revision]).sort(), [
    ['default/test/0000.parquet', 'test', PARQUET_CONVERSION], ['default/train/0000.parquet', 'train', PARQUET_CONVERSION],
  ]);
  const cacheDir = tempDir('finch-hub-');
  const e = await rejection(downloadRepo({ repo: 'finch-test/scripted', kind: 'dataset', endpoint: hub.url, cacheDir }));
  assert.equal(e.code, 'not_found');
  assert.ok(e.hint.includes(`finch-test/scripted@${PARQUET_CONVERSION}`), e.hint);
  const train = listed.find((f) => f.split === 'train')!;
  const r = await downloadRepo({ repo: 'finch-test/scripted', kind: 'dataset', revision: train.revision, files: [train.path], endpoint: hub.url, cacheDir });
  assert.equal(r.commit, '5'.repeat(40));
  assert.deepEqual(readFileSync(r.files[0]!.localPath), parquet);
  // Asked for a revision, the listing is of that revision only.
  assert.deepEqual(await listDatasetFiles({ repo: 'finch-test/scripted', revision: 'main', endpoint: hub.url }), []);
});
