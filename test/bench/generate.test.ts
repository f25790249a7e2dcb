import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/finch.mjs', import.meta.url));
const bench = (...args: string[]) => spawnSync(process.execPath, [bin, 'bench', 'generate', ...args], { encoding: 'utf8', timeout: 600_000 });

test('`finch bench generate --json`: both pairs measured per repetition, ratios as medians of the paired ratios, same weights on both sides', () => {
  // One thread: llama.cpp's spinning pool on a machine busier than its cores (docs/gguf.md).
  const r = bench('--threads', '1', '--prompt', '16', '--decode', '4', '--reps', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'exactly one line of JSON');
  const res = JSON.parse(lines[0]!);
  assert.equal(res.preset, 'small');
  assert.equal(res.shape, null);
  assert.deepEqual([res.threads, res.prompt_tokens, res.decode_tokens, res.reps], [1, 16, 4, 2]);
  for (const key of ['finch_f32', 'llama_cpp_f32', 'finch_4bit', 'llama_cpp_q4_0']) {
    const s = res[key];
    for (const k of ['prefill_tokens_per_s', 'decode_tokens_per_s', 'prefill_tokens_per_s_best', 'decode_tokens_per_s_best', 'peak_rss_mb']) {
      assert.ok(Number.isFinite(s[k]) && s[k] > 0, `${key}.${k} = ${s[k]}`);
    }
    assert.ok(s.decode_tokens_per_s_best >= s.decode_tokens_per_s, `${key}: best >= median`);
  }
  for (const [pair, suffix] of [['f32', ''], ['q4', '_4bit']] as const) {
    const p = res[pair];
    for (const k of ['decode', 'prefill'] as const) {
      const st = p[`${k}_ratio`];
      assert.ok(st.min <= st.median && st.median <= st.max, `${pair} ${k}: min <= median <= max`);
      assert.equal(res[`${k}_ratio${suffix}`], st.median, `${k}_ratio${suffix} is the median of the paired ratios`);
    }
  }
  // Random weights give near-flat logits, so the float sides may part after a few tokens; the
  // first greedy token of f32 must agree (same checkpoint, same prompt, same arithmetic up to rounding).
  assert.ok(res.f32.same_greedy_prefix >= 1, `f32: Finch and llama.cpp disagree on the first greedy token`);
  // The small preset's float32 matrices read per decoded token: 8 layers of q, k, v, o (512 x 512,
  // 256 x 512 twice, 512 x 512) and the MLP (3 x 512 x 1376), and the 32000 x 512 head.
  const bytes = 4 * (8 * (2 * 512 * 512 + 2 * 256 * 512 + 3 * 512 * 1376) + 32000 * 512);
  assert.equal(res.f32.decode_matrix_bytes, bytes);
  for (const side of ['finch', 'llama_cpp'] as const) {
    const s = res.f32[side];
    assert.ok(Math.abs(s.decode_gb_per_s - (bytes * s.decode_tokens_per_s) / 1e9) < 1e-9 * s.decode_gb_per_s, `${side}: decode_gb_per_s is the bytes at the median decode rate`);
    assert.equal(res.q4[side].decode_gb_per_s, undefined, `q4 ${side}: no float32 bytes to count`);
  }
  assert.ok(Number.isFinite(res.f32.finch.row_product_gb_per_s) && res.f32.finch.row_product_gb_per_s > 0, `row_product_gb_per_s = ${res.f32.finch.row_product_gb_per_s}`);
  assert.equal(res.f32.llama_cpp.row_product_gb_per_s, undefined);
  assert.equal(res.q4.decode_matrix_bytes, undefined);
  assert.match(res.four_bit.finch, /int4, blocks of 32/);
  assert.match(res.four_bit.llama_cpp, /q4_0/);
});

test('`finch bench generate` refuses bad arguments with a message and exit code 2', () => {
  for (const [args, message] of [
    [['--shape', 'nosuch'], /unknown shape "nosuch" \(choose qwen2\.5-0\.5b/],
    [['--shape', 'qwen2.5-0.5b', '--preset', 'small'], /give --preset or --shape, not both/],
    [['--reps', '0'], /--reps must be a whole number >= 1 \(got 0\)/],
    [['--shape', 'qwen2.5-0.5b', '--dtype', 'f64'], /unknown dtype "f64"/],
  ] as const) {
    const r = bench(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
