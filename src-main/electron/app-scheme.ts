// Finch's own URL scheme, app://finch/: which URLs are Finch's pages, and the response to each
// request for one (a file of dist/renderer with the CSP header). Plain Node, no electron import:
// security.ts registers it with Electron, and test/shared/csp.test.ts serves the same responses
// to a real Chromium.

import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
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
