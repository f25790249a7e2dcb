// scripts/start.mjs (`npm start`): with no display, or an Electron that cannot start, it says why
// in one line and starts browser mode, whose printed address serves the app; an Electron that
// starts is launched on the checkout and nothing else happens. The Electron binaries here are
// stand-ins (ELECTRON_OVERRIDE_DIST_PATH): this machine has neither a display nor Electron's binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { within } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const START = join(ROOT, 'scripts', 'start.mjs');

interface Started { lines: string[]; url: string | null; code: number | null }

/** Runs npm start's script until it prints browser mode's URL (then fetches it and stops it) or exits. */
async function start(env: NodeJS.ProcessEnv): Promise<Started & { page: { status: number; body: string } | null }> {
  const home = mkdtempSync(join(tmpdir(), 'finch-start-'));
  const child = spawn(process.execPath, [START, '--port', '0'], { cwd: ROOT, env: { ...process.env, FINCH_HOME: home, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  try {
    const r = await within(new Promise<Started>((resolve) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        const url = /(http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(line)?.[1];
        if (url) resolve({ lines, url, code: null });
      });
      child.on('exit', (code) => resolve({ lines, url: null, code }));
    }), 150_000, 'npm start to print an address or exit', () => [...lines, stderr].join('\n'));
    let page = null;
    if (r.url) {
      const res = await fetch(r.url);
      page = { status: res.status, body: await res.text() };
    }
    return { ...r, page };
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await within(new Promise((r) => child.once('exit', r)), 30_000, 'npm start to exit on SIGTERM');
    }
    rmSync(home, { recursive: true, force: true });
    if (process.env.DEBUG_START) console.log(stderr);
  }
}

/** A stand-in Electron executable: a shell script with the given body. */
function fakeElectron(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'finch-electron-'));
  writeFileSync(join(dir, 'electron'), `#!/bin/sh\n${body}\n`);
  chmodSync(join(dir, 'electron'), 0o755);
  return dir;
}

const skipOffLinux = process.platform === 'linux' ? false : 'the stand-in Electron is a shell script';

test('without a display it says so in one line and starts browser mode, whose address serves the app', { timeout: 180_000 }, async () => {
  const r = await start({ DISPLAY: '', WAYLAND_DISPLAY: '' });
  assert.ok(r.url, `no browser-mode URL in:\n${r.lines.join('\n')}`);
  // (Other lines may say that the renderer is being built; one line says why there is no window.)
  const notes = r.lines.filter((l) => l.includes('browser mode'));
  assert.deepEqual(notes, ['finch: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); starting browser mode instead (finch serve).']);
  assert.equal(r.page?.status, 200);
  assert.match(r.page!.body, /<title>Finch<\/title>/);
});

test('an Electron that exits before its window is ready falls back to browser mode, with its error in the one line', { skip: skipOffLinux, timeout: 180_000 }, async () => {
  const dir = fakeElectron('echo "[4242:ERROR:ozone_platform_x11.cc] Missing X server or \\$DISPLAY" >&2\nexit 1');
  try {
    const r = await start({ DISPLAY: ':99', ELECTRON_OVERRIDE_DIST_PATH: dir });
    assert.ok(r.url, r.lines.join('\n'));
    assert.deepEqual(r.lines.filter((l) => l.includes('browser mode')), ['finch: Electron could not start (exit code 1: [4242:ERROR:ozone_platform_x11.cc] Missing X server or $DISPLAY); starting browser mode instead (finch serve).']);
    assert.equal(r.page?.status, 200);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an Electron that starts gets the checkout and no browser mode', { skip: skipOffLinux, timeout: 180_000 }, async () => {
  const dir = fakeElectron('echo "$PWD $*" > "$(dirname "$0")/launched"\necho "finch: window ready"\nexit 0');
  try {
    const r = await start({ DISPLAY: ':99', ELECTRON_OVERRIDE_DIST_PATH: dir });
    assert.equal(r.url, null);
    assert.equal(r.code, 0);
    assert.ok(r.lines.includes('finch: window ready'));
    assert.equal(readFileSync(join(dir, 'launched'), 'utf8').trim(), `${ROOT.replace(/\/$/, '')} .`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
