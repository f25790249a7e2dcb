// The renderer's walls (docs/security.md lists each with its test):
//  - Finch's pages come only from app://finch/, a privileged scheme served from dist/renderer by
//    rendererResponse(): files inside that folder only, each with the CSP header.
//  - The session loads nothing else: every other URL (any http(s), ws, file) is cancelled, so no
//    remote content ever reaches a Finch window. In development the Vite dev server's origin is
//    the one exception (FINCH_RENDERER_URL).
//  - Every permission request (camera, notifications, geolocation, ...) and check is denied.
//  - No web contents may navigate away from Finch's pages, open windows (web links go to the
//    system browser) or attach a <webview>.

import { protocol, shell, type Session, type WebContents } from 'electron';
import { contentSecurityPolicy } from '../../src-shared/csp.js';
import { APP_SCHEME, rendererResponse } from './app-scheme.js';

/** Must run before the app is ready: app:// behaves like https (origin, fetch, secure context). */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
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
