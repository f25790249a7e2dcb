// src-shared/csp.ts in a real browser: Debian's Chromium (headless, through playwright-core, off
// the network) loads the *built* renderer (dist/renderer) served by Electron's own app:// handler
// code (rendererResponse: the CSP header) and carrying the CSP <meta> the Vite build writes.
// Browser mode's server sends the same policy (its API WebSocket added).
// The app must still start under the policy, while an inline script and every remote origin
// (script, image, fetch, WebSocket, iframe) are refused, with the header alone and with the meta alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ensureRendererBuilt as buildRenderer, RENDERER_DIR as RENDERER } from '../../src-main/cli/commands/serve.js';
import { contentSecurityPolicy } from '../../src-shared/csp.js';
import { rendererResponse } from '../../src-main/electron/app-scheme.js';
import { startServer } from '../../src-main/server/index.js';
import { EventBus } from '../../src-main/services/bus.js';
import { createDispatcher } from '../../src-main/services/dispatch.js';
import type { ApiCalls } from '../../src-shared/api.js';
import { CHROMIUM, need } from '../helpers/prerequisites.js';

const RENDERER_INDEX = join(RENDERER, 'index.html');
const ensureRendererBuilt = () => buildRenderer(() => {});
const ORIGIN = 'http://finch.test';

/** Probes appended to the built index.html: each would leave a trace if the policy let it run. */
const PROBES = `
<script>window.__inlineRan = true;</script>
<img id="remote-img" src="https://remote.example/pixel.png">
<iframe src="https://remote.example/frame.html"></iframe>
<script src="https://remote.example/lib.js"></script>
<script type="module" src="./probe.js"></script>`;
/** Runs as a same-origin script (allowed) and tries what a compromised page would. */
const PROBE_JS = `
window.__violations = window.__violations || [];
try { eval('window.__evalRan = true'); } catch {}
fetch('https://remote.example/data.json').then(() => { window.__fetchOk = true; }, () => { window.__fetchBlocked = true; });
try { new WebSocket('wss://remote.example/socket'); } catch {}
`;

async function visit(browser: Browser, via: 'header' | 'meta') {
  const context = await browser.newContext();
  const remoteRequests: string[] = [];
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== ORIGIN) {
      remoteRequests.push(url.href);
      return route.fulfill({ status: 200, body: 'window.__remoteRan = true', contentType: 'text/javascript' });
    }
    if (url.pathname === '/probe.js') return route.fulfill({ status: 200, body: PROBE_JS, contentType: 'text/javascript' });
    const res = await rendererResponse(RENDERER, `app://finch${url.pathname}`);
    let body = Buffer.from(await res.arrayBuffer());
    const headers = Object.fromEntries(res.headers);
    if (url.pathname === '/' || url.pathname === '/index.html') {
      let html = body.toString('utf8').replace('</body>', `${PROBES}</body>`);
      if (via === 'meta') delete headers['content-security-policy'];
      else html = html.replace(/<meta\s+http-equiv="Content-Security-Policy"[^>]*>/, '');
      body = Buffer.from(html);
    }
    return route.fulfill({ status: res.status, headers, body });
  });
  const page = await context.newPage();
  await page.addInitScript(() => {
    const w = window as unknown as { __violations: string[] };
    w.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });
  await page.goto(`${ORIGIN}/index.html`);
  // The real app renders under the policy: its module script and styles are same-origin.
  await page.waitForFunction(() => (document.getElementById('app')?.childElementCount ?? 0) > 0, null, { timeout: 30_000 });
  await page.waitForFunction(() => (window as unknown as { __fetchBlocked?: boolean; __fetchOk?: boolean }).__fetchBlocked || (window as unknown as { __fetchOk?: boolean }).__fetchOk);
  await page.waitForTimeout(200);
  const state = await page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    return { inline: w.__inlineRan ?? false, evalRan: w.__evalRan ?? false, remote: w.__remoteRan ?? false, fetchOk: w.__fetchOk ?? false, violations: w.__violations as string[] };
  });
  await context.close();
  return { ...state, remoteRequests };
}

test('the built renderer carries the one policy as its <meta>', () => {
  ensureRendererBuilt();
  const html = readFileSync(RENDERER_INDEX, 'utf8');
  const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/.exec(html);
  assert.equal(meta?.[1], contentSecurityPolicy({ meta: true }));
});

test('browser mode\'s server sends the one policy on its pages, with its API WebSocket as the one extra source', async () => {
  ensureRendererBuilt();
  const srv = await startServer({ dispatcher: createDispatcher({} as ApiCalls, new EventBus()), rendererDir: RENDERER });
  try {
    const res = await fetch(srv.url);
    assert.equal(res.status, 200);
    const header = res.headers.get('content-security-policy');
    assert.equal(header, contentSecurityPolicy({ connect: [`ws://127.0.0.1:${srv.port}`] }));
    assert.match(header!, /worker-src 'self'/);
  } finally {
    await srv.close();
  }
});

test('in Chromium the policy refuses inline script, eval and every remote origin, by header and by meta', { timeout: 120_000 }, async (t) => {
  if (!need(t, 'chromium')) return;
  ensureRendererBuilt();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--host-resolver-rules=MAP * ~NOTFOUND', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    for (const via of ['header', 'meta'] as const) {
      const r = await visit(browser, via);
      assert.equal(r.inline, false, `${via}: inline script ran`);
      assert.equal(r.evalRan, false, `${via}: eval ran`);
      assert.equal(r.remote, false, `${via}: remote script ran`);
      assert.equal(r.fetchOk, false, `${via}: remote fetch succeeded`);
      assert.deepEqual(r.remoteRequests, [], `${via}: requests left the page's origin`);
      for (const d of ['script-src-elem inline', 'script-src eval', 'img-src https://remote.example/pixel.png', 'frame-src https://remote.example', 'script-src-elem https://remote.example/lib.js', 'connect-src https://remote.example/data.json', 'connect-src wss://remote.example/socket']) {
        assert.ok(r.violations.includes(d), `${via}: no violation "${d}" in ${JSON.stringify(r.violations)}`);
      }
    }
  } finally {
    await browser.close();
  }
});
