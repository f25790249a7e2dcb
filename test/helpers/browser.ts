/// <reference lib="dom" />
// What the e2e tests (test/e2e/) share: `finch serve` on a FINCH_HOME of the test's (optionally with
// jobs a test holds at a step, or a shorter demo: e2e-serve.ts), Debian's Chromium headless and off the network, an
// axe-core scan that fails on serious or critical violations, and full-page screenshots under
// test-artifacts/e2e/ for a person to look at.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { connectApi, type ApiConnection } from '../../src-shared/ws-client.js';
import { nodeArgsFor } from '../../src-main/engine/runtime/worker.js';
import { CHROMIUM } from './prerequisites.js';
import { within } from './wait.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'e2e');
const E2E_SERVE = new URL('./e2e-serve.ts', import.meta.url);

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ServeProcess {
  proc: ChildProcess;
  /** The address it printed, with this launch's token. */
  url: string;
  output: () => string;
  /** SIGTERM (Ctrl-C), and its exit. */
  stop(): Promise<void>;
}

/**
 * Starts `finch serve` (which builds the renderer first when it is missing or stale) and resolves
 * once it prints its URL. With `holdFile` or `demoSteps` it is served by e2e-serve.ts: the next
 * training job pauses itself after the steps written to `holdFile`; the demo trains `demoSteps`.
 */
export async function startServe(home: string, port: number, o: { holdFile?: string; demoSteps?: number } = {}): Promise<ServeProcess> {
  const hooks = { ...(o.holdFile ? { FINCH_TEST_HOLD_FILE: o.holdFile } : {}), ...(o.demoSteps ? { FINCH_TEST_DEMO_STEPS: String(o.demoSteps) } : {}) };
  const args = Object.keys(hooks).length
    ? [...nodeArgsFor(E2E_SERVE), fileURLToPath(E2E_SERVE), '--port', String(port)]
    : [join(ROOT, 'bin', 'finch.mjs'), 'serve', '--port', String(port)];
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, FINCH_HOME: home, ...hooks },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`finch serve printed no URL in 180 s:\n${out}`)), 180_000);
    const look = () => {
      const m = /http:\/\/127\.0\.0\.1:\d+\/\S*token=[\w-]+/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    };
    proc.stdout!.on('data', look);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`finch serve exited (${code}):\n${out}`)); });
  });
  return {
    proc, url, output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await within(exited, 30_000, 'finch serve to exit on SIGTERM', () => out.slice(-2000));
    },
  };
}

/** The server's API as a test reads it beside the page (the same WebSocket and token). */
export function serverApi(s: ServeProcess): Promise<ApiConnection> {
  const u = new URL(s.url);
  return connectApi(`ws://${u.host}/api?token=${u.searchParams.get('token')}`, WebSocket as never);
}

/** Chromium, headless, where every host but the loopback fails to resolve (requests are also filtered). */
export async function openBrowser(): Promise<{ browser: Browser; page: Page; pageErrors: string[] }> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light', deviceScaleFactor: 1, reducedMotion: 'reduce' });
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    return u.hostname === '127.0.0.1' ? route.continue() : route.abort();
  });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
  return { browser, page, pageErrors };
}

const axeSource = readFileSync(join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/** axe-core on the current page: no serious or critical violations. Injected through the
 * DevTools protocol (page.evaluate), which the page's Content-Security-Policy does not govern. */
export async function assertAccessible(page: Page, screen: string): Promise<void> {
  // Colours mid-transition (a theme switch, a hovered button) are not the page's colours: let finite animations end.
  await page.evaluate(() => Promise.all(document.getAnimations()
    .filter((an) => an.effect?.getTiming().iterations !== Infinity)
    .map((an) => an.finished.catch(() => null))));
  const has = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe === 'object');
  if (!has) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${screen}: accessibility violations:\n${JSON.stringify(bad, null, 2)}`);
}

/** A full-page screenshot, test-artifacts/e2e/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header belongs at the top of a full-page shot
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Pixels of the canvas in the accent colour: the training-loss line has been drawn. */
export async function accentPixels(page: Page, selector: string): Promise<number> {
  return page.evaluate((sel) => {
    const canvas = document.querySelector(sel) as HTMLCanvasElement;
    const accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(accent.slice(i, i + 2), 16));
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i]! - r!) < 24 && Math.abs(data[i + 1]! - g!) < 24 && Math.abs(data[i + 2]! - b!) < 24 && data[i + 3]! > 200) n++;
    }
    return n;
  }, selector);
}

/**
 * For a test's catch: saves the page as test-artifacts/e2e/<name>-failure.png and adds the servers'
 * last output to the error, which it returns for rethrowing.
 */
export async function failed(e: unknown, name: string, page: Page | null, servers: (ServeProcess | null)[]): Promise<unknown> {
  await page?.screenshot({ path: join(ARTIFACTS, `${name}-failure.png`), fullPage: true }).catch(() => {});
  if (e instanceof Error) for (const s of servers) if (s) e.message += `\n--- finch serve output ---\n${s.output().slice(-4000)}`;
  return e;
}
