// A JSON-RPC 2.0 client over one WebSocket: browser mode's transport for DesktopApi.
// Requests carry the call name as `method` and the argument array as `params`; the server pushes
// events as notifications with method "event". The socket reconnects after a drop (the server may
// restart); calls made while it is down wait for the next connection rather than failing at once.

import { ApiError } from './errors.ts';

/** The part of the WebSocket API the client uses (the browser's, or `ws` in Node tests). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
}
export type SocketFactory = (url: string) => SocketLike;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

const OPEN = 1;
const MAX_RETRY_MS = 5000;

export class RpcClient {
  private socket: SocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Requests written while the socket was not open; sent on the next 'open'. */
  private readonly queue: string[] = [];
  private retryMs = 250;
  private closed = false;
  private readonly listeners = new Set<(params: unknown) => void>();
  /** Connection state for the UI ('connecting' until the first open). */
  onStatus: (status: 'connecting' | 'open' | 'lost') => void = () => {};

  constructor(
    private readonly url: string,
    private readonly open: SocketFactory = (u) => new WebSocket(u) as unknown as SocketLike,
  ) {
    this.connect();
  }

  call(method: string, params: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new ApiError('closed', 'The connection to Finch was closed.', null));
    const id = this.nextId++;
    const text = JSON.stringify({ jsonrpc: '2.0', id, method, params });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.socket?.readyState === OPEN) this.socket.send(text);
      else this.queue.push(text);
    });
  }

  /** Every "event" notification's event; returns the unsubscribe function. */
  subscribe(listener: (params: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  close(): void {
    this.closed = true;
    this.socket?.close();
    this.failPending(new ApiError('closed', 'The connection to Finch was closed.', null));
  }

  private connect(): void {
    const ws = this.open(this.url);
    this.socket = ws;
    this.onStatus('connecting');
    ws.addEventListener('open', () => {
      this.retryMs = 250;
      this.onStatus('open');
      for (const text of this.queue.splice(0)) ws.send(text);
    });
    ws.addEventListener('message', (ev) => this.receive(String(ev.data)));
    ws.addEventListener('close', () => {
      if (this.socket !== ws) return;
      this.socket = null;
      // A request in flight when the socket dropped has no answer coming: fail it with a reason.
      this.failPending(new ApiError('disconnected', 'Lost the connection to Finch.', 'Is `finch serve` still running? The page reconnects by itself.'));
      if (this.closed) return;
      this.onStatus('lost');
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    });
    ws.addEventListener('error', () => { /* 'close' follows and handles it */ });
  }

  private receive(text: string): void {
    let msg: { id?: number | null; method?: string; params?: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } };
    try {
      msg = JSON.parse(text);
    } catch {
      return; // not JSON-RPC; nothing to route it to
    }
    if (msg.method === 'event') {
      // params is the argument array of the notification: [event].
      const event = Array.isArray(msg.params) ? msg.params[0] : msg.params;
      for (const l of this.listeners) l(event);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(ApiError.fromRpc(msg.error));
    else p.resolve(msg.result);
  }

  private failPending(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.queue.length = 0;
    for (const p of all) p.reject(err);
  }
}

/** The API socket's URL for this page: same origin, path /api, the launch token from the page URL. */
export function apiUrlFromPage(loc: { protocol: string; host: string; search: string; hash: string }): string {
  const token = new URLSearchParams(loc.search).get('token') ?? new URLSearchParams(loc.hash.split('?')[1] ?? '').get('token');
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/api${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}
