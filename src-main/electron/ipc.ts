// IPC wiring of DesktopApi in the main process: one handler per call of src-shared's table, each
// refusing messages that do not come from Finch's own pages, and all of them handing (name, args)
// to the one dispatcher (src-main/services/dispatch.ts), which validates the arguments and answers
// a CallResult envelope (errors as data, so the page gets code/message/hint, not Electron's
// "Error invoking remote method" wrapper). Events go to every app window on one channel.

import { ipcMain, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { API_CALLS, EVENT_CHANNEL, callChannel, type CallResult } from '../../src-shared/api.js';
import type { Dispatcher } from '../services/dispatch.js';

/** Registers every call; `isAppUrl` says whether a frame URL is one of Finch's pages. */
export function registerIpc(dispatcher: Dispatcher, isAppUrl: (url: string) => boolean): void {
  for (const name of API_CALLS) {
    ipcMain.handle(callChannel(name), (event: IpcMainInvokeEvent, ...args: unknown[]): Promise<CallResult> | CallResult => {
      const url = event.senderFrame?.url ?? '';
      if (!isAppUrl(url)) return { ok: false, error: { code: 'unknown_call', message: `refused ${name} from ${url || 'an unknown frame'}`, hint: null } };
      return dispatcher.dispatch(name, args);
    });
  }
}

/** Forwards every event to a window (the preload's onEvent delivers it); returns the unsubscribe. */
export function forwardEvents(dispatcher: Dispatcher, to: WebContents): () => void {
  const off = dispatcher.events.subscribe((e) => {
    if (!to.isDestroyed()) to.send(EVENT_CHANNEL, e);
  });
  to.once('destroyed', off);
  return off;
}
