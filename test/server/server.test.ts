// Browser mode's server: 127.0.0.1 only, the launch token on every request and upgrade (401
// without), foreign Origin and Host refused, request bodies and oversized messages refused, the
// renderer build served with its CSP (assets authenticated by the cookie the tokened page sets),
// and JSON-RPC 2.0 errors: -32700, -32600, -32601, -32602 naming the field; params may be left out
// where every argument is optional.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { createDispatcher } from '../../src-main/services/dispatch.js';
import { EventBus } from '../../src-main/services/bus.js';
import { MAX_MESSAGE, startServer, type RunningServer } from '../../src-main/server/index.js';
import type { ApiCalls, FinchEvent } from '../../src-shared/api.js';
import { within } from '../helpers/wait.js';

const bus = new EventBus();
const services = new Proxy({} as ApiCalls, { get: (_t, name: string) => async (...args: unknown[]) => ({ called: name, args }) });
let srv: RunningServer;
let renderer: string;

before(async () => {
  renderer = mkdtempSync(join(tmpdir(), 'finch-renderer-'));
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>Finch</title><script type="module" src="./assets/app.js"></script>');
  mkdirSync(join(renderer, 'assets'));
  writeFileSync(join(renderer, 'assets', 'app.js'), 'console.log("finch")');
  writeFileSync(join(tmpdir(), 'finch-secret.txt'), 'secret');
  srv = await startServer({ dispatcher: createDispatcher(services, bus), rendererDir: renderer });
});
after(() => srv.close());

function get(path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path, method, headers: { host: `127.0.0.1:${srv.port}`, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a socket; resolves with it, or with the HTTP status the upgrade was refused with. */
function connect(path: string, headers: Record<string, string> = {}): Promise<WebSocket | number> {
  return within(new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}${path}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
    ws.once('error', () => {});
  }), 30_000, `the WebSocket upgrade of ${path} to open or be refused`);
}

function rpc(ws: WebSocket, msg: unknown): Promise<Record<string, unknown>> {
  return within(new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const m = JSON.parse(data.toString()) as Record<string, unknown>;
      if (m.method === 'event') return;
      ws.off('message', onMessage);
      resolve(m);
    };
    ws.on('message', onMessage);
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }), 30_000, `the answer to ${typeof msg === 'string' ? msg : JSON.stringify(msg)}`.slice(0, 300));
}

test('listens on 127.0.0.1 only', async () => {
  const addr = srv.server.address() as { address: string };
  assert.equal(addr.address, '127.0.0.1');
  const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
  if (external) {
    const refused = await new Promise<boolean>((resolve) => {
      const req = request({ host: external.address, port: srv.port, path: '/' }, () => resolve(false));
      req.on('error', () => resolve(true));
      req.end();
    });
    assert.ok(refused, `the server answered on ${external.address}`);
  }
});

test('HTTP: 401 without the token; the tokened page sets a cookie that authenticates its assets', async () => {
  assert.equal((await get('/')).status, 401);
  assert.equal((await get('/?token=wrong')).status, 401);
  assert.equal((await get('/assets/app.js')).status, 401);
  const page = await get(`/?token=${srv.token}`);
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>Finch<\/title>/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  const cookie = String(page.headers['set-cookie']).split(';')[0]!;
  assert.match(String(page.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
  const asset = await get('/assets/app.js', { cookie });
  assert.equal(asset.status, 200);
  assert.match(String(asset.headers['content-type']), /javascript/);
  assert.equal((await get('/assets/app.js', { cookie: 'finch_token=nope' })).status, 401);
});

test('HTTP: foreign Origin or Host, bodies, other methods and paths outside the build are refused', async () => {
  const t = `?token=${srv.token}`;
  assert.equal((await get(`/${t}`, { origin: 'http://evil.example' })).status, 403);
  assert.equal((await get(`/${t}`, { host: 'evil.example' })).status, 403, 'DNS rebinding: a foreign Host');
  assert.equal((await get(`/${t}`, { origin: srv.origin })).status, 200);
  assert.equal((await get(`/${t}`, { 'content-type': 'text/plain' }, 'POST', 'x'.repeat(100))).status, 405);
  assert.equal((await get(`/${t}`, { 'content-length': '5' }, 'GET', 'hello')).status, 413);
  assert.equal((await get(`/../finch-secret.txt${t}`)).status, 404);
  assert.equal((await get(`/%2e%2e/finch-secret.txt${t}`)).status, 404);
  assert.equal((await get(`/${'a'.repeat(9000)}${t}`)).status, 414);
});

test('WebSocket: 401 without the token, 403 from a foreign Origin, 404 off /api; the served origin connects', async () => {
  assert.equal(await connect('/api'), 401);
  assert.equal(await connect('/api?token=wrong'), 401);
  assert.equal(await connect(`/api?token=${srv.token}`, { origin: 'http://evil.example' }), 403);
  assert.equal(await connect(`/other?token=${srv.token}`), 404);
  const ws = await connect(`/api?token=${srv.token}`, { origin: srv.origin });
  assert.ok(ws instanceof WebSocket);
  ws.close();
});

test('JSON-RPC: results, -32700, -32600, -32601, -32602 naming the field, events as notifications', async () => {
  const ws = await connect(`/api?token=${srv.token}`) as WebSocket;
  assert.deepEqual(await rpc(ws, { jsonrpc: '2.0', id: 1, method: 'pauseRun', params: ['run-1'] }), { jsonrpc: '2.0', id: 1, result: { called: 'pauseRun', args: ['run-1'] } });
  assert.equal(((await rpc(ws, '{not json')).error as { code: number }).code, -32700);
  assert.equal(((await rpc(ws, { id: 2, method: 'listRuns' })).error as { code: number }).code, -32600);
  assert.equal(((await rpc(ws, [{ jsonrpc: '2.0', id: 3, method: 'listRuns' }])).error as { code: number }).code, -32600);
  const unknown = await rpc(ws, { jsonrpc: '2.0', id: 4, method: 'formatDisk', params: [] });
  assert.equal((unknown.error as { code: number }).code, -32601);
  assert.equal(unknown.id, 4);
  const bad = await rpc(ws, { jsonrpc: '2.0', id: 5, method: 'startDemo', params: [{ steps: 'many' }] });
  const err = bad.error as { code: number; message: string; data: { field: string } };
  assert.equal(err.code, -32602);
  assert.match(err.message, /0\.steps/);
  assert.equal(err.data.field, '0.steps');
  assert.equal(((await rpc(ws, { jsonrpc: '2.0', id: 6, method: 'listRuns', params: { a: 1 } })).error as { code: number }).code, -32602);
  // A call whose argument has only optional fields may leave params out: the argument is {}.
  assert.deepEqual(await rpc(ws, { jsonrpc: '2.0', id: 7, method: 'startDemo' }), { jsonrpc: '2.0', id: 7, result: { called: 'startDemo', args: [{}] } });
  assert.deepEqual(await rpc(ws, { jsonrpc: '2.0', id: 8, method: 'listComparisons', params: [] }), { jsonrpc: '2.0', id: 8, result: { called: 'listComparisons', args: [{}] } });
  assert.equal(((await rpc(ws, { jsonrpc: '2.0', id: 9, method: 'pauseRun' })).error as { code: number }).code, -32602, 'a required argument is still required');

  const got = within(new Promise<unknown>((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString())))), 30_000, 'the event on the socket');
  const e: FinchEvent = { type: 'library-changed', what: 'runs' };
  bus.emit(e);
  assert.deepEqual(await got, { jsonrpc: '2.0', method: 'event', params: [e] });
  ws.close();
});

test('JSON-RPC ids: an object, array or boolean id is -32600 and the call never runs; null is answered; no id is a notification', async () => {
  const calls: string[] = [];
  const counting = new Proxy({} as ApiCalls, { get: (_t, name: string) => async (...args: unknown[]) => { calls.push(name); return { called: name, args }; } });
  const own = await startServer({ dispatcher: createDispatcher(counting, bus), rendererDir: null });
  try {
    const ws = await new Promise<WebSocket>((resolve, reject) => {
      const w = new WebSocket(`ws://127.0.0.1:${own.port}/api?token=${own.token}`);
      w.once('open', () => resolve(w));
      w.once('error', reject);
    });
    for (const id of [{}, [1], true, false]) {
      const r = await rpc(ws, { jsonrpc: '2.0', id, method: 'pauseRun', params: ['run-1'] });
      assert.equal(r.id, null);
      assert.equal((r.error as { code: number }).code, -32600, JSON.stringify(id));
      assert.match((r.error as { message: string }).message, /"id" must be a string, a number or null, got (an array|object|boolean); the call did not run/);
    }
    assert.deepEqual(await rpc(ws, { jsonrpc: '2.0', id: null, method: 'listRuns', params: [] }), { jsonrpc: '2.0', id: null, result: { called: 'listRuns', args: [] } });
    assert.deepEqual(await rpc(ws, { jsonrpc: '2.0', id: 'a-string', method: 'listRuns' }), { jsonrpc: '2.0', id: 'a-string', result: { called: 'listRuns', args: [] } });
    // A notification runs and gets no answer: the next answer on the socket is the next call's.
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'pauseRun', params: ['run-2'] }));
    assert.equal((await rpc(ws, { jsonrpc: '2.0', id: 7, method: 'listRuns', params: [] })).id, 7);
    assert.deepEqual(calls, ['listRuns', 'listRuns', 'pauseRun', 'listRuns']);
    ws.close();
  } finally {
    await own.close();
  }
});

test('JSON-RPC: a weight cache id that is not a file name stem is refused before any service sees it', async () => {
  const ws = await connect(`/api?token=${srv.token}`) as WebSocket;
  let id = 10;
  for (const bad of ['../../finch.db', 'int4/abc', '', 'a'.repeat(201), 7]) {
    const r = await rpc(ws, { jsonrpc: '2.0', id: ++id, method: 'removeWeightCacheEntry', params: [bad] });
    const err = r.error as { code: number; message: string; data: { code: string; field: string } } | undefined;
    assert.equal(err?.code, -32602, `${JSON.stringify(bad)}: ${JSON.stringify(r)}`);
    assert.equal(err.data.code, 'invalid_argument');
    assert.equal(err.data.field, '0');
    assert.match(err.message, /^removeWeightCacheEntry: argument 0: /);
  }
  const named = await rpc(ws, { jsonrpc: '2.0', id: ++id, method: 'removeWeightCacheEntry', params: ['../x'] });
  assert.match((named.error as { message: string }).message, /a weight cache entry id from listWeightCache/);
  const ok = await rpc(ws, { jsonrpc: '2.0', id: ++id, method: 'removeWeightCacheEntry', params: ['0123456789abcdef0123456789abcdef'] });
  assert.deepEqual(ok.result, { called: 'removeWeightCacheEntry', args: ['0123456789abcdef0123456789abcdef'] });
  assert.equal(((await rpc(ws, { jsonrpc: '2.0', id: ++id, method: 'clearWeightCache', params: [true] })).error as { code: number }).code, -32602);
  ws.close();
});

test('WebSocket: a message over the size limit closes the socket (1009); the server keeps serving', async () => {
  const ws = await connect(`/api?token=${srv.token}`) as WebSocket;
  const closed = within(new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))), 30_000, 'the server to close the socket');
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'listRuns', params: ['x'.repeat(MAX_MESSAGE)] }));
  assert.equal(await closed, 1009);
  const again = await connect(`/api?token=${srv.token}`) as WebSocket;
  assert.equal((await rpc(again, { jsonrpc: '2.0', id: 1, method: 'listRuns', params: [] })).id, 1);
  again.close();
});
