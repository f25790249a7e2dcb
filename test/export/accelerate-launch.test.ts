// The way out of one machine, end to end: a short float run of the demo model by `finch train`,
// `finch export accelerate`, the exported train.py under `accelerate launch` in two processes on
// the CPU (DDP over gloo) in the Python venv of .ci/run, and the adapter it writes taken back by
// Finch: imported into the library, evaluated by `finch eval` (loss well below the base's) and
// chatted with by `finch generate --chat`. A DPO run likewise, on TRL's DPOTrainer: its adapter is
// imported and `finch eval --method dpo` scores it on held-out pairs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startApp } from '../helpers/app.js';
import { events, finch, tempDir } from '../helpers/fixtures.js';
import { need, VENV_PYTHON } from '../helpers/prerequisites.js';

const ASSETS = new URL('../../assets/demo/', import.meta.url).pathname;
const MODEL = join(ASSETS, 'model');
const MAP = 'prompt=query,completion=response';
const REQUIREMENTS = new URL('../../.ci/python-requirements.txt', import.meta.url).pathname;
// Few steps of short sequences at a high rate: the adapter moves far from the base in seconds.
const STEPS = 12, BATCH = 4, PROCESSES = 2;

/** Runs a command to its end, failing with what it was, its exit and its last output. */
function run(what: string, cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: o.cwd, env: o.env, timeout: o.timeoutMs });
  const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
  if (r.error) assert.fail(`${what}: ${r.error.message} (limit ${o.timeoutMs / 1000} s)\n${tail}`);
  return { ...r, tail };
}

/** Finch takes the adapter back: the library imports it against the demo model with the run's rank and alpha. */
async function importBack(adapter: string, name: string): Promise<void> {
  const app = await startApp('dispatcher');
  try {
    const model = await app.api.addLocalModel({ path: MODEL, name: 'demo' });
    const imported = await app.api.importAdapter({ path: adapter, baseModelId: model.id, name });
    assert.deepEqual([imported.rank, imported.alpha, imported.origin], [8, 16, 'imported']);
  } finally {
    await app.close();
  }
}

/** The first 60 rows of one of the demo's data files, written under `root`: enough to tell, quick to score. */
function heldOutRows(root: string, file: string): string {
  const heldOut = join(root, 'held-out.jsonl');
  writeFileSync(heldOut, readFileSync(join(ASSETS, 'data', file), 'utf8').split('\n').slice(0, 60).join('\n') + '\n');
  return heldOut;
}

test('a Finch run exported for Accelerate trains in 2 processes on the CPU, and Finch imports, evaluates and chats with its adapter', { timeout: 540_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  const root = tempDir('finch-accelerate-launch-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const runDir = join(root, 'run'), exportDir = join(root, 'export'), hfOut = join(root, 'hf');

  const trained = await finch(['train', '--model', MODEL, '--data', join(ASSETS, 'data', 'train.jsonl'), '--map', MAP,
    '--seq-len', '64', '--batch', String(BATCH), '--rank', '8', '--alpha', '16', '--lr', '3e-3', '--max-steps', String(STEPS),
    '--val-fraction', '0.02', '--threads', '2', '--out', runDir, '--json']);
  assert.equal(trained.code, 0, trained.stderr);
  const exported = await finch(['export', 'accelerate', '--run', runDir, '--out', exportDir, '--json']);
  assert.equal(exported.code, 0, exported.stderr);
  const { train_rows: trainRows } = events(exported.stdout).at(-1) as { train_rows: number };
  // The export's README names the versions CI trains with: the pins of the venv.
  const readme = readFileSync(join(exportDir, 'README.md'), 'utf8');
  for (const line of readFileSync(REQUIREMENTS, 'utf8').split('\n').filter((l) => /^[a-z]+==/.test(l) && !l.startsWith('trl'))) {
    const [name, version] = line.split('==') as [string, string];
    assert.ok(readme.includes(`${name} ${version.split('.').slice(0, 2).join('.')}`), `the export's README names ${name} ${version}`);
  }

  // `accelerate launch` as the README says for a machine without a GPU: two processes (torchrun),
  // each training on the CPU; gloo carries the gradients.
  const launch = run('accelerate launch', VENV_PYTHON, ['-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', String(PROCESSES),
    '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no', 'train.py', '--output-dir', hfOut], {
    cwd: exportDir, env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false' }, timeoutMs: 300_000,
  });
  assert.equal(launch.status, 0, `accelerate launch failed (exit ${launch.status ?? launch.signal}):\n${launch.tail}`);
  const checkpoint = readdirSync(hfOut).find((n) => n === `checkpoint-${STEPS}`);
  assert.ok(checkpoint, `the Trainer saved step ${STEPS}: ${readdirSync(hfOut).join(', ')}`);
  // Each step took BATCH rows in each of the 2 processes: the epoch count says how many took part.
  const state = JSON.parse(readFileSync(join(hfOut, checkpoint, 'trainer_state.json'), 'utf8')) as { global_step: number; epoch: number };
  assert.equal(state.global_step, STEPS);
  assert.ok(Math.abs(state.epoch - (STEPS * BATCH * PROCESSES) / trainRows) < 1e-6, `epoch ${state.epoch}: ${PROCESSES} processes of ${BATCH} rows over ${trainRows} rows`);
  const adapter = join(hfOut, 'adapter');
  assert.ok(existsSync(join(adapter, 'adapter_model.safetensors')), launch.tail);

  // Finch takes it back: the library imports it, finch eval scores it.
  await importBack(adapter, 'from accelerate');
  const heldOut = heldOutRows(root, 'test.jsonl');
  const scored = await finch(['eval', '--model', MODEL, '--adapter', adapter, '--data', heldOut, '--map', MAP,
    '--seq-len', '64', '--threads', '2', '--json']);
  assert.equal(scored.code, 0, scored.stderr);
  const ev = events(scored.stdout).at(-1) as { loss: number; base: { loss: number } };
  t.diagnostic(`held-out loss: base ${ev.base.loss.toFixed(3)}, adapter trained by accelerate launch ${ev.loss.toFixed(3)}`);
  assert.ok(ev.loss < ev.base.loss - 1, `the adapter's held-out loss ${ev.loss} is well below the base's ${ev.base.loss}`);

  const chat = await finch(['generate', '--model', MODEL, '--adapter', adapter, '--chat', '--max-new-tokens', '24', '--json',
    '--prompt', 'Omar has 12 pears. He loses 7 of them. How many pears does Omar have left?']);
  assert.equal(chat.code, 0, chat.stderr);
  const reply = events(chat.stdout).at(-1) as { text: string; ids: number[] };
  assert.ok(reply.ids.length > 0 && reply.text.trim().length > 0, `a reply: ${JSON.stringify(reply)}`);
});

test('a DPO run exported for Accelerate trains on TRL\'s DPOTrainer in 2 processes on the CPU, and Finch imports and evaluates its adapter', { timeout: 540_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  const root = tempDir('finch-accelerate-dpo-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const runDir = join(root, 'run'), exportDir = join(root, 'export'), hfOut = join(root, 'hf');
  const DPO_STEPS = 8;

  const trained = await finch(['train', '--model', MODEL, '--data', join(ASSETS, 'data', 'preference-train.jsonl'), '--method', 'dpo', '--beta', '0.1',
    '--seq-len', '64', '--batch', String(BATCH), '--rank', '8', '--alpha', '16', '--lr', '3e-3', '--max-steps', '2',
    '--val-fraction', '0.05', '--threads', '2', '--out', runDir, '--json']);
  assert.equal(trained.code, 0, trained.stderr);
  // The export carries the run's settings; the launch below takes more steps than the Finch run did.
  const exported = await finch(['export', 'accelerate', '--run', runDir, '--out', exportDir, '--json']);
  assert.equal(exported.code, 0, exported.stderr);
  const { train_rows: trainPairs } = events(exported.stdout).at(-1) as { train_rows: number };
  const readme = readFileSync(join(exportDir, 'README.md'), 'utf8');
  const trl = readFileSync(REQUIREMENTS, 'utf8').split('\n').find((l) => l.startsWith('trl=='))!.split('==')[1]!;
  assert.ok(readme.includes(`trl ${trl.split('.').slice(0, 2).join('.')}`), `the export's README names trl ${trl}`);
  const script = join(exportDir, 'train.py');
  writeFileSync(script, readFileSync(script, 'utf8').replace(/max_steps=2,/, `max_steps=${DPO_STEPS},`));

  const launch = run('accelerate launch (DPO)', VENV_PYTHON, ['-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', String(PROCESSES),
    '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no', 'train.py', '--output-dir', hfOut], {
    cwd: exportDir, env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false' }, timeoutMs: 300_000,
  });
  assert.equal(launch.status, 0, `accelerate launch failed (exit ${launch.status ?? launch.signal}):\n${launch.tail}`);
  const checkpoint = readdirSync(hfOut).find((n) => n === `checkpoint-${DPO_STEPS}`);
  assert.ok(checkpoint, `the trainer saved step ${DPO_STEPS}: ${readdirSync(hfOut).join(', ')}`);
  type Log = { step: number; loss?: number; 'rewards/accuracies'?: number };
  const state = JSON.parse(readFileSync(join(hfOut, checkpoint, 'trainer_state.json'), 'utf8')) as { global_step: number; epoch: number; log_history: Log[] };
  assert.equal(state.global_step, DPO_STEPS);
  // Each step took BATCH pairs in each of the 2 processes: an epoch is ceil(pairs / (BATCH x 2)) steps.
  const stepsPerEpoch = Math.ceil(trainPairs / (BATCH * PROCESSES));
  assert.ok(Math.abs(state.epoch - DPO_STEPS / stepsPerEpoch) < 1e-6, `epoch ${state.epoch}: ${PROCESSES} processes of ${BATCH} pairs over ${trainPairs}`);
  // At step 1 the LoRA is zero, so the policy is its reference (the base with the LoRA off): loss log 2.
  const first = state.log_history.find((l) => l.step === 1 && l.loss !== undefined)!;
  assert.ok(Math.abs(first.loss! - Math.log(2)) < 1e-3, `the first DPO loss ${first.loss} is log 2`);
  const adapter = join(hfOut, 'adapter');
  assert.ok(existsSync(join(adapter, 'adapter_model.safetensors')), launch.tail);

  await importBack(adapter, 'dpo from accelerate');
  const heldOut = heldOutRows(root, 'preference-test.jsonl');
  const scored = await finch(['eval', '--method', 'dpo', '--model', MODEL, '--adapter', adapter, '--data', heldOut, '--seq-len', '64', '--threads', '2', '--json']);
  assert.equal(scored.code, 0, scored.stderr);
  const ev = events(scored.stdout).at(-1) as { loss: number; pairs: number; reward_accuracy: number; reward_margin: number };
  t.diagnostic(`held-out DPO loss ${ev.loss.toFixed(4)} (log 2 = 0.6931 for the base), reward accuracy ${ev.reward_accuracy.toFixed(3)}, margin ${ev.reward_margin.toFixed(4)}`);
  assert.equal(ev.pairs, 60);
  assert.ok(ev.reward_accuracy >= 0 && ev.reward_accuracy <= 1);
  // The adapter prefers the chosen answers on pairs it never saw: the loss is below the reference's log 2.
  assert.ok(ev.reward_margin > 0 && ev.loss < Math.log(2), `held-out loss ${ev.loss}, margin ${ev.reward_margin}`);
});
