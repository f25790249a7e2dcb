// Browser mode's `window.api`: DesktopApi over the WebSocket of `finch serve`, speaking JSON-RPC 2.0
// (method = call name, params = the argument array; events arrive as notifications with method
// "event"). Built by makeApiClient like the Electron preload's, so pages cannot tell them apart.
//
//   const api = await connectApi(`ws://127.0.0.1:${port}/api?token=${token}`);
//
// Runs in the browser (global WebSocket) and in Node tests (pass the `ws` package's class).

import { makeApiClient, type ApiError, type CallName, type CallResult, type DesktopApi, type FinchEvent } from './api.js';

/** JSON-RPC error codes the server uses (besides the standard -32700/-32600/-32601/-32602). */
export const RPC_APP_ERROR = -32000;

interface RpcError { code: number; message: string; data?: ApiError }
type RpcMessage = { jsonrpc: '2.0'; id: number; result?: unknown; error?: RpcError } | { jsonrpc: '2.0'; method: 'event'; params: [FinchEvent] };

/** The minimal WebSocket surface used (the browser's and the `ws` package's both have it). */
interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: (e: unknown) => void): void;
  addEventListener(type: 'message', listener: (e: { data: unknown }) => void): void;
}
type SocketClass = new (url: string) => SocketLike;

export interface ApiConnection extends DesktopApi {
  /** Closes the socket; pending calls fail with code 'internal' ("connection closed"). */
  close(): void;
}

export function connectApi(url: string, Socket: SocketClass = (globalThis as unknown as { WebSocket: SocketClass }).WebSocket): Promise<ApiConnection> {
  const ws = new Socket(url);
  const pending = new Map<number, (r: CallResult) => void>();
  const listeners = new Set<(e: FinchEvent) => void>();
  let nextId = 1;
  const closedResult = (why: string): CallResult => ({ ok: false, error: { code: 'internal', message: `the connection to Finch closed (${why})`, hint: 'reload the page; if Finch stopped, start it again with: npx finch serve' } });

  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(String(ev.data)) as RpcMessage;
    if ('method' in msg) {
      for (const l of listeners) l(msg.params[0]);
      return;
    }
    const done = pending.get(msg.id);
    if (!done) return;
    pending.delete(msg.id);
    if (msg.error) {
      const e = msg.error;
      done({ ok: false, error: e.data ?? { code: e.code === -32601 ? 'unknown_call' : e.code === -32602 ? 'invalid_argument' : 'internal', message: e.message, hint: null } });
    } else {
      done({ ok: true, value: msg.result });
    }
  });
  ws.addEventListener('close', () => {
    for (const done of pending.values()) done(closedResult('socket closed'));
    pending.clear();
  });

  const call = (name: CallName, args: unknown[]): Promise<CallResult> => new Promise((resolve) => {
    if (ws.readyState !== 1) return resolve(closedResult('not open'));
    const id = nextId++;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: name, params: args }));
  });
  const api = makeApiClient(call, (listener) => {
    listeners.add(listener);
    return () => { listeners.delete(listener); };
  });
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(Object.assign(api, { close: () => ws.close(1000, 'client closed') })));
    ws.addEventListener('error', () => reject(new Error(`could not connect to ${url.replace(/token=[^&]+/, 'token=…')}`)));
  });
}
