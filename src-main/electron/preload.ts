// The renderer's only door to Finch: exposes `window.api` (DesktopApi) over IPC. It runs in a
// sandboxed preload, so it may import only 'electron' (bundled to CommonJS by
// scripts/build-electron.mjs, with src-shared inlined) and hands the page plain functions.
// The API object is generated from the contract's call table (makeApiClient), like the browser's.

import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { EVENT_CHANNEL, callChannel, makeApiClient, type CallResult, type FinchEvent } from '../../src-shared/api.js';

const api = makeApiClient(
  (name, args) => ipcRenderer.invoke(callChannel(name), ...args) as Promise<CallResult>,
  (listener) => {
    // Wrap: the page must never see the IpcRendererEvent (it carries the sender).
    const handler = (_event: IpcRendererEvent, e: FinchEvent) => listener(e);
    ipcRenderer.on(EVENT_CHANNEL, handler);
    return () => { ipcRenderer.off(EVENT_CHANNEL, handler); };
  },
);

// contextBridge copies plain functions; makeApiClient's object holds only those.
contextBridge.exposeInMainWorld('api', { ...api });
