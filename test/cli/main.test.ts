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
  for (const name of ['tokenize', 'generate', 'train', 'eval', 'demo', 'bench', 'serve']) {
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

test('a command whose module is not written yet says so; other import errors surface', async () => {
  const spec: CommandSpec = { name: 'nothere', summary: 's', load: async () => {
    // What Node reports when main.ts imports a command file that does not exist.
    const err = Object.assign(new Error(`Cannot find module '/r/src-main/cli/commands/nothere.js' imported from /r/src-main/cli/main.ts`), { code: 'ERR_MODULE_NOT_FOUND' });
    throw err;
  } };
  const errors: string[] = [];
  const orig = console.error;
  console.error = (m: string) => { errors.push(m); };
  try {
    assert.equal(await main(['nothere'], [spec]), 1);
  } finally {
    console.error = orig;
  }
  assert.match(errors.join('\n'), /finch nothere: not available yet/);
  const broken: CommandSpec = { name: 'broken', summary: 's', load: async () => {
    throw Object.assign(new Error(`Cannot find package 'leftpad' imported from /r/src-main/cli/commands/broken.ts`), { code: 'ERR_MODULE_NOT_FOUND' });
  } };
  await assert.rejects(main(['broken'], [broken]), /leftpad/);
});

test('every command in the table either loads with a run() or is reported as not available', async () => {
  for (const c of COMMANDS) {
    const r = finch(c.name, '--help');
    const notYet = /not available yet/.test(r.stderr);
    assert.ok(notYet || r.status === 0, `finch ${c.name} --help: exit ${r.status}\n${r.stderr}`);
  }
});
