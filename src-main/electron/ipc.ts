// DesktopApi over Electron IPC, main-process side. One handler per call of the contract's table
// (src-shared/api.ts API_CALLS), each refusing any sender but the top frame of Finch's own window
// showing one of Finch's own pages, then handing the raw arguments to the back end's one
// validating dispatcher: it parses them against the call's schema and answers a CallResult
// envelope ({ok, value} or {ok: false, error: {code, message, hint}}), which the preload unwraps.
// Events go the other way on one channel.

import { ipcMain, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { API_CALLS, EVENT_CHANNEL, callChannel, type CallResult } from '../../src-shared/api.js';
import type { Dispatcher } from '../services/dispatch.js';

export interface IpcOptions {
  dispatcher: Dispatcher;
  /** The web contents of Finch's window, or null while it has none. */
  appContents: () => WebContents | null;
  /** Whether a URL is one of Finch's own pages. */
  isAppUrl: (url: string) => boolean;
}

/**
 * Why a message must be refused, or null when it comes from the top frame of Finch's window on
 * one of Finch's pages. A frame that navigated away or was destroyed mid-call has no senderFrame.
 */
export function senderRefusal(event: IpcMainInvokeEvent, o: Pick<IpcOptions, 'appContents' | 'isAppUrl'>): string | null {
  const contents = o.appContents();
  if (contents === null || event.sender !== contents) return 'a web contents that is not Finch\'s window';
  const frame = event.senderFrame;
  if (!frame) return 'a frame that is gone';
  if (frame.parent !== null) return `a subframe (${frame.url})`;
  if (!o.isAppUrl(frame.url)) return `a page that is not Finch's (${frame.url})`;
  return null;
}

/** Registers every call; returns a function that removes them (tests, and a second window). */
export function registerIpc(o: IpcOptions): () => void {
  for (const name of API_CALLS) {
    ipcMain.handle(callChannel(name), async (event: IpcMainInvokeEvent, ...args: unknown[]): Promise<CallResult> => {
      const refusal = senderRefusal(event, o);
      if (refusal !== null) {
        console.warn(`finch: refused ${name} from ${refusal}`);
        // A thrown error reaches only the offending frame; no envelope, nothing about Finch's state.
        throw new Error(`${name} refused`);
      }
      return o.dispatcher.dispatch(name, args);
    });
  }
  return () => {
    for (const name of API_CALLS) ipcMain.removeHandler(callChannel(name));
  };
}

/**
 * Forwards every back-end event to Finch's window as it is now (the window may be re-created on
 * macOS); the preload's onEvent delivers it. Returns the unsubscribe function.
 */
export function forwardEvents(o: Pick<IpcOptions, 'dispatcher' | 'appContents'>): () => void {
  return o.dispatcher.events.subscribe((e) => {
    const to = o.appContents();
    if (to !== null && !to.isDestroyed()) to.send(EVENT_CHANNEL, e);
  });
}
