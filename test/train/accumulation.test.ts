// Gradient accumulation is normalized by the total number of trained tokens of the optimizer step
// (as Hugging Face Trainer and PEFT recipes do): micro-batches of unequal trained-token counts,
// accumulated, give the loss, gradient norm and update of one batch holding the same rows.
// Averaging the micro-batch means instead would weight a short row's tokens more than a long one's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPeftAdapter } from '../../src-main/model/adapter.js';
import { loadModelConfig } from '../../src-main/model/config.js';
import { events, finch, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
// Trained-token counts that differ a lot from row to row: 1-word and 24-word answers.
const rows = Array.from({ length: 16 }, (_, i) => ({
  query: `Say something about ${i}.`,
  response: Array.from({ length: i % 2 ? 24 : 1 }, (_, k) => `word${(i + k) % 7}`).join(' '),
}));
const data = writeJsonl(join(work, 'rows.jsonl'), rows);
const common = ['--model', model, '--data', data, '--map', 'prompt=query,completion=response', '--lr', '1e-3', '--dropout', '0',
  '--val-fraction', '0', '--max-steps', '3', '--seed', '5', '--threads', '1', '--json'];

async function run(name: string, batch: number, accum: number) {
  const out = join(work, name);
  const r = await finch(['train', ...common, '--batch', String(batch), '--grad-accum', String(accum), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const steps = events(r.stdout).filter((e) => e.event === 'step') as { loss: number; grad_norm: number }[];
  assert.equal(steps.length, 3);
  return { steps, adapter: loadPeftAdapter(out, loadModelConfig(model)).tensors };
}

test('2 and 4 accumulated micro-batches of unequal token counts equal one batch of the same rows', async () => {
  // Micro-batch k holds rows order[kB, (k+1)B) of the seeded shuffle, so step s reads the same 4
  // rows in all three runs.
  const one = await run('batch4', 4, 1);
  for (const [batch, accum] of [[2, 2], [1, 4]] as const) {
    const acc = await run(`batch${batch}x${accum}`, batch, accum);
    one.steps.forEach((s, i) => {
      const a = acc.steps[i]!;
      assert.ok(Math.abs(a.loss - s.loss) <= 1e-5 * s.loss, `${batch}x${accum}, step ${i + 1}: loss ${a.loss} vs one batch ${s.loss}`);
      assert.ok(Math.abs(a.grad_norm - s.grad_norm) <= 1e-4 * s.grad_norm, `${batch}x${accum}, step ${i + 1}: gradient norm ${a.grad_norm} vs ${s.grad_norm}`);
    });
    let worst = 0, scale = 0;
    for (const [k, v] of one.adapter) {
      const w = acc.adapter.get(k)!;
      for (let i = 0; i < v.length; i++) { worst = Math.max(worst, Math.abs(v[i]! - w[i]!)); scale = Math.max(scale, Math.abs(v[i]!)); }
    }
    // Three AdamW steps of lr 1e-3 move B by up to ~3e-3; the runs agree far below that.
    assert.ok(worst <= 1e-5, `${batch}x${accum}: adapters differ by ${worst} (largest value ${scale})`);
  }
});
