// `finch bench train`'s peers (src-main/bench/peers/): the choice of peer on the command line, and
// the JSON each one gives, on the tiny preset. The Hugging Face peer runs in the checkout's venv
// (torch 2.13, transformers, PEFT: test/helpers/prerequisites.ts), the hand-written one on
// Debian's torch.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { run } from '../../src-main/bench/train.js';
import { PRESETS } from '../../src-main/bench/train-presets.js';
import { VENV_PYTHON, need } from '../helpers/prerequisites.js';

const bin = fileURLToPath(new URL('../../bin/finch.mjs', import.meta.url));
const bench = (args: string[]) =>
  spawnSync(process.execPath, [bin, 'bench', 'train', ...args], { encoding: 'utf8', timeout: 300_000 });

/** `finch bench train ARGS` in this process: its exit code and what it wrote to stderr. */
async function benchInProcess(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stderr: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const lines: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    return { code: await run(args), stderr: lines.join('\n') };
  } finally {
    console.error = error;
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

test('--peer and --peer-compile: an unknown peer, compiling the hand-written one, or a missing Python are usage errors before any step runs', async () => {
  const unknown = await benchInProcess(['--peer', 'jax']);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /--peer must be one of torch, hf, got "jax"/);
  const compiled = await benchInProcess(['--peer-compile']);
  assert.equal(compiled.code, 2, compiled.stderr);
  assert.match(compiled.stderr, /--peer-compile compiles the Hugging Face peer: use it with --peer hf/);
  for (const [args, env] of [
    [['--peer', 'hf', '--python', '/nonexistent/bin/python'], {}],
    [['--peer', 'hf'], { FINCH_PYTHON: '/nonexistent/bin/python' }],
  ] as const) {
    const started = Date.now();
    const missing = await benchInProcess([...args], env);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /no Python at \/nonexistent\/bin\/python for the transformers \+ PEFT peer: name one with --python or FINCH_PYTHON/);
    assert.ok(Date.now() - started < 30_000, 'refused before Finch\'s step');
  }
});

/**
 * Random weights (std 0.02, as transformers initializes a Llama) and random labels: after a few
 * steps at lr 1e-4 the loss is still about ln(vocab) on Finch's side and the hf peer's.
 */
const LN_VOCAB = Math.log(PRESETS.tiny!.vocab);

interface BenchJson {
  finch: { tokens_per_s: number; loss: number };
  peer: { tokens_per_s: number; step_s: number; peak_rss_mb: number; loss: number; versions?: Record<string, string>; compiled?: boolean; attention?: string } | null;
  peer_name: string | null;
  ratio: number | null;
  profile?: { runs: number; run_ms: number; kernel_ms: number; by_op: { op: string; ms: number }[]; by_phase: { phase: string; ms: number }[]; top_nodes: unknown[] };
}

test('`--peer hf --profile DIR`: transformers + PEFT on the same model (loss about ln(vocab) on both sides), peer_name "hf", its versions, and the profile of Finch\'s timed steps', (t) => {
  if (!need(t, 'venv')) return;
  const dir = mkdtempSync(join(tmpdir(), 'finch-bench-peer-'));
  try {
    const r = bench(['--preset', 'tiny', '--threads', '1', '--steps', '2', '--peer', 'hf', '--python', VENV_PYTHON, '--profile', dir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchJson;
    assert.equal(out.peer_name, 'hf');
    const peer = out.peer!;
    assert.ok(peer.tokens_per_s > 0 && peer.step_s > 0 && peer.peak_rss_mb > 0);
    assert.deepEqual(Object.keys(peer.versions!).sort(), ['peft', 'torch', 'transformers']);
    assert.match(peer.versions!.transformers!, /^\d+\.\d+/);
    assert.equal(peer.compiled, false);
    assert.equal(peer.attention, 'sdpa');
    assert.ok(Math.abs(out.ratio! - out.finch.tokens_per_s / peer.tokens_per_s) <= 1e-9 * out.ratio!, 'ratio = Finch / peer tokens/s');
    for (const [side, loss] of [['Finch', out.finch.loss], ['peer', peer.loss]] as const) {
      assert.ok(Math.abs(loss - LN_VOCAB) < 0.05, `${side}: loss ${loss} vs ln(vocab) ${LN_VOCAB}`);
    }
    // The profile: the timed steps (the warm-up left out), split into the step's three phases.
    const p = out.profile!;
    assert.equal(p.runs, 2);
    assert.ok(p.kernel_ms > 0 && p.kernel_ms <= p.run_ms * 1.05, `kernels ${p.kernel_ms} ms within the run's ${p.run_ms} ms`);
    assert.deepEqual(p.by_phase.map((x) => x.phase).sort(), ['backward', 'forward', 'optimizer']);
    assert.ok(p.by_op.some((x) => /MatMul|Gemm/.test(x.op)), p.by_op.map((x) => x.op).join(' '));
    assert.ok(existsSync(join(dir, 'profile.json')), 'profile.json written');
    assert.ok(readdirSync(dir).some((f) => f.startsWith('train-step_') && f.endsWith('.json')), 'ORT\'s trace kept beside it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`--peer torch` stays the default: peer_name "torch", no package versions', (t) => {
  if (!need(t, 'torch')) return;
  const r = bench(['--preset', 'tiny', '--threads', '1', '--steps', '1', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchJson;
  assert.equal(out.peer_name, 'torch');
  assert.equal(out.peer!.versions, undefined);
  assert.ok(out.peer!.tokens_per_s > 0 && Number.isFinite(out.peer!.loss));
});
