// `finch train --provider webgpu --strict-provider` on the bundled demo model and data: every node
// runs on WebGPU (lavapipe in CI), the loss falls, a PEFT adapter is written, and run.json names
// the provider and the adapter.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { finch, tempDir } from '../../helpers/fixtures.js';

const work = tempDir();
after(() => rmSync(work, { recursive: true, force: true }));

test('finch train --provider webgpu --strict-provider: falling loss, a PEFT adapter, provider and adapter recorded', { timeout: 900_000 }, async () => {
  // 64 problems of the demo set: short steps on a software adapter.
  const rows = readFileSync('assets/demo/data/train.jsonl', 'utf8').split('\n').filter(Boolean).slice(0, 64);
  const data = join(work, 'train.jsonl'), out = join(work, 'run');
  writeFileSync(data, rows.join('\n') + '\n');
  const r = await finch(['train', '--model', 'assets/demo/model', '--data', data, '--out', out, '--map', 'prompt=query,completion=response',
    '--max-steps', '8', '--batch', '4', '--lr', '3e-3', '--val-fraction', '0', '--provider', 'webgpu', '--strict-provider', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const device = events.find((e) => e.event === 'device')!;
  assert.equal(device.provider, 'webgpu');
  assert.equal(device.strict, true);
  assert.deepEqual(device.fallback_nodes, []);
  const losses = events.filter((e) => e.event === 'step').map((e) => e.loss as number);
  assert.equal(losses.length, 8);
  const head = (losses[0]! + losses[1]!) / 2, tail = (losses[6]! + losses[7]!) / 2;
  assert.ok(tail < 0.8 * head, `the loss falls: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  assert.ok(existsSync(join(out, 'adapter_model.safetensors')) && existsSync(join(out, 'adapter_config.json')), readdirSync(out).join(', '));
  const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { device: { provider: string; adapter: { vendor: string; description: string } | null } };
  assert.equal(run.device.provider, 'webgpu');
  assert.ok(run.device.adapter && run.device.adapter.vendor.length > 0, `the adapter is recorded: ${JSON.stringify(run.device)}`);
});
