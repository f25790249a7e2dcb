// ONNX Runtime sessions on a worker thread. `session.run` blocks the thread it runs on for its
// whole duration (docs/ort-notes.md), so a caller that must stay responsive (the CLI's progress bar,
// the server's WebSocket, Electron's main process) hosts its sessions here and awaits results:
//
//   const host = await SessionHost.start();
//   const s = await host.createSession(serializeModel(g), { threads: 2 });
//   const out = await s.run({ x: { dtype: 'float32', dims: [2, 3], data } });
//   await host.close();
//
// Tensors cross the thread boundary by structured clone. Outputs are always *transferred* (the
// worker has no further use for them); inputs are copied unless the caller opts into transfer,
// which detaches the caller's arrays (fast, but the caller must not read them afterwards).
//
// This one file is both sides: loaded on a worker thread with the host marker in workerData,
// it serves requests; anywhere else it only exports the client classes (and never loads ORT).

import { isMainThread, parentPort, Worker, workerData, type MessagePort, type Transferable } from 'node:worker_threads';
import type { SerializedModel } from '../onnx/writer.js';
import type { HostTensor, Provider, Session, SessionOptions } from './session.js';

/** A model file path, or bytes plus their external data (serializeModel's result). */
export type ModelSource = string | SerializedModel;
export type Feeds = Record<string, HostTensor>;
export type Outputs = Record<string, HostTensor>;

export interface TransferOptions {
  /**
   * Move the caller's array buffers to the worker instead of copying them (typed arrays that
   * span their whole buffer only; others are copied). The caller's arrays are then detached.
   */
  transfer?: boolean;
}

const HOST_MARKER = 'finch.sessionHost';

// ---- the wire protocol (plain objects: structured clone) -------------------------------------

type Request =
  | { id: number; op: 'create'; model: ModelSource; options: SessionOptions }
  | { id: number; op: 'run'; session: number; feeds: Feeds; fetches: string[] | undefined }
  | { id: number; op: 'release'; session: number }
  | { id: number; op: 'close' };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface SessionInfo { session: number; inputNames: string[]; outputNames: string[]; provider: Provider }

interface WireError { name: string; message: string; stack: string | undefined }

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

/** Buffers that may be moved: whole, non-shared ArrayBuffers (a view into a shared slab is copied). */
function transferablesOf(arrays: Iterable<ArrayBufferView>): Transferable[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    const b = a.buffer;
    if (b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength && b.byteLength > 0) out.add(b);
  }
  return [...out];
}

function tensorArrays(tensors: Record<string, HostTensor>): ArrayBufferView[] {
  return Object.values(tensors).map((t) => t.data);
}

function modelArrays(m: ModelSource): ArrayBufferView[] {
  return typeof m === 'string' ? [] : [m.bytes, ...m.externalData.map((e) => e.data)];
}

/** postMessage with a transfer list, falling back to a copy if some buffer refuses to move. */
function post(port: MessagePort | Worker, msg: unknown, transfer: Transferable[]): void {
  if (transfer.length === 0) return port.postMessage(msg);
  try {
    port.postMessage(msg, transfer);
  } catch (err) {
    if ((err as Error).name !== 'DataCloneError') throw err;
    port.postMessage(msg);
  }
}

// ---- arguments for running Finch's TypeScript in a fresh thread or process --------------------

const isTypeScript = (url: string) => /\.[cm]?ts$/.test(new URL(url).pathname);

/**
 * Node command-line arguments for a child *process* whose entry is `entry`: the tsx loader when
 * the entry is TypeScript (a development checkout), nothing for built JavaScript.
 */
export function nodeArgsFor(entry: URL | string): string[] {
  return isTypeScript(String(entry)) ? ['--import', import.meta.resolve('tsx')] : [];
}

/**
 * Starts a worker *thread* running the module `entry`. Node 20 does not apply an `--import`
 * loader from a worker's execArgv before loading its entry ("Unknown file extension .ts"), so a
 * TypeScript entry starts from a tiny bootstrap that registers tsx, then imports the entry.
 */
export function startWorker(entry: URL | string, options: { workerData?: unknown; name?: string } = {}): Worker {
  const url = String(entry);
  if (!isTypeScript(url)) return new Worker(new URL(url), { ...options, execArgv: [] });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(boot, { ...options, eval: true, execArgv: [] });
}

// ---- caller side ------------------------------------------------------------------------------

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void }

function rebuildError(e: WireError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  // Keep both stacks: where the caller awaited, and where it failed in the worker.
  if (e.stack) err.stack = `${err.stack}\n    --- in the session worker ---\n${e.stack}`;
  return err;
}

/** A worker thread that owns ONNX Runtime sessions. */
export class SessionHost {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;
  private closing = false;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(rebuildError(r.error));
    });
    worker.on('error', (err) => this.fail(err instanceof Error ? err : new Error(String(err))));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`the session worker exited unexpectedly (exit code ${code})`));
    });
  }

  /** Starts the worker and waits until it can take requests. */
  static async start(options: { name?: string } = {}): Promise<SessionHost> {
    const worker = startWorker(import.meta.url, { workerData: { [HOST_MARKER]: true }, name: options.name ?? 'finch-session-host' });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if ((m as { ready?: boolean }).ready) {
          worker.off('error', onError);
          resolve();
        }
      };
      const onError = (err: Error) => reject(new Error(`the session worker failed to start: ${err.message}`, { cause: err }));
      worker.once('message', onMessage);
      worker.once('error', onError);
    });
    return new SessionHost(worker);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** @internal Sends one request; resolves with the worker's reply value. */
  call<T>(req: DistributiveOmit<Request, 'id'>, transfer: Transferable[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing && req.op !== 'close') return Promise.reject(new Error('the session host is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      post(this.worker, { ...req, id }, transfer);
    });
  }

  /** Creates a session in the worker (see Session.create for the options). */
  async createSession(model: ModelSource, options: SessionOptions = {}, t: TransferOptions = {}): Promise<RemoteSession> {
    const info = await this.call<SessionInfo>({ op: 'create', model, options }, t.transfer ? transferablesOf(modelArrays(model)) : []);
    return new RemoteSession(this, info);
  }

  /**
   * Lets requests already sent finish, releases every session (ORT's native memory goes now, not
   * at some later garbage collection), and stops the worker. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.failure) await this.call<void>({ op: 'close' }).catch(() => undefined);
    this.fail(new Error('the session host was closed'));
    await this.worker.terminate();
  }
}

/** A session living in a SessionHost's worker; its methods mirror Session's. */
export class RemoteSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly provider: Provider;
  private readonly id: number;

  constructor(private readonly host: SessionHost, info: SessionInfo) {
    this.id = info.session;
    this.inputNames = info.inputNames;
    this.outputNames = info.outputNames;
    this.provider = info.provider;
  }

  run(feeds: Feeds, fetches?: string[], t: TransferOptions = {}): Promise<Outputs> {
    return this.host.call<Outputs>({ op: 'run', session: this.id, feeds, fetches }, t.transfer ? transferablesOf(tensorArrays(feeds)) : []);
  }

  release(): Promise<void> {
    return this.host.call<void>({ op: 'release', session: this.id });
  }
}

// ---- worker side ------------------------------------------------------------------------------

async function serve(port: MessagePort): Promise<void> {
  // Loaded here, not at the top: the caller's thread never needs onnxruntime-node for this file.
  const { Session } = await import('./session.js');
  const sessions = new Map<number, Session>();
  let nextSession = 1;

  const handle = async (req: Request): Promise<{ value: unknown; transfer: Transferable[] }> => {
    switch (req.op) {
      case 'create': {
        const s = await Session.create(req.model, req.options);
        const id = nextSession++;
        sessions.set(id, s);
        const info: SessionInfo = { session: id, inputNames: [...s.inputNames], outputNames: [...s.outputNames], provider: s.provider };
        return { value: info, transfer: [] };
      }
      case 'run': {
        const out = await sessionOf(req.session).run(req.feeds, req.fetches);
        return { value: out, transfer: transferablesOf(tensorArrays(out)) };
      }
      case 'release': {
        await sessionOf(req.session).release();
        sessions.delete(req.session);
        return { value: undefined, transfer: [] };
      }
      case 'close': {
        for (const s of sessions.values()) await s.release();
        sessions.clear();
        return { value: undefined, transfer: [] };
      }
      default:
        throw new Error(`session worker: unknown request ${JSON.stringify((req as { op?: unknown }).op)}`);
    }
  };

  const sessionOf = (id: number): Session => {
    const s = sessions.get(id);
    if (!s) throw new Error(`session worker: no session ${id} (released already?)`);
    return s;
  };

  port.on('message', (req: Request) => {
    handle(req).then(
      ({ value, transfer }) => post(port, { id: req.id, ok: true, value } satisfies Reply, transfer),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        port.postMessage({ id: req.id, ok: false, error: { name: e.name, message: e.message, stack: e.stack } } satisfies Reply);
      },
    );
  });
  port.postMessage({ ready: true });
}

if (!isMainThread && parentPort && (workerData as Record<string, unknown> | null)?.[HOST_MARKER] === true) {
  void serve(parentPort);
}
