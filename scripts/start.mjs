#!/usr/bin/env node
// `npm start`: builds what the desktop app needs (the renderer when stale, the Electron bundles)
// and opens Finch's window. Where Electron cannot run (no display, its binary cannot be obtained,
// or it exits before its window is ready) it says why in one line and starts browser mode
// (`finch serve`) instead, which prints the address to open.
//
//   npm start                    the app (or browser mode)
//   npm start -- --browser       browser mode directly
//   npm start -- --port 8080     the port browser mode listens on (default: a free one)
//
// Electron's npm package downloads its binary on first launch (about 100 MB from GitHub); set
// ELECTRON_OVERRIDE_DIST_PATH to use an Electron already on disk.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { register } from 'tsx/esm/api';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The line main.ts prints once the window has loaded its page. */
const READY_LINE = 'finch: window ready';
const ELECTRON_DIR = join(ROOT, 'node_modules', 'electron');

const { values } = parseArgs({ options: { browser: { type: 'boolean', default: false }, port: { type: 'string' } } });

/** Browser mode in this process's place: its output (the URL) goes straight to the terminal. */
function browserMode(reason) {
  if (reason) console.log(`finch: ${reason}; starting browser mode instead (finch serve).`);
  const args = [join(ROOT, 'bin', 'finch.mjs'), 'serve', ...(values.port ? ['--port', values.port] : [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

function noDisplay() {
  if (process.platform !== 'linux') return null;
  return process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? null : 'no display (neither DISPLAY nor WAYLAND_DISPLAY is set)';
}

/** The Electron executable, downloading it on first use; or { error } saying why there is none. */
function electronBinary() {
  const name = existsSync(join(ELECTRON_DIR, 'path.txt'))
    ? readFileSync(join(ELECTRON_DIR, 'path.txt'), 'utf8')
    : { darwin: 'Electron.app/Contents/MacOS/Electron', win32: 'electron.exe' }[process.platform] ?? 'electron';
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const path = join(override ?? join(ELECTRON_DIR, 'dist'), name);
  if (existsSync(path)) return { path };
  if (override) return { error: `no Electron at ${path} (ELECTRON_OVERRIDE_DIST_PATH)` };
  if (!existsSync(join(ELECTRON_DIR, 'install.js'))) return { error: 'the electron package is not installed (npm install)' };
  const version = JSON.parse(readFileSync(join(ELECTRON_DIR, 'package.json'), 'utf8')).version;
  console.log(`finch: downloading Electron ${version} (first launch only)...`);
  const r = spawnSync(process.execPath, [join(ELECTRON_DIR, 'install.js')], { cwd: ELECTRON_DIR, encoding: 'utf8', timeout: 15 * 60_000 });
  const retry = existsSync(join(ELECTRON_DIR, 'path.txt')) ? join(ELECTRON_DIR, 'dist', readFileSync(join(ELECTRON_DIR, 'path.txt'), 'utf8')) : path;
  if (r.status === 0 && existsSync(retry)) return { path: retry };
  const why = `${r.stderr ?? ''}${r.error?.message ?? ''}`.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('at ')) ?? `exit code ${r.status}`;
  return { error: `Electron's binary could not be downloaded (${why})` };
}

function buildElectron() {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-electron.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`bundling the Electron main process failed (exit ${r.status}): run \`npm run build:electron\` to see why`);
}

/** Opens the app; calls browserMode(reason) if Electron exits before its window is ready. */
function launch(binary) {
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE; // set, it would make Electron a plain Node
  const child = spawn(binary, ['.'], { cwd: ROOT, env, stdio: ['inherit', 'pipe', 'pipe'] });
  let ready = false;
  let lastError = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.includes(READY_LINE)) ready = true;
    console.log(line);
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.trim()) lastError = line.trim();
    if (ready) console.error(line);
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => browserMode(`Electron could not start (${e.message})`));
  child.on('exit', (code, signal) => {
    if (ready || code === 0) process.exit(code ?? 0);
    browserMode(`Electron could not start (${signal ? `signal ${signal}` : `exit code ${code}`}${lastError ? `: ${lastError}` : ''})`);
  });
}

try {
  // The renderer is built the way `finch serve` builds it (when missing or older than its sources).
  register();
  const { ensureRendererBuilt } = await import('../src-main/cli/commands/serve.ts');
  ensureRendererBuilt((s) => console.log(`finch: ${s}`));
  if (values.browser) {
    browserMode(null);
  } else {
    const why = noDisplay();
    const bin = why ? null : electronBinary();
    if (why || bin.error) {
      browserMode(why ?? bin.error);
    } else {
      buildElectron();
      launch(bin.path);
    }
  }
} catch (e) {
  console.error(`finch: ${e.message}`);
  process.exit(1);
}
