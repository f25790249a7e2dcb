// Electron main process: one window, Finch's pages served from the app:// scheme, and the IPC
// bridge to the services. No heavy work here: training and generation run in workers.
// Security: the renderer is sandboxed and context-isolated with no Node, its pages carry a strict
// Content-Security-Policy, it cannot open windows or navigate away, and it asks for no permissions.

import { app, BrowserWindow, net, protocol, session, shell } from 'electron';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ApiCalls, PROVIDER_NAMES, type ProviderName } from '../../src-shared/api.js';
import { registerIpc } from './ipc.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/electron after the build
const RENDERER_DIR = join(here, '..', 'renderer');
const APP_ORIGIN = 'app://finch';
/** Development: the renderer's Vite dev server (e.g. http://localhost:5173). */
const DEV_URL = process.env.FINCH_RENDERER_URL;

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'", // Svelte's scoped styles and chart.js set inline styles
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const isAppUrl = (url: string): boolean =>
  url.startsWith(`${APP_ORIGIN}/`) || (DEV_URL !== undefined && url.startsWith(DEV_URL));

protocol.registerSchemesAsPrivileged([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

/** Serves dist/renderer under app://finch/, never a file outside it, always with the CSP. */
function serveRenderer(): void {
  protocol.handle('app', async (request) => {
    const { host, pathname } = new URL(request.url);
    const rel = normalize(decodeURIComponent(pathname === '/' ? '/index.html' : pathname)).replace(/^[/\\]+/, '');
    const file = join(RENDERER_DIR, rel);
    if (host !== 'finch' || !file.startsWith(RENDERER_DIR + sep)) return new Response('not found', { status: 404 });
    const res = await net.fetch(pathToFileURL(file).toString());
    const headers = new Headers(res.headers);
    headers.set('Content-Security-Policy', CSP);
    return new Response(res.body, { status: res.status, headers });
  });
}

/** Until src-main/services/ implements DesktopApi: app info, and a clear error for the rest. */
function placeholderServices(): ApiCalls {
  const later = (what: string) => async (): Promise<never> => {
    throw new Error(`${what} is not implemented in this build of Finch yet`);
  };
  return {
    appInfo: async () => {
      const { availableProviders } = await import('../engine/runtime/session.js');
      const known: readonly ProviderName[] = PROVIDER_NAMES;
      return {
        version: app.getVersion(),
        platform: `${process.platform}-${process.arch}`,
        providers: availableProviders().map((p) => p.name as ProviderName).filter((n) => known.includes(n)),
      };
    },
    listModels: later('listModels'),
    startRun: later('startRun'),
    stopRun: later('stopRun'),
  };
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    show: false,
    title: 'Finch',
    webPreferences: {
      preload: join(here, 'preload.cjs'),
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
      webSecurity: true,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  // Links to the web open in the user's browser; nothing opens inside Finch.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (event, url) => {
    if (!isAppUrl(url)) event.preventDefault();
  });
  void win.loadURL(DEV_URL ?? `${APP_ORIGIN}/index.html`);
  return win;
}

app.enableSandbox();

app.whenReady().then(() => {
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  if (DEV_URL) {
    // The dev server's pages get the same policy as packaged ones (plus Vite's HMR socket).
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      const hmr = DEV_URL.replace(/^http/, 'ws');
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CSP.replace("connect-src 'self'", `connect-src 'self' ${hmr}`)] } });
    });
  }
  serveRenderer();
  registerIpc(placeholderServices(), isAppUrl);
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
}).catch((err: unknown) => {
  console.error('finch: failed to start', err);
  app.exit(1);
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
