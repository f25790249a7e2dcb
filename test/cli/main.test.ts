import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main, COMMANDS, type CommandSpec } from '../../src-main/cli/main.js';

const bin = fileURLToPath(new URL('../../bin/finch.mjs', import.meta.url));

/** Runs bin/finch.mjs as a user would (no tsx flag: the bin registers it), from another folder. */
function finch(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: '/', encoding: 'utf8', timeout: 30_000 });
}

test('`finch --help` lists every command and exits 0', () => {
  const r = finch('--help');
  assert.equal(r.status, 0, r.stderr);
  for (const name of ['tokenize', 'generate', 'train', 'merge', 'export', 'pull', 'push', 'eval', 'demo', 'bench', 'serve']) {
    assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'), `--help lists ${name}`);
  }
});

test('an unknown command is a usage error (exit 2)', () => {
  const r = finch('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test('commands are dispatched with the remaining arguments and their exit code', async () => {
  const seen: string[][] = [];
  const table: CommandSpec[] = [{ name: 'x', summary: 's', load: async () => ({ run: async (argv) => { seen.push(argv); return 7; } }) }];
  assert.equal(await main(['x', '--a', 'b'], table), 7);
  assert.deepEqual(seen, [['--a', 'b']]);
  assert.equal(await main(['help', 'x'], table), 7); // `finch help x` is `finch x --help`
  assert.deepEqual(seen[1], ['--help']);
});

test('every command in the table has its module: it loads, exports run(), and prints its usage for --help', async () => {
  for (const c of COMMANDS) {
    const mod = await c.load();
    assert.equal(typeof mod.run, 'function', `src-main/cli/commands/${c.name}.ts exports run()`);
    const r = finch(c.name, '--help');
    assert.equal(r.status, 0, `finch ${c.name} --help: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: finch ${c.name}\\b`), `finch ${c.name} --help prints its usage`);
  }
});
