// Runs written before the run configuration became one schema (test/fixtures/compat-2026-12-07,
// made by commit fa4f0da): with the same settings today's trainer writes the very same adapter
// and optimizer bytes, a `--config` YAML in that spelling still runs, and a run killed then
// resumes from its checkpoint into the folder it is given, ending where the uninterrupted run did.
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { finch, tempDir } from '../helpers/fixtures.js';

const FIXTURES = new URL('../fixtures/compat-2026-12-07/', import.meta.url).pathname;
const DATA = 'test/fixtures/compat-2026-12-07/data.jsonl'; // relative: the runs' configs name it so
const COMMON = ['--model', 'assets/demo/model', '--data', DATA, '--map', 'prompt=query,completion=response', '--seq-len', '64', '--batch', '2',
  '--rank', '4', '--alpha', '8', '--lr', '1e-3', '--max-steps', '4', '--checkpoint-every', '2', '--val-fraction', '0.125', '--seed', '5', '--threads', '1', '--json'];
const work = tempDir('finch-compat-');

/** The final adapter and the last checkpoint's optimizer state of a run folder equal the fixture's, byte for byte. */
function assertSameBytes(out: string, fixture: string): void {
  const same = (a: string, b: string) => assert.ok(readFileSync(a).equals(readFileSync(b)), `${a} differs from ${b}`);
  same(join(out, 'adapter_model.safetensors'), join(FIXTURES, fixture, 'adapter_model.safetensors'));
  same(join(out, 'checkpoints', 'step-00000004', 'optimizer.safetensors'), join(FIXTURES, fixture, 'optimizer.safetensors'));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')), JSON.parse(readFileSync(join(FIXTURES, fixture, 'adapter_config.json'), 'utf8')));
}

const train = async (args: string[]) => {
  const r = await finch(['train', ...args]); // the test runner's cwd is the repository root, as the fixtures' relative paths need
  assert.equal(r.code, 0, r.stderr);
  return r;
};

test('the same settings train the same float adapter and optimizer state as fa4f0da', async () => {
  const out = join(work, 'float');
  await train([...COMMON, '--dropout', '0', '--out', out]);
  assertSameBytes(out, 'float');
});

test('the same settings train the same 4-bit adapter with dropout as fa4f0da', async () => {
  const out = join(work, 'int4-dropout');
  await train([...COMMON, '--dropout', '0.1', '--4bit', '--out', out]);
  assertSameBytes(out, 'int4-dropout');
});

test('a --config YAML in the spelling of fa4f0da (gradient accumulation, dropout) trains the same bytes', async () => {
  const out = join(work, 'accum');
  await train(['--config', join(FIXTURES, 'accum.yaml'), '--out', out]);
  assertSameBytes(out, 'accum');
});

test('a run killed under fa4f0da resumes into the folder given and ends as the uninterrupted run did', async () => {
  const out = join(work, 'killed');
  cpSync(join(FIXTURES, 'killed'), out, { recursive: true });
  const r = await train(['--resume', out, '--json']);
  assert.ok(r.stdout.includes('"event":"resumed","step":2'), r.stdout);
  assertSameBytes(out, 'float');
});
