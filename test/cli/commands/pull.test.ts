// `finch pull` end to end against the local fake Hub: JSON events and the folder, the plain output,
// a gated repository's error with its hint, the token saved in Finch's Settings (HF_TOKEN and
// --token before it; one encrypted by the desktop app is named and skipped), and a dataset's file list.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeSyntheticCheckpoint } from '../../../src-main/synthetic/checkpoint.js';
import { TokenStore } from '../../../src-main/store/token-store.js';
import { events, finch, tempDir, useFinchHome } from '../../helpers/fixtures.js';
import { FakeHub } from '../../hub/fake-hub.js';

delete process.env.HF_TOKEN;
// A FINCH_HOME of its own (the children inherit it): no token saved by the person running the tests.
const home = tempDir();
useFinchHome(home);
const hub = new FakeHub();
let model: Map<string, Buffer>;

before(async () => {
  const dir = writeSyntheticCheckpoint(join(tempDir(), 'model'), { hiddenSize: 32, numLayers: 1, numHeads: 2, vocabSize: 300 }).dir;
  model = new Map(readdirSync(dir).map((n) => [n, readFileSync(join(dir, n))]));
  hub.add({ kind: 'model', id: 'finch-test/tiny', files: new Map([...model, ['pytorch_model.bin', Buffer.from('pickle')]]), sha: '1'.repeat(40), refs: ['v2'] });
  hub.add({ kind: 'model', id: 'finch-test/gated', files: model, sha: '2'.repeat(40), gated: true });
  hub.add({ kind: 'dataset', id: 'meta-math/MetaMathQA', sha: '3'.repeat(40), files: new Map([
    ['MetaMathQA-395K.json', Buffer.from('[{"query":"1+1?","response":"2"}]')], ['data/test-0.jsonl', Buffer.from('{"query":"2+2?","response":"4"}\n')], ['README.md', Buffer.from('#')],
  ]) });
  await hub.start();
});
after(() => hub.stop());

test('finch pull REPO@REV --json: start, file, progress and done events; the folder holds the checkpoint', async () => {
  const cache = tempDir();
  const r = await finch(['pull', 'finch-test/tiny@v2', '--endpoint', hub.url, '--cache', cache, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const ev = events(r.stdout);
  const types = ev.map((e) => e.type);
  assert.equal(types[0], 'start');
  assert.equal(types.at(-1), 'done');
  assert.ok(types.includes('file') && types.includes('file-done'));
  const done = ev.at(-1) as { dir: string; revision: string; commit: string; skipped: { path: string; reason: string }[] };
  assert.equal(done.revision, 'v2');
  assert.equal(done.commit, '1'.repeat(40));
  assert.deepEqual(done.skipped.map((s) => s.path), ['pytorch_model.bin']);
  for (const [name, bytes] of model) assert.deepEqual(readFileSync(join(done.dir, name)), bytes, name);
  assert.equal((ev[0] as { total: number }).total, [...model.values()].reduce((a, b) => a + b.length, 0));

  const plain = await finch(['pull', 'finch-test/tiny', '--endpoint', hub.url, '--cache', cache]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout.trim(), done.dir, 'plain mode prints the folder on stdout');
  assert.match(plain.stderr, /note: skipped pytorch_model\.bin: pickle/);
  assert.match(plain.stderr, /already in the cache/);
});

test('finch pull of a gated repository fails with the request-access page and HF_TOKEN in the message', async () => {
  const r = await finch(['pull', 'finch-test/gated', '--endpoint', hub.url, '--cache', tempDir()]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`request access on ${hub.url}/finch-test/gated`), r.stderr);
  assert.match(r.stderr, /HF_TOKEN/);
  const j = await finch(['pull', 'finch-test/tiny', '--file', 'pytorch_model.bin', '--endpoint', hub.url, '--cache', tempDir(), '--json']);
  assert.equal(j.code, 1);
  assert.equal(events(j.stdout).at(-1)!.code, 'pickle_refused');
});

test('finch pull uses --token, else HF_TOKEN, else the token saved in Settings; an encrypted one is named and skipped', async () => {
  const tokens = new TokenStore(home);
  hub.validTokens.add('hf_saved').add('hf_env').add('hf_flag');
  hub.grantedTokens.add('hf_saved');
  let from = 0;
  const pull = async (extra: string[] = [], env?: string) => {
    if (env) process.env.HF_TOKEN = env;
    from = hub.requests.length;
    try {
      return await finch(['pull', 'finch-test/gated', '--endpoint', hub.url, '--cache', tempDir(), ...extra]);
    } finally {
      delete process.env.HF_TOKEN;
    }
  };
  /** The Authorization headers the last pull sent to the Hub's API. */
  const authOf = () => [...new Set(hub.requests.slice(from).filter((q) => q.url.startsWith('/api/')).map((q) => q.authorization))].join();
  try {
    await tokens.save('hf_saved');
    const r = await pull();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(authOf(), 'Bearer hf_saved');
    assert.equal((await pull([], 'hf_env')).code, 1, 'HF_TOKEN comes before the saved token (and is not granted)');
    assert.equal(authOf(), 'Bearer hf_env');
    assert.equal((await pull(['--token', 'hf_flag'], 'hf_env')).code, 1);
    assert.equal(authOf(), 'Bearer hf_flag');

    // The desktop app's keychain-encrypted token: the CLI cannot read it, says so, and goes on without.
    tokens.clear();
    writeFileSync(join(home, 'secrets', 'hf-token.enc'), Buffer.from('v11 ciphertext of the desktop keychain'));
    const enc = await pull();
    assert.equal(enc.code, 1);
    assert.equal(authOf(), '');
    assert.match(enc.stderr, /note: the saved Hugging Face token \(.*hf-token\.enc\) is encrypted with the desktop app's keychain, which only the app can use: pass --token or set HF_TOKEN.*; pulling without it/);
  } finally {
    tokens.clear();
  }
});

test('finch pull --dataset --list lists data files with format, size and split', async () => {
  const r = await finch(['pull', 'meta-math/MetaMathQA', '--dataset', '--list', '--endpoint', hub.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['MetaMathQA-395K.json\tjson\t33\t-', 'data/test-0.jsonl\tjsonl\t32\ttest']);
});
