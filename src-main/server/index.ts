// Browser mode: the built renderer over HTTP and DesktopApi as JSON-RPC 2.0 over a WebSocket at
// /api, on 127.0.0.1 only, guarded by a per-launch token.
//
//   GET /?token=T            -> index.html, and an HttpOnly cookie carrying T for the page's assets
//   GET /assets/...          -> files of the renderer build (token by cookie or ?token=)
//   WS  /api?token=T         -> {"jsonrpc":"2.0","id":1,"method":"listRuns","params":[]}
//                               <- {"jsonrpc":"2.0","id":1,"result":[...]}
//                               <- {"jsonrpc":"2.0","method":"event","params":[FinchEvent]}
//
// Refused: a request or upgrade without the token (401); a Host other than the served address
// (403, against DNS rebinding); an Origin other than the served origin (403); request bodies
// (413: nothing here takes one); WebSocket messages over MAX_MESSAGE bytes (closed, 1009).

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApiError } from '../../src-shared/api.js';
import { contentSecurityPolicy } from '../../src-shared/csp.js';
import type { Dispatcher } from '../services/dispatch.js';

export const MAX_MESSAGE = 4 * 1024 * 1024;
const MAX_URL = 8 * 1024;
const COOKIE = 'finch_token';

/** JSON-RPC 2.0 error codes. */
export const RPC = { parse: -32700, invalidRequest: -32600, methodNotFound: -32601, invalidParams: -32602, app: -32000 } as const;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.woff': 'font/woff', '.map': 'application/json',
};

export interface ServerOptions {
  dispatcher: Dispatcher;
  /** 0 picks a free port. */
  port?: number;
  /** The renderer build (index.html and assets); null serves only the API. */
  rendererDir: string | null;
  /** Default: 32 random bytes, hex. */
  token?: string;
}

export interface RunningServer {
  server: Server;
  port: number;
  token: string;
  origin: string;
  /** The address to open in a browser (carries the token). */
  url: string;
  close(): Promise<void>;
}

/** Finch's one policy (src-shared/csp.ts), plus the API's WebSocket at this origin. */
export function serverCsp(origin: string): string {
  return contentSecurityPolicy({ connect: [origin.replace(/^http/, 'ws')] });
}

const sameToken = (a: string | null | undefined, token: string): boolean =>
  typeof a === 'string' && a.length === token.length && timingSafeEqual(Buffer.from(a), Buffer.from(token));

function cookieToken(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE && v) return decodeURIComponent(v);
  }
  return null;
}

/** Maps the dispatcher's ApiError to a JSON-RPC error object. */
export function rpcError(e: ApiError): { code: number; message: string; data: ApiError } {
  const code = e.code === 'invalid_argument' ? RPC.invalidParams : e.code === 'unknown_call' ? RPC.methodNotFound : RPC.app;
  return { code, message: e.message, data: e };
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const token = o.token ?? randomBytes(32).toString('hex');
  let origin = '';
  let hosts = new Set<string>();

  /** Loopback address, token, Host and Origin checks shared by HTTP requests and upgrades; null = allowed. */
  const refuse = (req: IncomingMessage, url: URL): [number, string] | null => {
    if ((req.url ?? '').length > MAX_URL) return [414, 'URL too long'];
    if (!hosts.has(req.headers.host ?? '')) return [403, 'unexpected Host header'];
    const from = req.headers.origin;
    if (from !== undefined && from !== origin) return [403, `requests from ${from} are refused`];
    if (!sameToken(url.searchParams.get('token'), token) && !sameToken(cookieToken(req), token)) {
      return [401, 'this Finch server needs its launch token: open the URL that `finch serve` printed'];
    }
    return null;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const denied = refuse(req, url);
    if (denied) return plain(res, denied[0], denied[1]);
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'only GET and HEAD here; the API is the WebSocket at /api');
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding']) return plain(res, 413, 'request bodies are not accepted');
    if (url.searchParams.has('token')) {
      // The page's own asset requests carry no query: they authenticate with this cookie.
      res.setHeader('Set-Cookie', `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
    }
    serveFile(o.rendererDir, url.pathname, res, origin, req.method === 'HEAD');
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const denied = url.pathname !== '/api' ? [404, 'the API is at /api'] as [number, string] : refuse(req, url);
    if (denied) {
      socket.end(`HTTP/1.1 ${denied[0]} ${denied[0] === 401 ? 'Unauthorized' : denied[0] === 403 ? 'Forbidden' : 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${denied[1]}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveApi(ws, o.dispatcher));
  });

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  return {
    server, port, token, origin, url: `${origin}/?token=${token}`,
    close: () => new Promise((ok) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close(() => ok());
      server.closeAllConnections();
    }),
  };
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(`${text}\n`);
}

function serveFile(root: string | null, pathname: string, res: ServerResponse, origin: string, headOnly: boolean): void {
  if (!root) return plain(res, 404, 'this server has no renderer build; the API is at /api');
  const base = resolve(root);
  let rel: string;
  try {
    rel = normalize(decodeURIComponent(pathname === '/' ? '/index.html' : pathname)).replace(/^[/\\]+/, '');
  } catch {
    return plain(res, 400, 'bad path');
  }
  const file = join(base, rel);
  if (!file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) return plain(res, 404, 'not found');
  const body = readFileSync(file);
  res.writeHead(200, {
    'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length,
    'Content-Security-Policy': serverCsp(origin), 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
    'Cache-Control': rel === 'index.html' ? 'no-cache' : 'max-age=3600',
  });
  res.end(headOnly ? undefined : body);
}

/** One socket: requests go to the dispatcher; every event goes out as a notification. */
function serveApi(ws: WebSocket, dispatcher: Dispatcher): void {
  const send = (msg: object) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg)); };
  const off = dispatcher.events.subscribe((e) => send({ jsonrpc: '2.0', method: 'event', params: [e] }));
  ws.on('close', off);
  // Oversized or malformed frames: ws closes the socket (1009/1002) and reports it here; the server goes on.
  ws.on('error', () => ws.terminate());
  ws.on('message', (data, isBinary) => {
    let msg: unknown;
    try {
      msg = JSON.parse(isBinary ? '' : data.toString());
    } catch {
      return send({ jsonrpc: '2.0', id: null, error: { code: RPC.parse, message: 'parse error: messages are JSON-RPC 2.0 text frames' } });
    }
    const m = msg as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    const isObject = m !== null && typeof m === 'object' && !Array.isArray(m);
    // JSON-RPC 2.0: an id is a string, a number or null; without one the call is a notification (no answer).
    const hasId = isObject && Object.hasOwn(m, 'id');
    const idValid = !hasId || m.id === null || typeof m.id === 'string' || typeof m.id === 'number';
    const id = hasId && idValid ? (m.id as string | number | null) : null;
    if (!isObject || m.jsonrpc !== '2.0' || typeof m.method !== 'string' || !idValid) {
      const message = isObject && !idValid
        ? `invalid request: "id" must be a string, a number or null, got ${Array.isArray(m.id) ? 'an array' : typeof m.id}; the call did not run`
        : 'invalid request: expected {"jsonrpc":"2.0","id":N,"method":"<call>","params":[...]} (batches are not supported)';
      return send({ jsonrpc: '2.0', id, error: { code: RPC.invalidRequest, message } });
    }
    if (m.params !== undefined && !Array.isArray(m.params)) {
      return send({ jsonrpc: '2.0', id, error: { code: RPC.invalidParams, message: `${m.method}: params must be the array of the call's arguments` } });
    }
    void dispatcher.dispatch(m.method, m.params ?? []).then((r) => {
      if (!hasId) return; // a notification: no answer
      send(r.ok ? { jsonrpc: '2.0', id, result: r.value } : { jsonrpc: '2.0', id, error: rpcError(r.error) });
    });
  });
}
