// scripts/pack-gpu-check.mjs: the packed folder runs the GPU check with its own Node (a tiny
// CPU-only run, here where there is no GPU), it carries only linux-x64 native files, and its
// archive is under the 60 MB the issue allows. The test packs at xz level 0, the fastest and
// largest: the shipped level 6 archive is smaller still (48 MB measured).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('the packed gpu-check runs from its folder with its own Node, and the archive is under 60 MB', { timeout: 900_000 }, (t) => {
  const out = mkdtempSync(join(tmpdir(), 'finch-pack-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const packed = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-gpu-check.mjs'), '--outdir', out, '--level', '0'], { encoding: 'utf8' }).trim().split('\n').pop()!) as
    { folder: string; archive: string; folder_mb: number; archive_mb: number };
  assert.ok(existsSync(packed.archive), 'the archive exists');
  console.log(`packed: folder ${packed.folder_mb.toFixed(1)} MB, archive (xz -0) ${packed.archive_mb.toFixed(1)} MB`);
  assert.ok(packed.archive_mb < 60, `archive ${packed.archive_mb.toFixed(1)} MB (xz -0) must be under 60 MB`);
  const ortBin = join(packed.folder, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
  assert.ok(existsSync(join(ortBin, 'linux', 'x64', 'libonnxruntime.so.1')), 'ONNX Runtime\'s linux-x64 library is packed');
  assert.ok(!existsSync(join(ortBin, 'win32')) && !existsSync(join(ortBin, 'darwin')), 'other platforms\' libraries are pruned');

  const entry = join(packed.folder, 'gpu-check');
  // A cwd outside the repo and no NODE_PATH: only the packed folder can resolve the imports.
  const env = { PATH: process.env.PATH, HOME: out };
  const help = execFileSync(entry, ['--help'], { cwd: out, env, encoding: 'utf8' });
  assert.match(help, /Usage: finch bench gpu-check/);
  const run = JSON.parse(execFileSync(entry, ['--presets', 'tiny', '--providers', 'cpu', '--steps', '1', '--threads', '1', '--no-peer'], { cwd: out, env, encoding: 'utf8' }).trim().split('\n').pop()!) as
    { node_binary: string; adapters: unknown[]; adapter_error: string | null; finch: { preset: string; provider: string; tokens_per_s?: number; loss?: number; error?: string }[] };
  assert.equal(run.node_binary, join(packed.folder, 'node'), 'the check ran on the packed Node');
  // The adapter probe (a child started by file path) is packed with its package: it lists this machine's adapter.
  assert.equal(run.adapter_error, null);
  assert.ok(run.adapters.length > 0);
  assert.equal(run.finch.length, 1);
  const [r] = run.finch;
  assert.equal(r!.error, undefined, r!.error);
  assert.equal(r!.provider, 'cpu');
  assert.ok(r!.tokens_per_s! > 0 && Number.isFinite(r!.loss), `a measured step: ${JSON.stringify(r)}`);
  // A random-init model's first loss is near ln(vocab) = ln(1024).
  assert.ok(Math.abs(r!.loss! - Math.log(1024)) < 1, `loss ${r!.loss} near ln(1024)`);
});
