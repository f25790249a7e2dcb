// `finch push` end to end against the local fake Hub: JSON events and the repository it made, the
// plain output (the address on stdout), --private, --dry-run (the card, no request), and the
// failures a user meets first: no token, a namespace that is not theirs, a bad command line.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { peftAdapterConfig } from '../../../src-main/model/adapter.js';
import { events, finch, tempDir, useFinchHome } from '../../helpers/fixtures.js';
import { FakeHub } from '../../hub/fake-hub.js';

delete process.env.HF_TOKEN;
delete process.env.HF_ENDPOINT;
const hub = new FakeHub();
const COMMIT = 'd'.repeat(40);
let run: string;
let restoreHome: () => void;

before(async () => {
  restoreHome = useFinchHome(tempDir('finch-push-cli-home-'));
  run = join(tempDir(), 'run');
  mkdirSync(join(run, 'checkpoints'), { recursive: true });
  const model = `/somewhere/hub/models/Qwen/Qwen2.5-0.5B-Instruct/${COMMIT}`;
  const lora = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'] };
  writeFileSync(join(run, 'adapter_config.json'), JSON.stringify(peftAdapterConfig({ ...lora, targets: ['q_proj', 'v_proj'] }, model)));
  writeFileSync(join(run, 'adapter_model.safetensors'), Buffer.alloc(4096, 1));
  writeFileSync(join(run, 'run.json'), JSON.stringify({
    config: { model, data: '/data/rows.jsonl', out: run, lora }, status: 'completed', step: 12, losses: [{ step: 12, loss: 1.25 }], evals: [],
  }));
  hub.addUser('hf_alice', 'alice');
  await hub.start();
});
after(async () => {
  await hub.stop();
  restoreHome();
});

test('finch push --adapter --json: start, phases, progress and done; the repository holds the adapter and its card', async () => {
  const r = await finch(['push', '--repo', 'alice/tiny-lora', '--adapter', run, '--endpoint', hub.url, '--token', 'hf_alice', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const ev = events(r.stdout);
  assert.equal(ev[0]!.type, 'start');
  assert.deepEqual(ev[0]!.files, ['adapter_config.json', 'adapter_model.safetensors', 'README.md']);
  assert.deepEqual(ev.filter((e) => e.type === 'phase').map((e) => e.phase), ['creating', 'hashing', 'uploading', 'committing', 'publishing']);
  const done = ev.at(-1) as { type: string; url: string; private: boolean; created: boolean; commit: string };
  assert.equal(done.type, 'done');
  assert.equal(done.url, `${hub.url}/alice/tiny-lora`);
  assert.deepEqual([done.private, done.created], [false, true]);
  const repo = hub.repo('alice/tiny-lora')!;
  assert.equal(repo.sha, done.commit);
  assert.match(repo.files.get('README.md')!.toString(), /^---\nbase_model: Qwen\/Qwen2\.5-0\.5B-Instruct\n/);
  assert.match(repo.files.get('README.md')!.toString(), /\| Final training loss \| 1\.25 \|/);
  assert.equal(JSON.parse(repo.files.get('adapter_config.json')!.toString()).base_model_name_or_path, 'Qwen/Qwen2.5-0.5B-Instruct');
});

test('plain output: the address on stdout, notes on stderr; --private keeps the repository private', async () => {
  const r = await finch(['push', '--repo', 'alice/private-lora', '--adapter', run, '--private', '--endpoint', hub.url, '--token', 'hf_alice']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `${hub.url}/alice/private-lora`);
  assert.match(r.stderr, /note: run\.json stays home: the run record/);
  assert.match(r.stderr, /note: checkpoints stays home/);
  assert.match(r.stderr, /3 files in commit [0-9a-f]{10} \([\d.]+ MB sent\); private/);
  assert.equal(hub.repo('alice/private-lora')!.private, true);
});

test('--dry-run prints the model card and the files, and sends nothing', async () => {
  const before = hub.requests.length;
  const r = await finch(['push', '--repo', 'alice/dry', '--adapter', run, '--base-model', 'Qwen/Qwen2.5-0.5B', '--dataset', 'meta-math/MetaMathQA', '--dry-run', '--endpoint', hub.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^---\nbase_model: Qwen\/Qwen2\.5-0\.5B\n[\s\S]*datasets:\n {2}- meta-math\/MetaMathQA\n/);
  assert.match(r.stderr, /would push to alice\/dry: adapter_config\.json, adapter_model\.safetensors, README\.md/);
  assert.equal(hub.requests.length, before, 'no request');
});

test('no token, another user\'s namespace, and a bad command line fail with what to do', async () => {
  const none = await finch(['push', '--repo', 'alice/x', '--adapter', run, '--endpoint', hub.url]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /finch push: pushing to alice\/x needs a Hugging Face token with write access\n {2}create a token with write access/);
  const other = await finch(['push', '--repo', 'bob/x', '--adapter', run, '--endpoint', hub.url, '--token', 'hf_alice', '--json']);
  assert.equal(other.code, 1);
  const err = events(other.stdout).at(-1)!;
  assert.equal(err.code, 'forbidden');
  assert.match(String(err.hint), /"bob" must be the token's account/);
  const two = await finch(['push', '--repo', 'alice/x', '--adapter', run, '--gguf', 'x.gguf']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /one of --adapter, --merged, --gguf at a time/);
  const noRepo = await finch(['push', '--adapter', run]);
  assert.equal(noRepo.code, 2);
  assert.match(noRepo.stderr, /which repository\? \(--repo USER\/NAME\)/);
  const badId = await finch(['push', '--repo', 'alice/x', '--adapter', run, '--base-model', '/a/path']);
  assert.equal(badId.code, 2);
});
