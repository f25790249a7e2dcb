// Runs written before the run configuration became one schema (test/fixtures/compat-2026-12-07,
// made by commit fa4f0da): with the same settings today's trainer writes the very same adapter
// and optimizer bytes, a `--config` YAML in that spelling still runs, and a run killed then
// resumes from its checkpoint into the folder it is given, ending where the uninterrupted run did.
// Their run.json and trainer_state.json configs parse through the schema unchanged (and equal what
// today's command line makes of the same options), and the app imports the folders as CLI runs and
// resumes the killed one.
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FinchEvent } from '../../src-shared/api.js';
import { readStoredConfig } from '../../src-shared/run-config.js';
import { RUN_OPTIONS, configFrom, readConfigFile } from '../../src-main/cli/run-options.js';
import { startApp } from '../helpers/app.js';
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

/** The promise, or an error naming what it waited for after `ms`. */
const within = <T>(p: Promise<T>, what: string, ms = 300_000) => Promise.race([
  p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms).unref()),
]);

const STORED = ['float/run.json', 'int4-dropout/run.json', 'accum/run.json', 'killed/run.json', 'killed/checkpoints/step-00000002/trainer_state.json'];
const configOf = (file: string) => (JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as { config: Record<string, unknown> }).config;
/** The settings added since fa4f0da, at their defaults: a run of then is an SFT run. */
const ADDED_SINCE = { method: 'sft', beta: 0.1, labelSmoothing: 0, orpoLambda: 0.1, initAdapter: null, deviceState: true, ignoreMemoryEstimate: false };

test('every stored config of fa4f0da parses through the run-configuration schema, every value kept', () => {
  for (const file of STORED) {
    const stored = configOf(file);
    const parsed = readStoredConfig(stored, file) as Record<string, unknown>;
    for (const [k, v] of Object.entries(stored)) assert.deepEqual(parsed[k], v, `${file}: ${k}`);
    // Only settings the file predates are added, at their defaults.
    const added = Object.fromEntries(Object.keys(parsed).filter((k) => !(k in stored)).map((k) => [k, parsed[k]]));
    assert.deepEqual(added, ADDED_SINCE, file);
  }
});

test('today\'s command line makes the same config of those runs\' options as fa4f0da did', () => {
  const option = (args: string[]) => Object.fromEntries(args.flatMap((a, i) => {
    if (!a.startsWith('--') || a === '--json') return [];
    const next = args[i + 1];
    return [[a.slice(2), next === undefined || next.startsWith('--') ? true : next]];
  }));
  const same = (made: object, fixture: string) => assert.deepEqual({ ...made, out: '' }, { ...configOf(fixture), ...ADDED_SINCE, out: '' }, fixture);
  same(configFrom(option([...COMMON, '--dropout', '0', '--out', 'x'])), 'float/run.json');
  same(configFrom(option([...COMMON, '--dropout', '0.1', '--4bit', '--out', 'x'])), 'int4-dropout/run.json');
  const yaml = join(FIXTURES, 'accum.yaml');
  same(configFrom({ out: 'x' }, { path: yaml, values: readConfigFile(yaml, Object.keys(RUN_OPTIONS)) }), 'accum/run.json');
});

test('the app imports the run folders of fa4f0da as command-line runs, and resumes the killed one where it stopped', async () => {
  const app = await startApp('dispatcher');
  try {
    for (const name of ['float', 'int4-dropout', 'accum', 'killed']) cpSync(join(FIXTURES, name), join(app.home, 'runs', name), { recursive: true });
    const runs = await app.api.listRuns();
    const byName = new Map(runs.map((r) => [r.name, r]));
    assert.deepEqual([...byName.keys()].sort(), ['accum', 'float', 'int4-dropout', 'killed']);
    for (const name of ['float', 'int4-dropout', 'accum']) {
      const r = byName.get(name)!;
      assert.equal(r.origin, 'cli');
      assert.equal(r.status, 'completed', name);
      assert.equal(r.step, 4);
      assert.equal(r.provider, 'cpu', 'the provider the run used (run.json device), not "auto"');
      assert.equal(r.adapterPath, join(app.home, 'runs', name));
      const d = await app.api.runDetails(r.id);
      assert.deepEqual(d.metrics.map((m) => m.step), [1, 2, 3, 4]);
      assert.deepEqual(d.metrics.map((m) => m.loss), (JSON.parse(readFileSync(join(FIXTURES, name, 'run.json'), 'utf8')) as { losses: { loss: number }[] }).losses.map((l) => l.loss));
      assert.equal(d.trainConfig?.out, join(app.home, 'runs', name), 'a resume continues in the folder found');
      assert.equal((d.trainConfig?.lora as { rank: number }).rank, 4);
    }
    const killed = byName.get('killed')!;
    assert.equal(killed.status, 'interrupted');
    assert.equal(killed.step, 2);
    const killedDetails = await app.api.runDetails(killed.id);
    assert.deepEqual(killedDetails.checkpoints.map((c) => c.step), [2]);
    assert.deepEqual(killedDetails.metrics.map((m) => m.step), [1, 2], 'its history up to the checkpoint');

    await app.api.resumeRun(killed.id);
    const done = await within(app.waitFor((e): e is Extract<FinchEvent, { type: 'run-status' }> => e.type === 'run-status' && e.runId === killed.id && ['completed', 'failed'].includes(e.status)), 'the resumed run to end');
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.ok(app.events.some((e) => e.type === 'run-resumed' && e.runId === killed.id && e.step === 2), 'resumed from the step-2 checkpoint');
    assertSameBytes(join(app.home, 'runs', 'killed'), 'float');
  } finally {
    await app.close();
  }
});
