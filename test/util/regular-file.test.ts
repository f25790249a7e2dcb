// Opening what a user named: only regular files (links followed), refused at once otherwise (a
// FIFO must not wait for a writer, /dev/zero must not be read), whole reads bounded by a limit,
// JSON refused past MAX_JSON_DEPTH before it is parsed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  FileAccessError, MAX_JSON_DEPTH, jsonDepthOver, openRegularFile, openRegularFileSync, parseJsonText, readJson, readJsonSync, readRegularFile, readRegularFileSync,
} from '../../src-main/util/regular-file.js';
import { tempDir } from '../helpers/fixtures.js';
import { within } from '../helpers/wait.js';

const posix = process.platform !== 'win32';
const dir = tempDir('finch-regular-file-');
const file = (name: string, text: string | Buffer) => { const p = join(dir, name); writeFileSync(p, text); return p; };

/** Asserts `f` throws a FileAccessError of `problem` whose message matches `message`. */
async function refused(f: () => unknown, problem: FileAccessError['problem'], message: RegExp) {
  await assert.rejects(async () => f(), (e: unknown) => {
    assert.ok(e instanceof FileAccessError, `expected a FileAccessError, got ${String(e)}`);
    assert.equal(e.problem, problem);
    assert.match(e.message, message);
    return true;
  });
}

test('a regular file, and a link to one, are read whole', async () => {
  const p = file('a.json', '{"a": 1}');
  symlinkSync(p, join(dir, 'link.json'));
  for (const f of [p, join(dir, 'link.json')]) {
    assert.equal((await readRegularFile(f, 100)).toString(), '{"a": 1}');
    assert.equal(readRegularFileSync(f, 100).toString(), '{"a": 1}');
    assert.deepEqual(await readJson(f, 100), { a: 1 });
    assert.deepEqual(readJsonSync(f, 100), { a: 1 });
  }
  const { handle, size } = await openRegularFile(p);
  assert.equal(size, 8);
  await handle.close();
});

test('a FIFO is refused at once, without waiting for a writer (async and sync)', { skip: !posix }, async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // Several at once: each open returns at once, so none holds one of the file-I/O threads.
  await within(Promise.all(Array.from({ length: 8 }, () => refused(() => readRegularFile(fifo, 100), 'not-a-file', /fifo is a FIFO \(named pipe\), not a regular file/))), 5_000, 'eight FIFO opens to be refused');
  await refused(() => readRegularFileSync(fifo, 100), 'not-a-file', /is a FIFO/);
  await refused(() => openRegularFileSync(fifo), 'not-a-file', /is a FIFO/);
});

test('devices, folders and sockets are refused; links to them too', { skip: !posix }, async () => {
  symlinkSync('/dev/zero', join(dir, 'zero.json'));
  await refused(() => readRegularFile('/dev/zero', 100), 'not-a-file', /\/dev\/zero is a character device/);
  await refused(() => readRegularFile(join(dir, 'zero.json'), 100), 'not-a-file', /zero\.json is a character device/);
  mkdirSync(join(dir, 'folder'));
  await refused(() => readRegularFile(join(dir, 'folder'), 100), 'not-a-file', /is a folder/);
  await refused(() => readRegularFileSync(join(dir, 'folder'), 100), 'not-a-file', /is a folder/);
  const sock = join(dir, 'sock');
  const server = createServer();
  await new Promise<void>((ok) => server.listen(sock, ok));
  try {
    await refused(() => readRegularFile(sock, 100), 'not-a-file', /is a socket/);
    await refused(() => readRegularFileSync(sock, 100), 'not-a-file', /is a socket/);
  } finally {
    server.close();
  }
});

test('a missing file is ENOENT; a loop of links and a dangling link are named', { skip: !posix }, async () => {
  await assert.rejects(readRegularFile(join(dir, 'nope'), 10), (e: FileAccessError) => e.problem === 'missing' && e.code === 'ENOENT' && /nope not found/.test(e.message));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
  await refused(() => readRegularFile(join(dir, 'dangling'), 10), 'missing', /dangling not found/);
  symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'));
  symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'));
  await refused(() => readRegularFile(join(dir, 'loop-a'), 10), 'unreadable', /a loop of symbolic links/);
});

test('a file over its limit is refused, naming the size and the limit; exactly the limit is read', async () => {
  const p = file('big.json', Buffer.alloc(3 * 2 ** 20, 0x20));
  await refused(() => readRegularFile(p, 2 ** 20, { what: 'a model config' }), 'too-large', /big\.json is 3\.0 MiB; Finch reads at most 1\.0 MiB of a model config/);
  await refused(() => readRegularFileSync(p, 2 ** 20), 'too-large', /is 3\.0 MiB/);
  assert.equal((await readRegularFile(p, 3 * 2 ** 20)).length, 3 * 2 ** 20);
});

test('files whose size stat cannot tell (/proc) are read to their end, still bounded', { skip: process.platform !== 'linux' }, async () => {
  const status = (await readRegularFile('/proc/self/status', 1 << 20)).toString();
  assert.match(status, /VmRSS:/);
  await refused(() => readRegularFile('/proc/self/status', 16), 'too-large', /status is larger than 16 bytes, the most Finch reads/);
});

test("the caller's own error class carries every problem", async () => {
  class Mine extends Error {}
  await assert.rejects(readRegularFile(join(dir, 'nope'), 10, { error: (m, problem) => new Mine(`${problem}: ${m}`) }), (e: Error) => e instanceof Mine && /^missing: /.test(e.message));
  assert.throws(() => parseJsonText('{', 'x.json', { error: (m, problem) => new Mine(`${problem}: ${m}`) }), (e: Error) => e instanceof Mine && /^invalid: x\.json: invalid JSON/.test(e.message));
});

test(`JSON nested deeper than ${MAX_JSON_DEPTH} is refused before parsing; strings and escapes do not count`, () => {
  const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
  assert.equal(jsonDepthOver(nest(MAX_JSON_DEPTH)), false);
  assert.equal(jsonDepthOver(nest(MAX_JSON_DEPTH + 1)), true);
  assert.equal(jsonDepthOver(`{"a": "${'['.repeat(1000)}", "b": "\\"[[[["}`), false);
  assert.throws(() => parseJsonText(`{"x": ${nest(100_000)}}`, 'deep.json'), /deep\.json: JSON nested deeper than 64 levels/);
  assert.deepEqual(parseJsonText(nest(3), 'ok.json'), [[[]]]);
  assert.throws(() => parseJsonText('{"a": ', 'bad.json', { where: 'line 3' }), /bad\.json line 3: invalid JSON/);
});

test('a UTF-8 byte order mark before JSON is allowed', async () => {
  assert.deepEqual(await readJson(file('bom.json', '\ufeff{"a": 2}'), 100), { a: 2 });
});
