// The renderer's only door to Finch: exposes `window.api` (DesktopApi) over IPC. It runs in a
// sandboxed preload, so it may import only 'electron' (bundled to CommonJS by
// scripts/build-electron.mjs, with src-shared inlined) and hands the page plain functions.

import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { API_EVENTS, callChannel, type ApiCalls, type DesktopApi, type RunEvent } from '../../src-shared/api.js';

const invoke = <K extends keyof ApiCalls>(name: K) =>
  ((...args: unknown[]) => ipcRenderer.invoke(callChannel(name), ...args)) as ApiCalls[K];

const api = {
  appInfo: invoke('appInfo'),
  listModels: invoke('listModels'),
  startRun: invoke('startRun'),
  stopRun: invoke('stopRun'),
  onRunEvent(listener: (e: RunEvent) => void): () => void {
    // Wrap: the page must never see the IpcRendererEvent (it carries the sender).
    const handler = (_event: IpcRendererEvent, e: RunEvent) => listener(e);
    ipcRenderer.on(API_EVENTS.onRunEvent, handler);
    return () => { ipcRenderer.off(API_EVENTS.onRunEvent, handler); };
  },
} satisfies DesktopApi;

contextBridge.exposeInMainWorld('api', api);
