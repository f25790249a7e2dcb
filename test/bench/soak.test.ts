// The flatness summary of `finch bench soak`: baseline after the first evaluation, growth by window.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { soakSummary } from '../../src-main/bench/soak.js';

test('soakSummary measures growth from the window after the first evaluation', () => {
  // 100 MiB before the evaluation at step 20, 200 after it, 210 from step 41 on.
  const steps = Array.from({ length: 60 }, (_, i) => ({ step: i + 1, rss_mb: i + 1 <= 20 ? 100 : i + 1 <= 40 ? 200 : 210 }));
  const s = soakSummary(steps, [20, 40], 10);
  assert.equal(s.baseline_mb, 200);
  assert.ok(Math.abs(s.growth - 0.05) < 1e-12);
  assert.deepEqual(s.windows.map((w) => [w.from, w.to, w.rss_mb]), [[21, 30, 200], [31, 40, 200], [41, 50, 210], [51, 60, 210]]);
  assert.deepEqual(s.evaluations, [{ step: 20, before_mb: 100, after_mb: 200 }, { step: 40, before_mb: 200, after_mb: 210 }]);
  assert.throws(() => soakSummary(steps, [], 10), /no evaluation/);
});
