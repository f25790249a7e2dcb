// The renderer's walls (docs/security.md lists each with its test):
//  - Finch's pages come only from app://finch/, a privileged scheme served from dist/renderer by
//    rendererResponse(): files inside that folder only, each with the CSP header.
//  - The session loads nothing else: every other URL (any http(s), ws, file) is cancelled, so no
//    remote content ever reaches a Finch window. In development the Vite dev server's origin is
//    the one exception (FINCH_RENDERER_URL).
//  - Every permission request (camera, notifications, geolocation, ...) and check is denied.
//  - No web contents may navigate away from Finch's pages, open windows (web links go to the
//    system browser) or attach a <webview>.

import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { protocol, shell, type Session, type WebContents } from 'electron';
import { contentSecurityPolicy } from '../../src-shared/csp.js';

export const APP_SCHEME = 'app';
export const APP_HOST = 'finch';
export const APP_ENTRY = `${APP_SCHEME}://${APP_HOST}/index.html`;

/** Finch's own pages: app://finch/..., or the dev server's origin when one is configured. */
export function appUrlCheck(devUrl: string | undefined): (url: string) => boolean {
  const devOrigin = devUrl ? new URL(devUrl).origin : null;
  return (url) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return false;
    }
    if (u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST) return true;
    return devOrigin !== null && u.origin === devOrigin;
  };
}

/** Must run before the app is ready: app:// behaves like https (origin, fetch, secure context). */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The response to one app:// request: the file under `rendererDir` with its type and the CSP,
 * or 404 for anything outside that folder, another host, or a missing file.
 */
export async function rendererResponse(rendererDir: string, url: string): Promise<Response> {
  const notFound = () => new Response('not found', { status: 404, headers: { 'Content-Type': 'text/plain' } });
  const u = new URL(url);
  if (u.host !== APP_HOST) return notFound();
  let path: string;
  try {
    path = decodeURIComponent(u.pathname);
  } catch {
    return notFound();
  }
  const root = resolve(rendererDir);
  const file = resolve(root, `.${path === '/' ? '/index.html' : path}`);
  if (!file.startsWith(root + sep)) return notFound();
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return notFound();
  }
  return new Response(new Uint8Array(body), {
    status: 200,
    headers: {
      'Content-Type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Security-Policy': contentSecurityPolicy(),
      'X-Content-Type-Options': 'nosniff',
    },
  });
}

export function serveRenderer(rendererDir: string): void {
  protocol.handle(APP_SCHEME, (request) => rendererResponse(rendererDir, request.url));
}

/**
 * Locks a session down: no permissions, and no request to anything but Finch's pages (plus
 * DevTools' own pages, and the dev server in development, whose responses get the CSP header).
 */
export function hardenSession(ses: Session, isAppUrl: (url: string) => boolean, devUrl: string | undefined): void {
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.webRequest.onBeforeRequest((details, callback) => {
    const allowed = isAppUrl(details.url) || details.url.startsWith('devtools://') || (devUrl !== undefined && isDevSocket(details.url, devUrl));
    if (!allowed) console.warn(`finch: blocked a request to ${details.url}`);
    callback({ cancel: !allowed });
  });
  if (devUrl) {
    const hmr = new URL(devUrl);
    hmr.protocol = hmr.protocol === 'https:' ? 'wss:' : 'ws:';
    const csp = contentSecurityPolicy({ connect: [hmr.origin] });
    ses.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } });
    });
  }
}

function isDevSocket(url: string, devUrl: string): boolean {
  const u = new URL(url);
  const d = new URL(devUrl);
  return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.host === d.host;
}

/** Guards every web contents Finch creates: no navigation away, no new windows, no webviews. */
export function hardenWebContents(contents: WebContents, isAppUrl: (url: string) => boolean): void {
  const stayHome = (event: { preventDefault(): void }, url: string) => {
    if (!isAppUrl(url)) {
      event.preventDefault();
      console.warn(`finch: blocked navigation to ${url}`);
    }
  };
  // will-frame-navigate covers the top frame and every iframe (will-navigate only the top one).
  contents.on('will-frame-navigate', (details) => stayHome(details, details.url));
  contents.on('will-redirect', (details) => stayHome(details, details.url));
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    // A link to the web (the README, a model's page) opens in the user's browser, never in Finch.
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
}
