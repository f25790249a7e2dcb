// Launches Finch's Electron main process once under the faked electron module in this process and
// prints what happened as JSON (main.test.ts and packaging.test.ts run it as a child: a launch is
// once per process). Usage: main-launch.child.ts <scenario> [entry]
//   scenario "second-instance": another Finch holds the single-instance lock
//   scenario "no-renderer": the renderer's pages are missing
//   scenario "normal": a renderer folder with an index.html
//   entry: the main module (default src-main/electron/main.ts; packaging passes the bundle)
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { installFakeElectron } from '../helpers/electron-loader.js';

const [scenario, entry] = process.argv.slice(2);
const { BrowserWindow, fake, protocol } = await installFakeElectron();
fake.userData = mkdtempSync(join(tmpdir(), 'finch-userdata-'));
process.env.FINCH_HOME = mkdtempSync(join(tmpdir(), 'finch-home-'));
const renderer = join(fake.userData, 'renderer');
process.env.FINCH_RENDERER_DIR = renderer;
if (scenario === 'normal') {
  mkdirSync(renderer);
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>Finch</title>');
}
if (scenario === 'second-instance') fake.singleInstanceLock = false;
await import(entry ? pathToFileURL(resolve(entry)).href : '../../src-main/electron/main.js');
for (let i = 0; i < 100 && scenario === 'normal' && !BrowserWindow.getAllWindows().some((w) => w.visible); i++) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 50));
const win = BrowserWindow.getAllWindows()[0];
const page = protocol.handlers.get('app') ? await protocol.handlers.get('app')!(new Request('app://finch/index.html')) : null;
console.log(JSON.stringify({
  windows: BrowserWindow.getAllWindows().length,
  url: win?.webContents.getURL() ?? null,
  preload: win?.options.webPreferences?.preload ?? null,
  csp: page?.headers.get('content-security-policy') ?? null,
  quitCount: fake.quitCount,
  exitCode: fake.exitCode,
  errorBoxes: fake.errorBoxes,
}));
