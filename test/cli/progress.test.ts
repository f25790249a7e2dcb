import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, EtaEstimator, formatDuration, type OutStream } from '../../src-main/cli/progress.js';

function capture(isTTY = false): OutStream & { text: () => string } {
  const chunks: string[] = [];
  return { isTTY, write: (c: string) => { chunks.push(c); return true; }, text: () => chunks.join('') };
}

/** A clock the test moves by hand. */
function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test('ETA follows the recent rate', () => {
  const eta = new EtaEstimator(100);
  assert.equal(eta.etaSeconds(), null);
  eta.add(0, 0);
  eta.add(10_000, 10); // 1 step/s -> 90 left = 90 s
  assert.equal(eta.etaSeconds(), 90);
  const fast = new EtaEstimator(100, 2); // window of 2: only the last rate counts
  fast.add(0, 0);
  fast.add(10_000, 10);
  fast.add(11_000, 20); // 10 steps/s now
  assert.equal(fast.etaSeconds(), 8);
});

test('durations read as s, m+s, h+m', () => {
  assert.equal(formatDuration(9.4), '9s');
  assert.equal(formatDuration(245), '4m05s');
  assert.equal(formatDuration(3720), '1h02m');
  assert.equal(formatDuration(null), '--');
});

test('not a TTY: plain lines at the interval, no control codes, one final line', () => {
  const out = capture(false);
  const c = clock();
  const bar = createProgress({ label: 'train', total: 10, unit: 'steps', stream: out, plainIntervalMs: 1000, now: c.now });
  for (let i = 1; i <= 10; i++) {
    c.advance(400);
    bar.update(i, { loss: 2.5 - i / 10 });
  }
  bar.stop();
  bar.stop();
  const lines = out.text().trimEnd().split('\n');
  // Due at 400 ms (first: -Infinity), then every >= 1000 ms: 400, 1600, 2800, ...; plus the finish.
  assert.deepEqual(lines.map((l) => l.split(':')[1]?.trim().split(' ')[0]), ['1/10', '4/10', '7/10', '10/10']);
  assert.match(lines[1]!, /^train: 4\/10 steps \(40%\) elapsed 2s, ETA 2s \| loss 2\.100$/);
  assert.match(lines[3]!, /took 4s \| loss 1\.500$/);
  assert.doesNotMatch(out.text(), /\x1b/);
});

test('auto mode picks plain lines for a pipe and a bar for a TTY', () => {
  const pipe = capture(false);
  const p = createProgress({ label: 'x', total: 2, stream: pipe });
  p.update(2);
  p.stop();
  assert.match(pipe.text(), /^x: 2\/2 \(100%\) took/);
  const tty = Object.assign(capture(true), { columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  const t = createProgress({ label: 'x', total: 2, stream: tty });
  t.update(1);
  t.stop();
  assert.match(tty.text(), /\x1b\[\?25l/); // the bar hides the cursor while drawing
  assert.match(tty.text(), /x \[.*\] 50% \| 1\/2/);
});

test('--json: one parsable object per line with value, total and ETA', () => {
  const out = capture(false);
  const c = clock();
  const bar = createProgress({ label: 'train', total: 4, unit: 'steps', mode: 'json', stream: out, now: c.now });
  for (let i = 1; i <= 4; i++) {
    c.advance(500);
    bar.update(i, { loss: 1 / i });
  }
  bar.stop();
  const events = out.text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(events.length, 5);
  assert.deepEqual(events.map((e) => e.value), [1, 2, 3, 4, 4]);
  assert.ok(events.every((e) => e.type === 'progress' && e.total === 4 && e.label === 'train'));
  assert.equal(events[1]!.etaSeconds, 1); // 2 steps per second, 2 left
  assert.equal(events[4]!.done, true);
  assert.deepEqual(events[3]!.extra, { loss: 0.25 });
});
