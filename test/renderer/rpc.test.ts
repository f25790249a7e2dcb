// The browser-mode transport against a real WebSocket server (the `ws` package) speaking JSON-RPC
// as `finch serve` does: results, errors carrying the API's hint, event notifications, and
// recovery after the server drops the connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { createWsApi } from '../../src-renderer/src/lib/api/client.ts';
import { apiUrlFromPage, type SocketLike } from '../../src-renderer/src/lib/api/rpc.ts';
import type { FinchEvent } from '../../src-shared/api.ts';

test('WS client: calls, errors with hints, events, reconnect after a drop', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as AddressInfo).port;
  const seenUrls: string[] = [];
  wss.on('connection', (sock, req) => {
    seenUrls.push(req.url ?? '');
    sock.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { id: number; method: string; params: unknown[] };
      if (m.method === 'listRuns') sock.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: [] }));
      else if (m.method === 'runDetails') {
        sock.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'no run r9', data: { code: 'not_found', message: 'no run "r9"', hint: 'pick a run from the list' } } }));
      } else if (m.method === 'pauseRun') {
        sock.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'pauseRun: argument 0: expected string' } }));
      } else if (m.method === 'cancelRun') {
        sock.terminate(); // the server goes away mid-call
      } else if (m.method === 'appInfo') {
        sock.send(JSON.stringify({ jsonrpc: '2.0', method: 'event', params: [{ type: 'library-changed', what: 'runs' }] }));
        sock.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { version: 'x' } }));
      }
    });
  });

  const url = apiUrlFromPage({ protocol: 'http:', host: `127.0.0.1:${port}`, search: '?token=s3cret', hash: '#/run/1' });
  assert.equal(url, `ws://127.0.0.1:${port}/api?token=s3cret`);
  const { api, rpc } = createWsApi(url, (u) => new WebSocket(u) as unknown as SocketLike);
  const events: FinchEvent[] = [];
  api.onEvent((e) => events.push(e));
  try {
    assert.deepEqual(await api.listRuns(), []);
    assert.equal(seenUrls[0], '/api?token=s3cret');

    await assert.rejects(api.runDetails('r9'), (e: { message: string; code: string; hint: string }) =>
      e.message === 'no run "r9"' && e.code === 'not_found' && e.hint === 'pick a run from the list');
    await assert.rejects(api.pauseRun('x'), (e: { code: string; message: string }) => e.code === 'invalid_argument' && /argument 0/.test(e.message));

    assert.equal((await api.appInfo()).version, 'x');
    assert.deepEqual(events, [{ type: 'library-changed', what: 'runs' }]);

    await assert.rejects(api.cancelRun('r1'), (e: { hint: string }) => /reconnects/.test(e.hint));
    // The client reconnects by itself; the next call is answered on the new socket.
    assert.deepEqual(await api.listRuns(), []);
    assert.equal(seenUrls.length, 2);
  } finally {
    rpc.close();
    await new Promise((r) => wss.close(r));
  }
});
