// `finch bench train` on the tiny preset, 4-bit with checkpointing: the step the trainer runs in
// its memory-saving mode, on a model whose intermediate size (344) is not a multiple of the 4-bit
// block (32), so down_proj's rows end in a short block. The estimator (train/memory.ts) must agree
// with the measured peak RSS of that step within 15% (measured +3.5%..+6.6%; all eight tiny/small,
// float/4-bit, checkpointed or not configurations: -8%..+10%).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const bin = fileURLToPath(new URL('../../bin/finch.mjs', import.meta.url));

test('`finch bench train --preset tiny --4bit --checkpoint-layers` runs, and its estimate is within 15% of the measured peak RSS', () => {
  const r = spawnSync(process.execPath, [bin, 'bench', 'train', '--preset', 'tiny', '--4bit', '--checkpoint-layers', '--no-peer', '--steps', '2', '--json'], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const { finch } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { finch: { peak_rss_mb: number; estimate_mb: number; tokens_per_s: number } };
  assert.ok(finch.tokens_per_s > 0);
  const err = finch.estimate_mb / finch.peak_rss_mb - 1;
  console.log(`# tiny 4-bit checkpointed: measured ${finch.peak_rss_mb.toFixed(0)} MB, estimated ${finch.estimate_mb.toFixed(0)} MB (${(err * 100).toFixed(1)}%)`);
  assert.ok(Math.abs(err) <= 0.15, `estimate ${finch.estimate_mb.toFixed(0)} MB vs measured ${finch.peak_rss_mb.toFixed(0)} MB`);
});
