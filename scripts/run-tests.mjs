#!/usr/bin/env node
// `npm test`: checks what the tests need from the machine (test/helpers/prerequisites.ts: Debian's
// python3 with torch and OpenBLAS, Chromium, Mesa 25's lavapipe, the Python venv) and stops with the
// one command that installs it all when something is missing; type-checks the project (tsx runs
// TypeScript without checking types) and the renderer (svelte-check); then runs every
// test/**/*.test.ts with Node's own test runner. Node 20's --test does not expand globs, so the
// files are listed here. The type-check is incremental (its state in node_modules/.cache), so a
// rerun after a small change takes a few seconds.
//
// Usage: npm test [-- substring ...]  (only files whose path contains a substring: then a missing
// prerequisite is a warning, as the chosen files may not need it, and svelte-check runs only
// when a chosen file tests the renderer)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tsImport } from 'tsx/esm/api';

/**
 * How long a test may run unless it sets its own `timeout`: a hang fails instead of stalling
 * `npm test`. Node 20 applies it to each test *file* as a whole (and a test's own longer timeout
 * does not lift it); Node 22 to each test. The slowest file, test/model/llama-float16.test.ts
 * (~80 s on a 2-core machine shared with other work), and the slowest single test, the
 * `accelerate launch` round trip of test/export/accelerate-launch.test.ts, fit with room for a
 * machine several times slower.
 */
const TEST_TIMEOUT_MS = 600_000;

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
})(join(root, 'test'));
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (chosen.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const { missingPrerequisites, INSTALL_COMMAND } = await tsImport('../test/helpers/prerequisites.ts', import.meta.url);
const missing = missingPrerequisites();
if (missing.length) {
  const list = missing.map((m) => `  - ${m.problem}`).join('\n');
  const how = `On Debian 12 one command installs all of it (idempotent; the venv goes to your checkout's .venv):\n\n  ${INSTALL_COMMAND}\n`;
  if (!filters.length) {
    console.error(`npm test needs what this machine lacks:\n${list}\n${how}`);
    process.exit(1);
  }
  console.error(`warning: tests that need these will fail on CI and be skipped here (or fail, for torch and WebGPU):\n${list}\n${how}`);
}

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
// One state file per checkout (git worktrees may share one node_modules).
const buildInfo = join(root, 'node_modules', '.cache', `finch-tsc-${createHash('sha256').update(root).digest('hex').slice(0, 8)}.tsbuildinfo`);
const typecheck = spawnSync(process.execPath, [tsc, '-p', root, '--noEmit', '--incremental', '--tsBuildInfoFile', buildInfo], { cwd: root, stdio: 'inherit' });
if (typecheck.status !== 0) {
  console.error('type-check failed (tsc -p . --noEmit): fix the errors above before the tests run');
  process.exit(typecheck.status ?? 1);
}
if (!filters.length || chosen.some((f) => f.startsWith('test/renderer/') || f.startsWith('test/e2e/'))) {
  const svelte = spawnSync('npm', ['run', '--silent', 'check:renderer'], { cwd: root, stdio: 'inherit' });
  if (svelte.status !== 0) {
    console.error('svelte-check failed (npm run check:renderer): fix the renderer\'s errors and warnings above before the tests run');
    process.exit(svelte.status ?? 1);
  }
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${TEST_TIMEOUT_MS}`, ...chosen], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
