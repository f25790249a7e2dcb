import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EngineBenchResult } from '../../src-main/bench/engine.js';
import { formatEngineBench } from '../../src-main/bench/engine.js';
import { benchEnv, measure } from '../../src-main/bench/timing.js';
import { ON_CI, problem } from '../helpers/prerequisites.js';

const bin = fileURLToPath(new URL('../../bin/finch.mjs', import.meta.url));

test('`finch bench engine --quick --json` prints one object: both sides measured on the same shapes, same product', (t) => {
  const r = spawnSync(process.execPath, [bin, 'bench', 'engine', '--quick', '--json', '--threads', '2'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'exactly one line of JSON');
  const res = JSON.parse(lines[0]!) as EngineBenchResult;
  assert.equal(res.threads, 2);
  assert.match(res.ort.version, /^1\.\d+\.\d+/);
  assert.ok(res.matmul.length >= 3);
  for (const m of res.matmul) {
    assert.equal(m.gflop, (2 * m.m * m.k * m.n) / 1e9);
    assert.ok(m.ortConstW > 0 && m.ortInputW > 0, `${m.name}: ORT GFLOP/s measured`);
  }
  assert.ok(res.overhead.ortRunUs > 0 && res.overhead.sessionHostRunUs > 0);
  if ('error' in res.torch) {
    // Only where torch is missing, and never on CI.
    const missing = problem('torch');
    assert.ok(missing && !ON_CI, `PyTorch was not measured: ${res.torch.error}${missing ? ` (${missing}; CI must have it)` : ''}`);
    t.diagnostic(`PyTorch side skipped: ${res.torch.error}`);
  } else {
    assert.equal(res.torch.threads, 2, 'torch.set_num_threads took effect');
    assert.match(res.torch.blas, /openblas/, 'PyTorch uses OpenBLAS (reference BLAS would make the comparison meaningless)');
    for (const m of res.matmul) {
      assert.ok(m.torch! > 0, `${m.name}: PyTorch GFLOP/s measured`);
      // Same operands on both sides (engine-ort.ts / engine_torch.py), so the products agree.
      assert.ok(m.checksumRelDiff! < 1e-4, `${m.name}: ORT and PyTorch results differ (rel ${m.checksumRelDiff})`);
    }
  }
  const text = formatEngineBench(res);
  assert.match(text, /ORT w const/);
  assert.match(text, /session\.run overhead/);
});

test('benchmark children get OPENBLAS_CORETYPE/L2_SIZE removed and the thread count set; the parent env is untouched', () => {
  process.env.OPENBLAS_CORETYPE ??= 'Haswell';
  const env = benchEnv(3);
  assert.equal(env.OPENBLAS_CORETYPE, undefined);
  assert.equal(env.OPENBLAS_L2_SIZE, undefined);
  assert.equal(env.OMP_NUM_THREADS, '3');
  assert.equal(env.OPENBLAS_NUM_THREADS, '3');
  assert.notEqual(process.env.OPENBLAS_CORETYPE, undefined);
});

test('measure() runs warm-ups untimed, then at least minReps and minSeconds, and reports the median', async () => {
  let clock = 0;
  const delays = [100, 5, 1, 3, 2, 4, 6]; // the first call is the warm-up
  let calls = 0;
  const fn = () => { clock += delays[calls++ % delays.length]!; };
  const t = await measure(fn, { warmup: 1, minSeconds: 0, minReps: 5 }, () => clock);
  assert.equal(calls, 6);
  assert.deepEqual(t, { medianMs: 3, minMs: 1, reps: 5 });
  calls = 0;
  const long = await measure(fn, { warmup: 0, minSeconds: 0.5, minReps: 1 }, () => clock);
  // 4 cycles of 7 runs take 484 ms; the 29th run (100 ms) crosses 500 ms.
  assert.equal(long.reps, 29);
});

test('`finch bench` lists benchmarks; an unknown one is a usage error', () => {
  const list = spawnSync(process.execPath, [bin, 'bench', '--help'], { encoding: 'utf8' });
  assert.equal(list.status, 0);
  assert.match(list.stdout, /^ {2}engine +/m);
  const bad = spawnSync(process.execPath, [bin, 'bench', 'nosuch'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown benchmark "nosuch"/);
});

test('every benchmark answers an unknown option with its usage and exit code 2, without a stack trace', async () => {
  const { BENCHMARKS } = await import('../../src-main/cli/commands/bench.js');
  for (const b of BENCHMARKS) {
    const r = spawnSync(process.execPath, [bin, 'bench', b.name, '--no-such-option', '512'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `finch bench ${b.name}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^finch bench ${b.name}: .*'--no-such-option'`), `finch bench ${b.name} names the option`);
    assert.match(r.stderr, new RegExp(`Usage: finch bench ${b.name}`));
    assert.doesNotMatch(r.stderr, /\n\s+at |ERR_PARSE_ARGS/, `finch bench ${b.name} printed a stack trace`);
  }
});
