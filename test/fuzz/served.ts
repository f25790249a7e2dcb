// The runner of the fuzz corpus's API cases (corpus.ts ApiCase) against a running `finch serve`
// (server.child.ts): every case gets its expected, non-internal answer within CASE_MS; meanwhile a
// second client calls listModels every BYSTANDER_EVERY_MS and each answer's latency is measured,
// and the server's resident memory is sampled every RSS_EVERY_MS (a watchdog kills it past
// RSS_KILL). At the end the server still answers, never logged an internal error, its peak memory
// stayed under RSS_BOUND and the other client never waited more than BYSTANDER_MAX_MS.
// serve.test.ts runs the corpus of bad files and calls, run-refusals.test.ts the runs that cannot work.
//
// The bounds hold on a fresh 2-core machine with room: the services start at ~200 MB and the
// corpus adds ~100 MB; the bugs it pins grew memory by 180-240 MB/s (20 MB in the first 100 ms)
// or blocked every client until the server was killed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import WebSocket from 'ws';
import { within } from '../helpers/wait.js';
import type { ApiCase, CaseContext, RpcAnswer } from './corpus.js';
import { mib, watchMemory } from './watch.js';

const CASE_MS = 10_000;
const RSS_EVERY_MS = 50;
const RSS_BOUND = 512 * 2 ** 20;
const RSS_KILL = 4 * 2 ** 30;
const BYSTANDER_EVERY_MS = 100;
const BYSTANDER_MAX_MS = 3_000;
/** How long the server has to close on SIGTERM before it is killed (one blocked on a read cannot run its handler). */
const STOP_MS = 10_000;

const CHILD = fileURLToPath(new URL('./server.child.ts', import.meta.url));

interface Served { child: ChildProcess; port: number; token: string; pid: number; stderr: () => string; exited: () => string | null }

async function serve(home: string): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, FINCH_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let exited: string | null = null;
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  child.on('exit', (code, signal) => { exited = `exit code ${code}, signal ${signal}`; });
  const first = await within(new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
  }), 60_000, `the fuzz server to listen (stderr: ${stderr.slice(-500)})`);
  const { port, token, pid } = JSON.parse(first) as { port: number; token: string; pid: number };
  return { child, port, token, pid, stderr: () => stderr, exited: () => exited };
}

/** Ends the server: SIGTERM, then SIGKILL if it has not exited within STOP_MS. */
async function stop(s: Served): Promise<void> {
  if (s.exited()) return;
  const gone = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
  s.child.kill('SIGTERM');
  await within(gone, STOP_MS, 'the fuzz server to exit on SIGTERM').catch(() => {
    s.child.kill('SIGKILL');
    return gone;
  });
}

/** A JSON-RPC client on one socket: calls by id, raw messages answered by the next reply. */
class Client {
  private next = 1;
  private readonly waiting = new Map<unknown, (a: RpcAnswer) => void>();
  private raw: ((a: RpcAnswer) => void) | null = null;
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as RpcAnswer & { method?: string };
      if (m.method === 'event') return;
      const done = this.waiting.get(m.id);
      if (done) {
        this.waiting.delete(m.id);
        done(m);
      } else if (this.raw) {
        const r = this.raw;
        this.raw = null;
        r(m);
      }
    });
  }

  static async open(s: Served): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/api?token=${s.token}`);
    await within(new Promise((ok, fail) => { ws.once('open', ok); ws.once('error', fail); }), 30_000, 'a WebSocket to the fuzz server to open');
    return new Client(ws);
  }

  call(method: string, params: unknown[]): Promise<RpcAnswer> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** A message whose id is not one of ours (or invalid): the next answer not waited for by id is its reply. */
  send(message: unknown): Promise<RpcAnswer> {
    return new Promise((resolve) => {
      this.raw = resolve;
      this.ws.send(JSON.stringify(message));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Another user of the same server: one listModels call every BYSTANDER_EVERY_MS, each answer's latency recorded. */
function bystander(client: Client) {
  const latencies: number[] = [];
  let running = true, inFlight = 0;
  const loop = (async () => {
    while (running) {
      inFlight = performance.now();
      const a = await client.call('listModels', []);
      latencies.push(performance.now() - inFlight);
      inFlight = 0;
      assert.ok(Array.isArray(a.result), `the bystander's listModels failed: ${JSON.stringify(a.error)}`);
      await new Promise((r) => setTimeout(r, BYSTANDER_EVERY_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      // A call still waiting counts with the time it has waited so far.
      const waiting = inFlight ? performance.now() - inFlight : 0;
      await within(loop, CASE_MS, 'the bystander\'s last listModels call to be answered').catch(() => {});
      if (waiting) latencies.push(waiting);
      const sorted = [...latencies].sort((a, b) => a - b);
      const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
      return { calls: latencies.length, p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? 0 };
    },
  };
}

/** Checks one answer against a case's expectation; no answer may be 'internal'. */
function checkAnswer(c: ApiCase, a: RpcAnswer): void {
  const e = c.expect;
  if ('ok' in e) {
    assert.ok(!a.error, `expected a result, got ${JSON.stringify(a.error)}`);
    e.ok(a.result);
  } else if ('rpc' in e) {
    assert.equal(a.error?.code, e.rpc, JSON.stringify(a));
    if (e.message) assert.match(a.error!.message, e.message);
  } else {
    const got = a.error?.data?.code ?? (a.error ? `rpc ${a.error.code}` : 'ok');
    assert.ok(got === e.code || (e.or as string[] | undefined)?.includes(got), `expected ${e.code}, got ${got}: ${JSON.stringify(a.error ?? a.result).slice(0, 400)}`);
    if (got === e.code) {
      if (e.message) assert.match(a.error!.message, e.message);
      if (e.hint) assert.match(a.error!.data?.hint ?? '(no hint)', e.hint);
      if (e.field) assert.equal(a.error!.data?.field, e.field, `the field at fault: ${JSON.stringify(a.error)}`);
    }
  }
  assert.notEqual(a.error?.data?.code, 'internal', `an internal error: ${a.error?.message}`);
}

export interface CorpusRun {
  /** What the summary line calls the cases ("fuzz corpus"). */
  label: string;
  cases: readonly ApiCase[];
  /** The folder of the corpus's files (bad-files.ts): it holds good-model and good.jsonl at least. */
  root: string;
  /** The server's FINCH_HOME (a fresh folder). */
  home: string;
}

/**
 * Starts a server on `home`, adds root/good-model and root/good.jsonl (ids.model, ids.dataset),
 * runs each case as a subtest of `t` on a socket of its own, then checks the server: still up and
 * answering, under its memory bound, no internal error logged, the bystander answered in time.
 * Prints one summary line with the numbers.
 */
export async function runCorpus(t: TestContext, o: CorpusRun): Promise<void> {
  const server = await serve(o.home);
  const memory = watchMemory(server.pid, RSS_EVERY_MS, RSS_KILL);
  const main = await Client.open(server);
  const other = bystander(await Client.open(server));
  const ids: Record<string, string> = {};
  const timings: { name: string; ms: number }[] = [];
  try {
    const model = await main.call('addLocalModel', [{ path: join(o.root, 'good-model') }]);
    const data = await main.call('addDataset', [{ path: join(o.root, 'good.jsonl'), map: { prompt: 'query', completion: 'response' } }]);
    assert.ok(model.result && data.result, `setup: ${JSON.stringify(model.error ?? data.error)}`);
    ids.model = (model.result as { id: string }).id;
    ids.dataset = (data.result as { id: string }).id;

    for (const c of o.cases) {
      await t.test(c.name, async () => {
        const socket = await Client.open(server); // a case's own socket: a stuck answer cannot shift another case's
        const ctx: CaseContext = {
          at: (p) => join(o.root, p), call: (m, p) => socket.call(m, p), send: (m) => socket.send(m), ids, home: o.home, stderr: server.stderr,
        };
        try {
          const t0 = performance.now();
          await within(c.before?.(ctx) ?? Promise.resolve(), CASE_MS, `the setup of "${c.name}"`);
          const call = c.call(ctx);
          const one = () => ('raw' in call ? socket.send(call.raw) : socket.call(call.method, call.params));
          const answers = await within(Promise.all(Array.from({ length: c.parallel ?? 1 }, one)), c.limitMs ?? CASE_MS, `the answer to "${c.name}"`);
          timings.push({ name: c.name, ms: performance.now() - t0 });
          for (const a of answers) checkAnswer(c, a);
          await within(c.after?.(ctx) ?? Promise.resolve(), CASE_MS, `the checks after "${c.name}"`);
        } finally {
          socket.close();
        }
      });
    }

    const last = await within(main.call('appInfo', []), CASE_MS, 'a last call once the cases are through');
    assert.ok(last.result, 'the server still answers');
  } finally {
    const calls = await other.stop();
    memory.stop();
    const rss = memory.result();
    main.close();
    const died = server.exited();
    await stop(server);
    const slowest = timings.sort((a, b) => b.ms - a.ms)[0];
    console.log(`# ${o.label}: ${o.cases.length} cases; server RSS ${mib(rss.start)} at start, peak ${mib(rss.peak)} (bound ${mib(RSS_BOUND)}, ${rss.samples} samples); ` +
      `bystander: ${calls.calls} listModels calls, p50 ${calls.p50.toFixed(0)} ms, p99 ${calls.p99.toFixed(0)} ms, max ${calls.max.toFixed(0)} ms (bound ${BYSTANDER_MAX_MS} ms); ` +
      `slowest case ${slowest?.ms.toFixed(0)} ms (${slowest?.name})`);
    assert.equal(died, null, `the server died during the cases: ${died}; stderr: ${server.stderr().slice(-2000)}`);
    assert.ok(!rss.killed && rss.peak <= RSS_BOUND, `the server's memory peaked at ${mib(rss.peak)}, over the ${mib(RSS_BOUND)} bound`);
    assert.ok(calls.max <= BYSTANDER_MAX_MS, `another client waited ${calls.max.toFixed(0)} ms for listModels (bound ${BYSTANDER_MAX_MS} ms)`);
    assert.doesNotMatch(server.stderr(), /internal error/, 'the server logged an internal error');
  }
}
