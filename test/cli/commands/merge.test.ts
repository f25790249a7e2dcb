// `finch merge` end to end: greedy text from the merged checkpoint equals the base + adapter.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { savePeftAdapter } from '../../../src-main/model/adapter.js';
import { loadModelConfig } from '../../../src-main/model/config.js';
import { LORA_TARGETS, loraParams } from '../../../src-main/model/lora.js';
import { mulberry32 } from '../../../src-main/util/random.js';
import { finch, tempDir, tinyCheckpoint } from '../../helpers/fixtures.js';

test('the merged checkpoint generates what the base model with the adapter generates', async () => {
  const model = tinyCheckpoint();
  const work = tempDir();
  const cfg = loadModelConfig(model);
  const spec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const rand = mulberry32(9);
  const tensors = new Map(loraParams(cfg, spec).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.3)]));
  const adapter = join(work, 'adapter');
  savePeftAdapter(adapter, { spec, baseModel: model, tensors, cfg });
  const merged = join(work, 'merged');
  const m = await finch(['merge', '--model', model, '--adapter', adapter, '--out', merged, '--json']);
  assert.equal(m.code, 0, m.stderr);
  assert.ok(JSON.parse(m.stdout.trim().split('\n').at(-1)!).merged > 0);
  const args = ['--prompt', 'the shop', '--max-new-tokens', '24', '--json', '--threads', '1'];
  const withAdapter = await finch(['generate', '--model', model, '--adapter', adapter, ...args]);
  const fromMerged = await finch(['generate', '--model', merged, ...args]);
  const base = await finch(['generate', '--model', model, ...args]);
  for (const r of [withAdapter, fromMerged, base]) assert.equal(r.code, 0, r.stderr);
  const ids = (r: { stdout: string }) => JSON.parse(r.stdout.trim()).ids as number[];
  assert.deepEqual(ids(fromMerged), ids(withAdapter));
  assert.notDeepEqual(ids(base), ids(withAdapter), 'the adapter should change the greedy output');
});
