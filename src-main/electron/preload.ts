// The renderer's only door to Finch: `window.api`, the DesktopApi over IPC, generated from the
// contract's call table by makeApiClient (the same generator as browser mode's WebSocket client).
// It runs in a sandboxed preload, so it may require only 'electron' (scripts/build-electron.mjs
// bundles it to CommonJS with src-shared inlined; api.ts has no runtime imports) and hands the
// page plain functions and plain data.
//
// A failed call rejects with the ApiError's fields as a plain object ({name, code, message, hint,
// field}): contextBridge copies only the message of an Error, and the page needs code and hint.

import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { API_CALLS, EVENT_CHANNEL, callChannel, makeApiClient, type ApiCalls, type CallResult, type DesktopApi, type FinchEvent } from '../../src-shared/api.js';

const client = makeApiClient(
  (name, args) => ipcRenderer.invoke(callChannel(name), ...args) as Promise<CallResult>,
  (listener) => {
    // Wrapped: the page must never see the IpcRendererEvent (it carries the sender).
    const handler = (_event: IpcRendererEvent, e: FinchEvent) => listener(e);
    ipcRenderer.on(EVENT_CHANNEL, handler);
    return () => { ipcRenderer.off(EVENT_CHANNEL, handler); };
  },
);

/** The client's call with its failure turned into plain data that survives the bridge. */
function bridged(name: keyof ApiCalls): (...args: unknown[]) => Promise<unknown> {
  const call = client[name] as (...args: unknown[]) => Promise<unknown>;
  return async (...args) => {
    try {
      return await call(...args);
    } catch (e) {
      const f = e as { name?: string; message?: string; code?: string; hint?: string | null; field?: string };
      throw { name: f.name ?? 'Error', message: f.message ?? String(e), code: f.code ?? 'internal', hint: f.hint ?? null, field: f.field };
    }
  };
}

// API_CALLS lists every call (api.ts fails to compile otherwise), so the object has them all.
const calls = Object.fromEntries(API_CALLS.map((name) => [name, bridged(name)])) as unknown as ApiCalls;

const api = { ...calls, onEvent: client.onEvent } satisfies DesktopApi;

contextBridge.exposeInMainWorld('api', api);
