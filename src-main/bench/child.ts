// A benchmark side that stays loaded: a child process that loads its model once, then answers one
// request at a time over Node's IPC channel. Two of them (Finch and its peer) can then be timed in
// turn, A B A B..., so that both sides of each pair see the same machine load: on a shared machine
// only ratios measured that way mean something. Each side is its own process, so its peak RSS is
// its own (timing.ts benchEnv sets the same threads and BLAS environment for both).
//
//   parent: const c = await BenchChild.start<Ready, Req, Res>(entry, arg, env, 'Finch f32');
//           const r = await c.request({ op: 'run' }); ...; const last = await c.close();
//   child:  serveBenchRequests(ready, async (req) => ...result, () => ...final);

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../engine/runtime/worker.js';

/** How long a side may take to load its model, and to answer one request (a busy machine is slow). */
export const CHILD_LOAD_TIMEOUT_MS = 30 * 60_000;
export const CHILD_REQUEST_TIMEOUT_MS = 15 * 60_000;

type Reply = { ok: unknown } | { error: string };

/** The parent's handle on a loaded benchmark side. */
export class BenchChild<Ready, Req, Res> {
  private stderr = '';

  private constructor(private readonly child: ChildProcess, readonly name: string, readonly ready: Ready) {}

  /** Starts `entry` with `arg` (JSON in argv[2]) and waits for its first message: loaded. */
  static async start<Ready, Req, Res>(entry: URL, arg: unknown, env: NodeJS.ProcessEnv, name: string): Promise<BenchChild<Ready, Req, Res>> {
    const child = fork(fileURLToPath(entry), [JSON.stringify(arg)], { execArgv: nodeArgsFor(entry), env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-4000); });
    const ready = await nextReply(child, CHILD_LOAD_TIMEOUT_MS, `${name} to load its model`, () => stderr);
    const c = new BenchChild<Ready, Req, Res>(child, name, ready as Ready);
    child.stderr!.removeAllListeners('data').on('data', (s: string) => { c.stderr = (c.stderr + s).slice(-4000); });
    return c;
  }

  async request(req: Req): Promise<Res> {
    this.child.send(req as object);
    return nextReply(this.child, CHILD_REQUEST_TIMEOUT_MS, `${this.name} to answer ${JSON.stringify(req)}`, () => this.stderr) as Promise<Res>;
  }

  /** Asks the side to release its model and exit; returns its final message (peak RSS and the like). */
  async close<Final>(): Promise<Final> {
    const final = await this.request({ op: 'exit' } as Req) as unknown as Final;
    await new Promise<void>((done) => {
      if (this.child.exitCode !== null) return done();
      const t = setTimeout(() => { this.child.kill(); done(); }, 60_000); // released and answered: it only has to exit
      this.child.once('exit', () => { clearTimeout(t); done(); });
    });
    return final;
  }

  /** Ends the side without asking (after a failure elsewhere). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

/** The child's next message (its result), or a rejection naming what was awaited. */
function nextReply(child: ChildProcess, timeoutMs: number, what: string, stderr: () => string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const done = (f: () => void) => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit); f(); };
    const onMessage = (m: Reply) => done(() => ('error' in m ? reject(new Error(`${what}: ${m.error}`)) : resolve(m.ok)));
    const onExit = (code: number | null, signal: string | null) => done(() => reject(new Error(`waiting for ${what}: the process exited (${signal ?? `code ${code}`}): ${stderr().trim().split('\n').slice(-6).join('\n')}`)));
    const timer = setTimeout(() => done(() => { child.kill(); reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)); }), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * The child's side: sends `ready` (the model is loaded), then answers each request with
 * `handle(req)`; the request {op: 'exit'} is answered with `finish()` and ends the process.
 */
export function serveBenchRequests<Req extends { op: string }>(ready: unknown, handle: (req: Req) => Promise<unknown>, finish: () => Promise<unknown>): void {
  const send = (m: Reply) => new Promise<void>((done) => process.send!(m, () => done()));
  let queue = Promise.resolve();
  process.on('message', (req: Req) => {
    queue = queue.then(async () => {
      try {
        if (req.op === 'exit') {
          await send({ ok: await finish() });
          process.disconnect();
          return;
        }
        await send({ ok: await handle(req) });
      } catch (e) {
        await send({ error: (e as Error).stack ?? String(e) });
      }
    });
  });
  void send({ ok: ready });
}
