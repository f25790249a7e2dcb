// The profile summary of `finch bench train --profile` (src-main/bench/ort-profile.ts) on a
// hand-made trace in ONNX Runtime's format: warm-up runs left out, each node's median over the runs
// (a run where one kernel was descheduled does not charge it), totals by op type and by phase.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProfile, summarizeTrace } from '../../src-main/bench/ort-profile.js';

/** Three runs of 10 ms at t = 0, 100, 200 ms (microseconds in the trace), each with the nodes given (name, op, µs per run). */
function trace(nodes: [string, string, number[]][]) {
  const runs = [0, 100_000, 200_000, 300_000];
  return [
    ...runs.map((ts) => ({ cat: 'Session', name: 'model_run', ts, dur: 10_000 })),
    // Not a kernel: ignored.
    { cat: 'Session', name: 'SequentialExecutor::Execute', ts: 0, dur: 9_000 },
    ...nodes.flatMap(([name, op, us]) => us.map((dur, r) => ({
      cat: 'Node', name: `${name}_kernel_time`, ts: runs[r]! + 10, dur, args: { op_name: op, provider: 'CPUExecutionProvider', output_type_shape: [{ float: [4, 8] }] },
    }))),
  ];
}

test('summarizeTrace leaves out the warm-up run, takes each node\'s median, and adds up by op type and phase', () => {
  const p = summarizeTrace(trace([
    // The warm-up run (first figure) is slow and must not count; run 3 of Gemm is descheduled.
    ['q/MatMul', 'Gemm', [9000, 2000, 2000, 7000]],
    ['q/MatMul/grad/MatMul', 'Gemm', [9000, 3000, 3000, 3000]],
    ['optimizer/Mul', 'Mul', [500, 1000, 1000, 1000]],
    ['softmax', 'Softmax', [900, 400, 600, 500]],
  ]) as Parameters<typeof summarizeTrace>[0], 1, 2);
  assert.equal(p.runs, 3);
  assert.equal(p.run_ms, 10);
  assert.equal(p.kernel_ms, 2 + 3 + 1 + 0.5);
  assert.deepEqual(p.by_op.map((r) => [r.op, r.ms, r.nodes]), [['Gemm', 5, 2], ['Mul', 1, 1], ['Softmax', 0.5, 1]]);
  assert.deepEqual(p.by_phase.map((r) => [r.phase, r.ms]), [['backward', 3], ['forward', 2.5], ['optimizer', 1]]);
  assert.equal(p.by_op[0]!.share, 0.5);
  assert.deepEqual(p.top_nodes.map((r) => [r.node, r.op, r.ms, r.output]), [['q/MatMul/grad/MatMul', 'Gemm', 3, 'float[4,8]'], ['q/MatMul', 'Gemm', 2, 'float[4,8]']]);
  const text = formatProfile(p);
  assert.match(text, /^Profile: 10\.0 ms per run \(3 runs\), kernels 6\.5 ms/);
  assert.match(text, /Gemm \(2\)\s+5\.0 ms\s+50\.0%/);
});

test('summarizeTrace says so when no run is left after the warm-up', () => {
  assert.throws(() => summarizeTrace(trace([]).slice(0, 1) as Parameters<typeof summarizeTrace>[0], 1), /no run after the 1 warm-up/);
});
