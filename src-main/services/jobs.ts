// Where heavy work runs: every training run and the generation engine live in their own process,
// so a native crash in ONNX Runtime ends only that job and the app keeps answering. The services
// see a job through this small interface only; `forkJob` (a Node child process running
// job-host.ts) is the default, and the desktop shell can pass Electron's utilityProcess instead.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChatMessage, EvalSample, ModelSide, Sampling } from '../../src-shared/api.js';
import type { MachineProviders } from '../engine/runtime/providers.js';
import { withTunedAllocator } from '../engine/runtime/allocator.js';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import type { TemplateChoice } from '../data/template.js';
import type { ColumnMap, FormatName } from '../data/formats.js';
import type { TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';

export type JobKind = 'train' | 'generate';

export interface JobHandle {
  /** The job's process id (for diagnostics and tests), when known. */
  readonly pid: number | undefined;
  send(msg: ToJob): void;
  onMessage(listener: (msg: FromJob) => void): void;
  /** Called once when the process ends, however it ends (signal: e.g. 'SIGKILL' after a native crash). */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(): void;
}

export type SpawnJob = (kind: JobKind, payload: TrainPayload | GeneratePayload) => JobHandle;

// ---- the protocol --------------------------------------------------------------------------------

export interface SamplePrompts {
  prompts: ChatMessage[][];
  references: string[];
  maxNewTokens: number;
}

export interface TrainPayload {
  config: TrainConfig;
  /** Held-out prompts the current adapter answers at each evaluation (null: none). */
  samples: SamplePrompts | null;
  /**
   * What the app probed on this machine (services/index.ts): the job decides its device from it, as
   * the app did, and spawns no adapter probe of its own (inside Electron it could not).
   */
  machine?: MachineProviders;
}

export type GeneratePayload = Record<string, never>;

/** One side's request inside a generation: its conversation and its adapter folder (null = base). */
export interface GenRow {
  side: 'left' | 'right';
  messages: ChatMessage[];
  adapterDir: string | null;
}

export type ToJob =
  | { op: 'start'; kind: JobKind; payload: TrainPayload | GeneratePayload }
  | { op: 'pause' } | { op: 'resume' } | { op: 'cancel' }
  | { op: 'generate'; id: string; modelPath: string; rows: GenRow[]; maxNewTokens: number; sampling: Sampling | null; template: TemplateChoice }
  | { op: 'stop'; id: string }
  | {
    op: 'batch'; id: string; modelPath: string; left: string | null; right: string | null;
    dataset: string; format?: FormatName; map?: ColumnMap; rows: number; maxNewTokens: number;
  }
  | { op: 'unload' };

export type FromJob =
  | { type: 'train'; event: TrainEvent }
  | { type: 'samples'; step: number; samples: EvalSample[] }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'finished' }
  | { type: 'failed'; name: string; message: string }
  | { type: 'delta'; id: string; side: 'left' | 'right'; text: string }
  | { type: 'gen-done'; id: string; side: 'left' | 'right'; text: string; tokens: number; finish: 'eos' | 'length' | 'stop' | 'stopped'; seconds: number }
  | { type: 'gen-failed'; id: string; name: string; message: string }
  | { type: 'batch-progress'; id: string; done: number; total: number }
  | { type: 'batch-done'; id: string; rows: { prompt: string; reference: string; left: string; right: string; leftCorrect: boolean; rightCorrect: boolean }[] }
  | { type: 'batch-failed'; id: string; name: string; message: string };

export type { ModelSide };

const HOST = new URL('./job-host.ts', import.meta.url);

/** The default job host: a Node child process (tsx-loaded in a checkout) speaking over IPC. */
export const forkJob: SpawnJob = (kind, payload) => {
  const entry = fileURLToPath(HOST);
  const child = fork(entry, [], {
    execArgv: nodeArgsFor(HOST),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
    env: withTunedAllocator(process.env), // a training job's activations are returned to the system on free (allocator.ts)
  });
  const handle: JobHandle = {
    pid: child.pid,
    send: (msg) => { if (child.connected) child.send(msg); },
    onMessage: (l) => { child.on('message', (m) => l(m as FromJob)); },
    onExit: (l) => { child.once('exit', (code, signal) => l(code, signal)); },
    kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); },
  };
  handle.send({ op: 'start', kind, payload });
  return handle;
};
