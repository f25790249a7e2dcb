// src-main/electron/main.ts launched under a faked electron module: one hardened window on
// app://finch with the preload, pages served with the CSP, the session walled, the menu's dialog
// items, pickPath through window.api, a second launch focusing the first, the window state kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installFakeElectron } from '../helpers/electron-loader.js';
import { contentSecurityPolicy } from '../../src-shared/csp.js';
import type { DesktopApi } from '../../src-shared/api.js';
import { until } from '../helpers/wait.js';

const { app, BrowserWindow, fake, protocol, session } = await installFakeElectron();
type MenuItem = { label?: string; role?: string; click?: () => void; submenu?: MenuItem[] };

fake.userData = mkdtempSync(join(tmpdir(), 'finch-userdata-'));
process.env.FINCH_HOME = mkdtempSync(join(tmpdir(), 'finch-home-'));
const rendererDir = join(fake.userData, 'renderer');
mkdirSync(rendererDir);
writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>Finch</title>');
process.env.FINCH_RENDERER_DIR = rendererDir;

const logged: string[] = [];
const log = console.log;
console.log = (...a: unknown[]) => { logged.push(a.join(' ')); };
await import('../../src-main/electron/main.js');
/** Waits for a condition (generous cap: the back end loads SQLite and ONNX Runtime at start). */
await until(() => BrowserWindow.getAllWindows().some((w) => w.visible), 'a visible window');
console.log = log;
const win = BrowserWindow.getAllWindows()[0]!;

// The preload, in the window's page.
fake.useWindow(win);
await import('../../src-main/electron/preload.js');
const api = fake.mainWorld.api as DesktopApi;

test('one window, sandboxed and isolated without Node, showing app://finch with the bundled preload', () => {
  assert.equal(BrowserWindow.getAllWindows().length, 1);
  const wp = win.options.webPreferences!;
  assert.equal(wp.contextIsolation, true);
  assert.equal(wp.sandbox, true);
  assert.equal(wp.nodeIntegration, false);
  assert.equal(wp.nodeIntegrationInSubFrames, false);
  assert.equal(wp.webviewTag, false);
  assert.equal(wp.webSecurity, true);
  assert.match(String(wp.preload), /preload\.cjs$/);
  assert.equal(win.webContents.getURL(), 'app://finch/index.html');
  assert.equal(win.visible, true, 'shown once ready');
  assert.equal(fake.sandboxEnabled, true, 'app.enableSandbox() for every renderer');
  assert.ok(logged.includes('finch: window ready'), 'the line npm start waits for');
});

test('app://finch is a privileged scheme whose pages carry the CSP header', async () => {
  assert.deepEqual(protocol.privileged.map((p) => p.scheme), ['app']);
  const res = await protocol.handlers.get('app')!(new Request('app://finch/index.html'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-security-policy'), contentSecurityPolicy());
});

test('the window\'s contents and the session are walled in', async () => {
  assert.equal(win.webContents.tryNavigate('https://evil.example/'), false);
  assert.equal(win.webContents.tryOpenWindow('https://evil.example/'), 'deny');
  assert.equal(await session.defaultSession.requestPermission('media'), false);
  assert.equal(await session.defaultSession.allowsRequest('https://cdn.example/x.js'), false);
});

test('pickPath from the page opens the native dialog for that kind and returns only the chosen path', async () => {
  fake.dialogAnswers.push('/home/me/models/Llama-3.2-1B', null, '/home/me/data/math.jsonl');
  assert.equal(await api.pickPath({ kind: 'model-folder' }), '/home/me/models/Llama-3.2-1B');
  assert.equal(await api.pickPath({ kind: 'dataset-file' }), null, 'cancelled');
  assert.equal(await api.pickPath({ kind: 'dataset-file' }), '/home/me/data/math.jsonl');
  const [model, dataset] = fake.openDialogs.slice(-3);
  assert.deepEqual(model!.properties, ['openDirectory']);
  assert.deepEqual(dataset!.properties, ['openFile']);
  assert.deepEqual((dataset!.filters as { extensions: string[] }[])[0]!.extensions, ['jsonl', 'json', 'csv', 'tsv', 'parquet']);
  await assert.rejects(api.pickPath({ kind: 'any-file' } as never), (e: { code: string }) => e.code === 'invalid_argument');
});

test('the menu adds a model folder through the native dialog and says why when it cannot', async () => {
  const file = fake.menu!.items.find((i) => i.label === '&File')! as MenuItem;
  const add = file.submenu!.find((i) => i.label === 'Add Model Folder…')!;
  const opened = fake.openDialogs.length;
  fake.dialogAnswers.push(null);
  add.click!();
  await until(() => fake.openDialogs.length > opened, 'the open dialog');
  assert.equal(fake.errorBoxes.length, 0, 'cancelled: nothing to add');
  fake.dialogAnswers.push(join(fake.userData, 'not-a-model'));
  add.click!();
  await until(() => fake.errorBoxes.length > 0, 'an error box');
  assert.equal(fake.errorBoxes[0]!.title, 'Could not add the model');
  const roles = fake.menu!.items.map((i) => (i as MenuItem).role ?? (i as MenuItem).label);
  assert.deepEqual(roles, process.platform === 'darwin' ? ['appMenu', '&File', 'editMenu', '&View', 'windowMenu', 'help'] : ['&File', 'editMenu', '&View', 'windowMenu', 'help']);
});

test('a second launch brings the first window back', () => {
  win.minimize();
  win.focused = false;
  app.emit('second-instance', {}, [], '');
  assert.equal(win.isMinimized(), false);
  assert.equal(win.focused, true);
});

test('the window\'s size and position are written when it closes', () => {
  win.setBounds({ x: 50, y: 60, width: 1500, height: 950 });
  win.close();
  const saved = JSON.parse(readFileSync(join(fake.userData, 'window-state.json'), 'utf8')) as unknown;
  assert.deepEqual(saved, { x: 50, y: 60, width: 1500, height: 950, maximized: false });
});

const child = (scenario: string) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./main-launch.child.ts', import.meta.url)), scenario], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').at(-1)!) as { windows: number; quitCount: number; exitCode: number | null; errorBoxes: { title: string; content: string }[] };


test('a second Finch quits at once without a window (the first one is focused instead)', () => {
  const r = child('second-instance');
  assert.equal(r.windows, 0);
  assert.equal(r.quitCount, 1);
});

test('missing pages stop the launch with a message that says how to build them', () => {
  const r = child('no-renderer');
  assert.equal(r.windows, 0);
  assert.equal(r.exitCode, 1);
  assert.equal(r.errorBoxes[0]!.title, 'Finch could not start');
  assert.match(r.errorBoxes[0]!.content, /npm run build:renderer/);
});
