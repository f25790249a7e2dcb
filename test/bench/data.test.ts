import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDataBench } from '../../src-main/bench/data.js';

test('finch bench data --json reports read and pipeline throughput', async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  let code: number;
  try {
    code = await runDataBench(['--rows', '400', '--seq-len', '256', '--json']);
  } finally {
    console.log = log;
  }
  assert.equal(code, 0);
  assert.equal(lines.length, 1);
  const r = JSON.parse(lines[0]!);
  assert.equal(r.rows, 400);
  assert.equal(r.pack, true);
  assert.ok(r.read.rows_per_s > 0 && r.pipeline.rows_per_s > 0 && r.pipeline.tokens_per_s > r.pipeline.rows_per_s);
  assert.ok(r.tokens.mean > 20 && r.tokens.p95 >= r.tokens.p50);
  assert.ok(r.sequences > 0 && r.sequences < 400, 'packing puts several rows in a sequence');
  assert.ok(r.packing_efficiency > 0.5 && r.packing_efficiency <= 1);
});

test('finch bench data rejects bad options', async () => {
  const err = console.error;
  console.error = () => {};
  try {
    assert.equal(await runDataBench(['--format', 'xml']), 2);
    assert.equal(await runDataBench(['--rows', '-3']), 2);
  } finally {
    console.error = err;
  }
});
