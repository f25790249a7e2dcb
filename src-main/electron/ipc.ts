// IPC wiring of DesktopApi in the main process: one handler per call in src-shared's table, each
// refusing messages that do not come from Finch's own pages. Argument validation belongs to the
// services (they validate with zod whatever transport called them: IPC or WebSocket).

import { ipcMain, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { API_CALLS, API_EVENTS, callChannel, type ApiCalls, type RunEvent } from '../../src-shared/api.js';

/** Registers every call; `isAppUrl` says whether a frame URL is one of Finch's pages. */
export function registerIpc(impl: ApiCalls, isAppUrl: (url: string) => boolean): void {
  for (const name of API_CALLS) {
    ipcMain.handle(callChannel(name), (event: IpcMainInvokeEvent, ...args: unknown[]) => {
      const url = event.senderFrame?.url ?? '';
      if (!isAppUrl(url)) throw new Error(`finch: refused ${name} from ${url || 'an unknown frame'}`);
      return (impl[name] as (...a: unknown[]) => unknown)(...args);
    });
  }
}

/** Pushes a run event to a window (the preload's onRunEvent delivers it). */
export function sendRunEvent(to: WebContents, e: RunEvent): void {
  if (!to.isDestroyed()) to.send(API_EVENTS.onRunEvent, e);
}
