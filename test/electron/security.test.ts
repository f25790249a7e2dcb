// src-main/electron/security.ts with a faked electron module: what the walls around the renderer
// do, not how they are spelled. (The CSP itself is checked in a real Chromium by
// test/shared/csp.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installFakeElectron } from '../helpers/electron-loader.js';
import { contentSecurityPolicy } from '../../src-shared/csp.js';

const { BrowserWindow, WebFrameMain, session, shell } = await installFakeElectron();
const sec = await import('../../src-main/electron/security.js');
const isAppUrl = sec.appUrlCheck(undefined);

test('app URLs are app://finch only', () => {
  assert.equal(isAppUrl('app://finch/index.html'), true);
  assert.equal(isAppUrl('app://finch/assets/x.js'), true);
  for (const u of ['app://evil/index.html', 'https://finch/index.html', 'file:///index.html', 'http://127.0.0.1:5173/', 'not a url', '']) assert.equal(isAppUrl(u), false, u);
  const dev = sec.appUrlCheck('http://localhost:5173/');
  assert.equal(dev('http://localhost:5173/src/main.ts'), true);
  assert.equal(dev('http://localhost:5174/'), false);
});

test('the app scheme serves only the renderer folder, every file with the CSP header and its type', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'finch-renderer-'));
  try {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Finch</title>');
    writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(dir, '..', `${dir.split('/').pop()}-secret.txt`), 'secret');
    const index = await sec.rendererResponse(dir, 'app://finch/');
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(index.headers.get('content-security-policy'), contentSecurityPolicy());
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await index.text(), '<!doctype html><title>Finch</title>');
    const js = await sec.rendererResponse(dir, 'app://finch/assets/app.js');
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('content-security-policy'), contentSecurityPolicy());
    const escape = `${dir.split('/').pop()}-secret.txt`;
    for (const url of [`app://finch/../${escape}`, `app://finch/%2e%2e/${escape}`, `app://finch/%2e%2e%2f${escape}`, 'app://finch/%E0%A4%A', 'app://other/index.html', 'app://finch/missing.js', 'app://finch/assets']) {
      assert.equal((await sec.rendererResponse(dir, url)).status, 404, url);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}-secret.txt`, { force: true });
  }
});

test('the session denies every permission and loads nothing but Finch\'s pages', async () => {
  const ses = session.defaultSession;
  sec.hardenSession(ses as never, isAppUrl, undefined);
  for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal', 'fullscreen']) assert.equal(await ses.requestPermission(p), false, p);
  assert.equal(ses.permissionCheckHandler?.(null, 'media'), false);
  assert.equal(await ses.allowsRequest('app://finch/index.html'), true);
  assert.equal(await ses.allowsRequest('devtools://devtools/bundled/inspector.html'), true);
  for (const u of ['https://cdn.example/lib.js', 'http://127.0.0.1:8080/', 'wss://evil.example/socket', 'file:///etc/passwd', 'app://other/x']) assert.equal(await ses.allowsRequest(u), false, u);
  assert.equal(ses.headersReceived, null, 'no header rewriting without a dev server');
});

test('in development the dev server and its HMR socket are the one exception, with the CSP added', async () => {
  const ses = new (session.defaultSession.constructor as new () => typeof session.defaultSession)();
  const dev = 'http://localhost:5173/';
  sec.hardenSession(ses as never, sec.appUrlCheck(dev), dev);
  assert.equal(await ses.allowsRequest('http://localhost:5173/src/main.ts'), true);
  assert.equal(await ses.allowsRequest('ws://localhost:5173/'), true);
  assert.equal(await ses.allowsRequest('ws://localhost:5999/'), false);
  assert.equal(await ses.allowsRequest('https://cdn.example/x.js'), false);
  const headers = await new Promise<Record<string, string[] | string> | undefined>((resolve) => ses.headersReceived!({ url: dev, responseHeaders: { 'Content-Type': ['text/html'] } }, (r) => resolve(r.responseHeaders)));
  assert.deepEqual(headers?.['Content-Security-Policy'], [contentSecurityPolicy({ connect: ['ws://localhost:5173'] })]);
});

test('web contents cannot navigate away, open windows or attach webviews; web links go to the browser', () => {
  const win = new BrowserWindow({});
  const wc = win.webContents;
  sec.hardenWebContents(wc as never, isAppUrl);
  assert.equal(wc.tryNavigate('app://finch/other.html'), true);
  assert.equal(wc.tryNavigate('https://evil.example/'), false);
  assert.equal(wc.tryNavigate('file:///etc/passwd'), false);
  assert.equal(wc.tryNavigate('https://evil.example/', new WebFrameMain('app://finch/index.html', wc.mainFrame)), false, 'an iframe navigating away');
  assert.equal(wc.tryOpenWindow('app://finch/index.html'), 'deny');
  assert.equal(wc.tryOpenWindow('https://huggingface.co/meta-llama'), 'deny');
  assert.equal(wc.tryOpenWindow('file:///etc/passwd'), 'deny');
  assert.deepEqual(shell.opened, ['https://huggingface.co/meta-llama'], 'only the https link opens, in the system browser');
  let prevented = false;
  wc.emit('will-attach-webview', { preventDefault: () => { prevented = true; } });
  assert.equal(prevented, true);
  const redirect = { url: 'https://evil.example/', defaultPrevented: false, preventDefault() { this.defaultPrevented = true; } };
  wc.emit('will-redirect', redirect);
  assert.equal(redirect.defaultPrevented, true);
});
