// Models in the Hugging Face cache, laid out as `huggingface-cli download` and transformers leave
// them (models--org--name/{blobs,refs/main,snapshots/<commit>/* -> ../../blobs/<hash>}): the
// snapshot and the repository folder both open; the library shows the repository and the commit;
// the model trains, merges and exports to GGUF from there.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../src-main/model/load.js';
import { HfCacheError, repoOfCacheFolder, resolveModelFolder, resolveModelFolderSync } from '../../src-main/model/hf-cache.js';
import { finch, mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';
import { startApp } from '../helpers/app.js';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';

/** A cache entry for `repo` holding the files of model folder `src` as blobs, linked from one snapshot. */
function hfCacheOf(src: string, root: string, repo = 'org/tiny-llama'): { repoDir: string; snapshot: string } {
  const repoDir = join(root, `models--${repo.replace('/', '--')}`);
  const snapshot = join(repoDir, 'snapshots', COMMIT);
  mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(snapshot, { recursive: true });
  mkdirSync(join(repoDir, 'refs'));
  for (const name of readdirSync(src)) {
    const bytes = readFileSync(join(src, name));
    const blob = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(repoDir, 'blobs', blob), bytes);
    symlinkSync(join('..', '..', 'blobs', blob), join(snapshot, name)); // relative, as huggingface_hub links them
  }
  writeFileSync(join(repoDir, 'refs', 'main'), COMMIT);
  return { repoDir, snapshot };
}

const posix = process.platform !== 'win32';
const source = tinyCheckpoint();
const cache = tempDir('finch-hf-cache-');
const { repoDir, snapshot } = posix ? hfCacheOf(source, cache) : { repoDir: '', snapshot: '' };

test('repository and snapshot folders resolve to the snapshot, with the repository and commit', { skip: !posix }, async () => {
  assert.equal(repoOfCacheFolder('models--meta-llama--Llama-3.2-1B'), 'meta-llama/Llama-3.2-1B');
  assert.equal(repoOfCacheFolder('models--gpt2'), 'gpt2');
  assert.equal(repoOfCacheFolder('datasets--org--x'), null);
  for (const path of [repoDir, snapshot, `${repoDir}/`]) {
    assert.deepEqual(resolveModelFolderSync(path), { dir: snapshot, repo: 'org/tiny-llama', revision: COMMIT });
    assert.deepEqual(await resolveModelFolder(path), { dir: snapshot, repo: 'org/tiny-llama', revision: COMMIT });
  }
  assert.deepEqual(resolveModelFolderSync(source), { dir: source, repo: null, revision: null });
});

test('a repository folder without refs/main opens its only snapshot; several, or a ref to nothing, are named', { skip: !posix }, () => {
  const one = hfCacheOf(source, tempDir('finch-hf-one-'), 'org/one');
  rmSync(join(one.repoDir, 'refs'), { recursive: true });
  assert.equal(resolveModelFolderSync(one.repoDir).dir, one.snapshot);
  cpSync(one.snapshot, join(one.repoDir, 'snapshots', 'f'.repeat(40)), { recursive: true, verbatimSymlinks: true });
  assert.throws(() => resolveModelFolderSync(one.repoDir), (e: Error) => e instanceof HfCacheError && /no refs\/main and 2 snapshots/.test(e.message));
  mkdirSync(join(one.repoDir, 'refs'));
  writeFileSync(join(one.repoDir, 'refs', 'main'), 'e'.repeat(40));
  assert.throws(() => resolveModelFolderSync(one.repoDir), /points to commit e{40}, but .* is missing/);
});

test('loadModel reads a snapshot of links, or the repository folder, as the folder it came from', { skip: !posix }, () => {
  const plain = loadModel(source);
  for (const path of [snapshot, repoDir]) {
    const m = loadModel(path);
    try {
      assert.deepEqual(m.config, plain.config);
      assert.equal(m.tokenizer.vocabSize, plain.tokenizer.vocabSize);
      assert.deepEqual(Array.from(m.weights.read('model.norm.weight')), Array.from(plain.weights.read('model.norm.weight')));
    } finally {
      m.close();
    }
  }
  plain.close();
});

test('the library shows the repository and commit; the repository folder is the same entry as its snapshot', { skip: !posix }, async () => {
  const app = await startApp('dispatcher');
  try {
    const added = await app.api.addLocalModel({ path: snapshot });
    assert.equal(added.path, snapshot);
    assert.equal(added.repo, 'org/tiny-llama');
    assert.equal(added.revision, COMMIT);
    assert.equal(added.name, 'org/tiny-llama');
    assert.ok(added.sizeBytes > 0, 'the links are followed for the sizes');
    const again = await app.api.addLocalModel({ path: repoDir, name: 'another name' });
    assert.equal(again.id, added.id);
    const details = await app.api.modelDetails(added.id);
    assert.deepEqual(details.files.map((f) => f.name), readdirSync(source).sort());
  } finally {
    await app.close();
  }
});

test('finch trains from the repository folder, then merges and exports GGUF from it', { skip: !posix }, async () => {
  const work = tempDir('finch-hf-train-');
  const data = writeJsonl(join(work, 'math.jsonl'), mathRows(12));
  const out = join(work, 'run');
  const trained = await finch(['train', '--model', repoDir, '--data', data, '--out', out, '--map', 'prompt=query,completion=response', '--max-steps', '2', '--threads', '1']);
  assert.equal(trained.code, 0, trained.stderr);
  assert.ok(readdirSync(out).includes('adapter_model.safetensors'));

  const merged = join(work, 'merged');
  const m = await finch(['merge', '--model', repoDir, '--adapter', out, '--out', merged]);
  assert.equal(m.code, 0, m.stderr);
  for (const name of readdirSync(merged)) assert.ok(lstatSync(join(merged, name)).isFile(), `${name} is a file in the merged folder, not a link into the cache`);
  loadModel(merged).close();

  const gguf = join(work, 'model.gguf');
  const g = await finch(['export', 'gguf', '--model', repoDir, '--adapter', out, '--out', gguf, '--json']);
  assert.equal(g.code, 0, g.stderr);
  assert.ok(lstatSync(gguf).size > 0);
});
