// The way out of one machine, end to end: a short float run of the demo model by `finch train`,
// `finch export accelerate`, the exported train.py under `accelerate launch` in two processes on
// the CPU (DDP over gloo) in the Python venv of .ci/run, and the adapter it writes taken back by
// Finch: imported into the library, evaluated by `finch eval` (loss well below the base's) and
// chatted with by `finch generate --chat`.
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

  // Finch takes it back: the library imports it against the demo model, finch eval scores it.
  const app = await startApp('dispatcher');
  try {
    const model = await app.api.addLocalModel({ path: MODEL, name: 'demo' });
    const imported = await app.api.importAdapter({ path: adapter, baseModelId: model.id, name: 'from accelerate' });
    assert.deepEqual([imported.rank, imported.alpha, imported.origin], [8, 16, 'imported']);
  } finally {
    await app.close();
  }
  const heldOut = join(root, 'held-out.jsonl'); // 60 of the demo's test rows: enough to tell, quick to score
  writeFileSync(heldOut, readFileSync(join(ASSETS, 'data', 'test.jsonl'), 'utf8').split('\n').slice(0, 60).join('\n') + '\n');
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
