// Which DesktopApi this page talks to: Electron's preload puts one on `window.api`; in browser mode
// (`finch serve`) there is none, and the WebSocket JSON-RPC client below stands in, built from the
// contract's call table by makeApiClient, so both transports look identical to the app.

import { makeApiClient, type CallName, type CallResult, type DesktopApi, type FinchEvent } from '../../../../src-shared/api.ts';
import { ApiError } from './errors.ts';
import { RpcClient, apiUrlFromPage, type SocketFactory } from './rpc.ts';

export function createWsApi(url: string, open?: SocketFactory): { api: DesktopApi; rpc: RpcClient } {
  const rpc = new RpcClient(url, open);
  const call = async (name: CallName, args: unknown[]): Promise<CallResult> => {
    try {
      return { ok: true, value: await rpc.call(name, args) };
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError('internal', String((e as Error)?.message ?? e), null);
      return { ok: false, error: err.toData() };
    }
  };
  const subscribe = (listener: (e: FinchEvent) => void) => rpc.subscribe((params) => listener(params as FinchEvent));
  return { api: makeApiClient(call, subscribe), rpc };
}

export interface Connection {
  api: DesktopApi;
  /** Browser mode's socket (null in Electron, where IPC has no connection to lose). */
  rpc: RpcClient | null;
}

export function connect(): Connection {
  const fromPreload = (window as Partial<Window>).api;
  if (fromPreload) return { api: fromPreload, rpc: null };
  return createWsApi(apiUrlFromPage(location));
}
