// src-main/electron/preload.ts with a faked electron module: window.api is the whole DesktopApi,
// every call travels over IPC to the dispatcher and back, failures arrive as plain data with
// code and hint, events arrive through onEvent without Electron's event object; and the bundled
// preload requires nothing but 'electron', as a sandboxed preload must.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { installFakeElectron } from '../helpers/electron-loader.js';
import { API_CALLS, type ApiCalls, type DesktopApi, type FinchEvent } from '../../src-shared/api.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { BrowserWindow, fake } = await installFakeElectron();
const { registerIpc, forwardEvents } = await import('../../src-main/electron/ipc.js');
const { createDispatcher } = await import('../../src-main/services/dispatch.js');
const { ServiceError } = await import('../../src-main/services/errors.js');
const { appUrlCheck, APP_ENTRY } = await import('../../src-main/electron/app-scheme.js');

const reached: { name: string; args: unknown[] }[] = [];
const services = new Proxy({} as ApiCalls, {
  get: (_t, name: string) => async (...args: unknown[]) => {
    reached.push({ name, args });
    if (name === 'runDetails') throw new ServiceError('not_found', `no run "${String(args[0])}"`, 'see listRuns for the runs Finch knows');
    return { served: name };
  },
});
const listeners = new Set<(e: FinchEvent) => void>();
const dispatcher = createDispatcher(services, { subscribe: (l) => { listeners.add(l); return () => listeners.delete(l); } });

const win = new BrowserWindow({});
await win.loadURL(APP_ENTRY);
registerIpc({ dispatcher, appContents: () => win.webContents as never, isAppUrl: appUrlCheck(undefined) });
forwardEvents({ dispatcher, appContents: () => win.webContents as never });
fake.useWindow(win);
await import('../../src-main/electron/preload.js');
const api = fake.mainWorld.api as DesktopApi;

test('window.api has exactly the contract\'s calls and its event subscription', () => {
  assert.deepEqual(Object.keys(api).sort(), [...API_CALLS, 'onEvent'].sort());
  for (const k of Object.keys(api)) assert.equal(typeof (api as unknown as Record<string, unknown>)[k], 'function');
});

test('every call goes over IPC to the dispatcher: valid arguments reach the service, invalid ones are refused', async () => {
  // Calls whose one argument has only optional fields may leave it out: the service gets {}.
  const omittable = new Set(['setSettings', 'startDemo', 'listComparisons']);
  for (const name of API_CALLS) {
    reached.length = 0;
    const call = (api as unknown as Record<string, () => Promise<unknown>>)[name]!;
    try {
      assert.deepEqual(await call(), { served: name });
      assert.deepEqual(reached, [{ name, args: omittable.has(name) ? [{}] : [] }]);
    } catch (e) {
      assert.equal((e as { code: string }).code, 'invalid_argument', `${name}: ${JSON.stringify(e)}`);
      assert.deepEqual(reached, [], `${name} reached its service without valid arguments`);
    }
  }
  reached.length = 0;
  const config = { ...RUN_DEFAULTS, modelId: 'm1', datasetId: 'd1' };
  assert.deepEqual(await api.startRun(config), { served: 'startRun' });
  assert.deepEqual(reached, [{ name: 'startRun', args: [config] }]);
  await api.pickPath({ kind: 'dataset-file' });
  assert.deepEqual(reached.at(-1), { name: 'pickPath', args: [{ kind: 'dataset-file' }] });
});

test('a failed call rejects with plain data carrying code, message, hint and field', async () => {
  const bad = await api.startRun({ ...RUN_DEFAULTS, modelId: 'm1', datasetId: 'd1', lora: { ...RUN_DEFAULTS.lora, rank: 0 } }).catch((e: unknown) => e);
  assert.equal(Object.getPrototypeOf(bad), Object.prototype, 'plain data: contextBridge would drop an Error\'s fields');
  assert.deepEqual(Object.keys(bad as object).sort(), ['code', 'field', 'hint', 'message', 'name']);
  assert.equal((bad as { code: string }).code, 'invalid_argument');
  assert.equal((bad as { field: string }).field, '0.lora.rank');
  const missing = await api.runDetails('nope').catch((e: unknown) => e);
  assert.deepEqual({ ...(missing as object), name: undefined }, { name: undefined, code: 'not_found', message: 'no run "nope"', hint: 'see listRuns for the runs Finch knows', field: undefined });
});

test('onEvent delivers events as plain data, without Electron\'s event object, until unsubscribed', () => {
  const got: unknown[][] = [];
  const off = api.onEvent((...args: unknown[]) => got.push(args));
  const e: FinchEvent = { type: 'run-status', runId: 'r1', status: 'running', error: null };
  for (const l of listeners) l(e);
  off();
  for (const l of listeners) l({ ...e, status: 'completed' });
  assert.deepEqual(got, [[e]]);
});

test('the sandboxed preload bundles to CommonJS that requires only electron', async () => {
  const out = mkdtempSync(join(tmpdir(), 'finch-preload-'));
  try {
    await build({ absWorkingDir: root, entryPoints: ['src-main/electron/preload.ts'], bundle: true, platform: 'node', format: 'cjs', external: ['electron'], outfile: join(out, 'preload.cjs'), logLevel: 'silent' });
    const code = readFileSync(join(out, 'preload.cjs'), 'utf8');
    const required = [...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    assert.deepEqual([...new Set(required)], ['electron']);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
