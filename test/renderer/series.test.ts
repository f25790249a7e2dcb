import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thin } from '../../src-renderer/src/lib/components/run/series.ts';

const line = (n: number, y: (i: number) => number) => Array.from({ length: n }, (_, i) => ({ x: i + 1, y: y(i) }));

test('a series within the limit is drawn as it is', () => {
  const p = line(1200, (i) => i);
  assert.equal(thin(p, 1200), p);
});

test('a long series is cut to the limit, in step order, keeping the ends and every spike', () => {
  const p = line(100_000, (i) => 3 - i * 1e-5 + (i === 31_337 ? 50 : 0) - (i === 77_777 ? 40 : 0));
  const t = thin(p, 1200);
  assert.ok(t.length <= 1200 && t.length >= 1100, `${t.length} points`);
  assert.equal(t[0], p[0]);
  assert.equal(t.at(-1), p.at(-1));
  for (let i = 1; i < t.length; i++) assert.ok(t[i]!.x > t[i - 1]!.x, `step order at ${i}`);
  assert.ok(t.some((q) => q.x === 31_338), 'the loss spike is drawn');
  assert.ok(t.some((q) => q.x === 77_778), 'the dip is drawn');
  // Each bucket keeps its extremes: the drawn range is the whole range.
  assert.equal(Math.max(...t.map((q) => q.y)), Math.max(...p.map((q) => q.y)));
  assert.equal(Math.min(...t.map((q) => q.y)), Math.min(...p.map((q) => q.y)));
});

test('just over the limit still keeps every point it can and never more than the limit', () => {
  for (const n of [1201, 1202, 2399, 2400, 2401]) {
    const t = thin(line(n, (i) => Math.sin(i)), 1200);
    assert.ok(t.length <= 1200, `${n} → ${t.length}`);
  }
});
