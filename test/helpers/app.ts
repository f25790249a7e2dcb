// The back end as tests drive it: services over a fresh FINCH_HOME, reached through one of the
// three transports (the in-process dispatcher, the WebSocket of `finch serve`, Electron IPC with
// a faked electron module), each handing back the same DesktopApi the renderer gets.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { makeApiClient, type ApiFailure, type DesktopApi, type FinchEvent } from '../../src-shared/api.js';
import { connectApi } from '../../src-shared/ws-client.js';
import { createServices, type Services, type ServicesOptions } from '../../src-main/services/index.js';
import { startServer, type RunningServer } from '../../src-main/server/index.js';
import { lastEvents } from './wait.js';

export type Transport = 'dispatcher' | 'websocket' | 'ipc';

export interface TestApp {
  api: DesktopApi;
  services: Services;
  server: RunningServer | null;
  home: string;
  /** Every event seen, in order. */
  events: FinchEvent[];
  /**
   * Resolves with the first event (seen so far or later) that matches; rejects after `timeoutMs`
   * naming `what` (default: the matcher's source) and the last events seen.
   */
  waitFor<T extends FinchEvent>(match: (e: FinchEvent) => e is T, what?: string, timeoutMs?: number): Promise<T>;
  waitFor(match: (e: FinchEvent) => boolean, what?: string, timeoutMs?: number): Promise<FinchEvent>;
  close(): Promise<void>;
}

/** How a call that must fail failed, as the client sees it (code, message, hint, field). */
export async function failure(p: Promise<unknown>): Promise<ApiFailure> {
  try {
    await p;
  } catch (e) {
    return e as ApiFailure;
  }
  assert.fail('the call should have failed');
}

/** How long waitFor waits by default: a short run of the demo model on a loaded 2-core machine fits. */
export const WAIT_MS = 180_000;

/**
 * A new FINCH_HOME (or `home`, to reopen one), services over it, and a client through `transport`;
 * `spawnJob` hosts the jobs (test/helpers/held-job.ts holds a run at a step).
 */
export async function startApp(transport: Transport, home = mkdtempSync(join(tmpdir(), 'finch-app-')), o: Pick<ServicesOptions, 'spawnJob'> = {}): Promise<TestApp> {
  process.env.FINCH_HOME = home;
  const services = createServices({ browserMode: transport === 'websocket', ...o });
  let server: RunningServer | null = null;
  let api: DesktopApi;
  let closeClient = () => {};
  if (transport === 'dispatcher') {
    api = makeApiClient((name, args) => services.dispatcher.dispatch(name, args), (l) => services.dispatcher.events.subscribe(l));
  } else if (transport === 'websocket') {
    server = await startServer({ dispatcher: services.dispatcher, rendererDir: null });
    const conn = await connectApi(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, WebSocket as never);
    api = conn;
    closeClient = () => conn.close();
  } else {
    api = await ipcClient(services);
  }
  const events: FinchEvent[] = [];
  const waiters = new Set<{ match: (e: FinchEvent) => boolean; resolve: (e: FinchEvent) => void }>();
  api.onEvent((e) => {
    events.push(e);
    for (const w of [...waiters]) if (w.match(e)) { waiters.delete(w); w.resolve(e); }
  });
  return {
    api, services, server, home, events,
    waitFor: ((match: (e: FinchEvent) => boolean, what?: string, timeoutMs = WAIT_MS) => {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve: (e: FinchEvent) => { clearTimeout(timer); resolve(e); } };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what ?? match.toString()}; the last events:\n  ${lastEvents(events)}`));
        }, timeoutMs);
        waiters.add(w);
      });
    }) as TestApp['waitFor'],
    async close() {
      closeClient();
      await server?.close();
      services.close();
    },
  };
}

/** Electron's transport: the real ipc.ts and preload.ts over the faked electron module. */
async function ipcClient(services: Services): Promise<DesktopApi> {
  const { installFakeElectron } = await import('./electron-loader.js');
  const { BrowserWindow, fake } = await installFakeElectron();
  const { registerIpc, forwardEvents } = await import('../../src-main/electron/ipc.js');
  const { appUrlCheck, APP_ENTRY } = await import('../../src-main/electron/app-scheme.js');
  const win = new BrowserWindow({});
  await win.loadURL(APP_ENTRY);
  registerIpc({ dispatcher: services.dispatcher, appContents: () => win.webContents as never, isAppUrl: appUrlCheck(undefined) });
  forwardEvents({ dispatcher: services.dispatcher, appContents: () => win.webContents as never });
  fake.useWindow(win);
  // The preload runs once per process (it exposes window.api on import).
  await import('../../src-main/electron/preload.js');
  return fake.mainWorld.api as DesktopApi;
}
