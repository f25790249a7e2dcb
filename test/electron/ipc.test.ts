// src-main/electron/ipc.ts with a faked electron module: every call of the contract gets a
// handler that goes through the real dispatcher (its schemas), messages from anything but the top
// frame of Finch's window on a Finch page are refused, and events reach only Finch's window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installFakeElectron } from '../helpers/electron-loader.js';
import { CALL_ARGS } from '../../src-shared/schemas.js';
import { API_CALLS, EVENT_CHANNEL, callChannel, type ApiCalls, type CallResult, type FinchEvent } from '../../src-shared/api.js';

const electron = await installFakeElectron();
const { BrowserWindow, WebFrameMain, ipcRenderer, fake } = electron;
const { registerIpc, forwardEvents } = await import('../../src-main/electron/ipc.js');
const { createDispatcher } = await import('../../src-main/services/dispatch.js');
const { appUrlCheck, APP_ENTRY } = await import('../../src-main/electron/security.js');

/** Services that record what reached them: proof that a call went through the dispatcher. */
function recordingServices(log: { name: string; args: unknown[] }[]): ApiCalls {
  return new Proxy({} as ApiCalls, {
    get: (_t, name: string) => async (...args: unknown[]) => {
      log.push({ name, args });
      return { served: name };
    },
  });
}

const listeners = new Set<(e: FinchEvent) => void>();
const emit = (e: FinchEvent) => { for (const l of listeners) l(e); };
const served: { name: string; args: unknown[] }[] = [];
const dispatcher = createDispatcher(recordingServices(served), { subscribe: (l) => { listeners.add(l); return () => listeners.delete(l); } });

const win = new BrowserWindow({});
await win.loadURL(APP_ENTRY);
const unregister = registerIpc({ dispatcher, appContents: () => win.webContents as never, isAppUrl: appUrlCheck(undefined) });
forwardEvents({ dispatcher, appContents: () => win.webContents as never });

const invoke = (name: string, ...args: unknown[]) => ipcRenderer.invoke(callChannel(name as never), ...args) as Promise<CallResult>;

test('every call of the contract has a handler that reaches the services through the dispatcher', async () => {
  fake.useWindow(win);
  served.length = 0;
  for (const name of API_CALLS) {
    const r = await invoke(name);
    // Calls without arguments reach their service; the others are stopped by their schema.
    if (r.ok) assert.deepEqual(r.value, { served: name });
    else assert.equal(r.error.code, 'invalid_argument', `${name}: ${JSON.stringify(r.error)}`);
  }
  const noArgs = API_CALLS.filter((n) => CALL_ARGS[n].safeParse([]).success);
  assert.ok(noArgs.length >= 5);
  for (const n of noArgs) assert.ok(served.some((s) => s.name === n), `${n} did not reach its service`);
  const r = await invoke('pauseRun', 'run-7');
  assert.deepEqual(r, { ok: true, value: { served: 'pauseRun' } });
  assert.deepEqual(served.at(-1), { name: 'pauseRun', args: ['run-7'] });
});

test('bad arguments are refused by the dispatcher with the failing field, and never reach a service', async () => {
  fake.useWindow(win);
  served.length = 0;
  const wrongType = await invoke('pauseRun', 42);
  assert.equal(wrongType.ok, false);
  assert.equal(!wrongType.ok && wrongType.error.code, 'invalid_argument');
  assert.equal(!wrongType.ok && wrongType.error.field, '0');
  const unknownField = await invoke('pickPath', { kind: 'model-folder', path: '/etc' });
  assert.match(!unknownField.ok ? unknownField.error.message : '', /unknown field "path"/);
  const badKind = await invoke('pickPath', { kind: 'any-file' });
  assert.equal(!badKind.ok && badKind.error.field, '0.kind');
  assert.deepEqual(served, []);
});

test('messages from a foreign page, a subframe, another window or a vanished frame are refused', async () => {
  served.length = 0;
  const refused = async (why: string) => {
    await assert.rejects(invoke('listRuns'), /listRuns refused/, why);
  };
  fake.renderer.contents = win.webContents;
  fake.renderer.frame = new WebFrameMain('https://evil.example/page.html');
  await refused('a remote page in the window');
  fake.renderer.frame = new WebFrameMain('app://evil/index.html');
  await refused('another host of the app scheme');
  fake.renderer.frame = new WebFrameMain('file:///home/user/index.html');
  await refused('a file page');
  fake.renderer.frame = new WebFrameMain(APP_ENTRY, win.webContents.mainFrame);
  await refused('a subframe, even on a Finch URL');
  fake.renderer.frame = null;
  await refused('a frame that navigated away or was destroyed');
  const other = new BrowserWindow({});
  await other.loadURL(APP_ENTRY);
  fake.useWindow(other);
  await refused('a second window on a Finch page');
  other.destroy();
  assert.deepEqual(served, []);
  fake.useWindow(win);
  assert.equal((await invoke('listRuns')).ok, true);
});

test('events reach Finch\'s window on the one event channel', () => {
  const before = win.webContents.sent.length;
  const e: FinchEvent = { type: 'library-changed', what: 'runs' };
  emit(e);
  assert.deepEqual(win.webContents.sent.slice(before), [{ channel: EVENT_CHANNEL, args: [e] }]);
});

test('unregistering removes every handler', async () => {
  unregister();
  await assert.rejects(invoke('listRuns'), /No handler registered/);
});
