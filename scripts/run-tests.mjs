#!/usr/bin/env node
// Type-checks the project (tsx runs TypeScript without checking types), then runs every
// test/**/*.test.ts with Node's own test runner. Node 20's --test does not expand globs, so the
// files are listed here. The type-check is incremental (its state in node_modules/.cache), so a
// rerun after a small change takes a few seconds.
// Usage: npm test [-- substring ...]  (only files whose path contains a substring)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

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
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
// One state file per checkout (git worktrees may share one node_modules).
const buildInfo = join(root, 'node_modules', '.cache', `finch-tsc-${createHash('sha256').update(root).digest('hex').slice(0, 8)}.tsbuildinfo`);
const typecheck = spawnSync(process.execPath, [tsc, '-p', root, '--noEmit', '--incremental', '--tsBuildInfoFile', buildInfo], { cwd: root, stdio: 'inherit' });
if (typecheck.status !== 0) {
  console.error('type-check failed (tsc -p . --noEmit): fix the errors above before the tests run');
  process.exit(typecheck.status ?? 1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...chosen], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
