// Where heavy work runs: every training run, the generation engine and every export (merged
// weights, GGUF, Ollama, Accelerate) live in their own process, so a native crash in ONNX Runtime
// ends only that job, and minutes of merging a large model never stall the API. The services see a
// job through this small interface only; `forkJob` (a Node child process running job-host.ts) is
// the default, and the desktop shell can pass Electron's utilityProcess instead.

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChatMessage, ChatWeights, EvalSample, ModelSide, Sampling } from '../../src-shared/api.js';
import type { MachineProviders } from '../engine/runtime/providers.js';
import { withTunedAllocator } from '../engine/runtime/allocator.js';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import type { TemplateChoice } from '../data/template.js';
import type { ColumnMap, FormatName } from '../data/formats.js';
import type { GgufDtype } from '../model/gguf/export.js';
import type { TrainConfig } from '../../src-shared/run-config.js';
import type { TrainEvent } from '../../src-shared/train-events.js';

export type JobKind = 'train' | 'generate' | 'export';

export interface JobHandle {
  /** The job's process id (for diagnostics and tests), when known. */
  readonly pid: number | undefined;
  send(msg: ToJob): void;
  onMessage(listener: (msg: FromJob) => void): void;
  /** Called once when the process ends, however it ends (signal: e.g. 'SIGKILL' after a native crash). */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(): void;
}

export type SpawnJob = (kind: JobKind, payload: TrainPayload | GeneratePayload | ExportPayload) => JobHandle;

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

/** One export, as services/index.ts resolved it (paths, the base model's name). */
export type ExportPayload =
  | { kind: 'merged'; model: string; adapter: string; out: string }
  | { kind: 'gguf'; model: string; adapter: string | null; loraOnly: boolean; dtype: GgufDtype; out: string; name: string }
  | { kind: 'ollama'; model: string; adapter: string | null; dtype: GgufDtype; outDir: string; separateAdapter?: boolean; modelName?: string; name: string }
  | { kind: 'accelerate'; runDir: string; outDir: string; gpus?: number };

/** What an export wrote: its folder (or file), the files in it, and the command that uses them, if one does. */
export interface ExportDone {
  path: string;
  files: string[];
  command: string | null;
}

/** One side's request inside a generation: its conversation and its adapter folder (null = base). */
export interface GenRow {
  side: 'left' | 'right';
  messages: ChatMessage[];
  adapterDir: string | null;
}

export type ToJob =
  | { op: 'start'; kind: JobKind; payload: TrainPayload | GeneratePayload | ExportPayload }
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
  /** `hint`: what to do, where the job's error knows it (TrainingError). */
  | { type: 'failed'; name: string; message: string; hint?: string | null }
  | { type: 'export-progress'; done: number; total: number }
  | { type: 'export-done'; result: ExportDone }
  | { type: 'delta'; id: string; side: 'left' | 'right'; text: string }
  /** The engine is quantizing the model's weights to 4 bits before answering (cold 4-bit cache). */
  | { type: 'gen-progress'; id: string; phase: 'quantizing'; done: number; total: number }
  | { type: 'gen-done'; id: string; side: 'left' | 'right'; text: string; tokens: number; finish: 'eos' | 'length' | 'stop' | 'stopped'; seconds: number; weights: ChatWeights }
  | { type: 'gen-failed'; id: string; name: string; message: string }
  | { type: 'batch-progress'; id: string; done: number; total: number }
  | { type: 'batch-done'; id: string; rows: { prompt: string; reference: string; left: string; right: string; leftCorrect: boolean; rightCorrect: boolean }[] }
  | { type: 'batch-failed'; id: string; name: string; message: string };

export type { ModelSide };

/**
 * A job host run as a Node child process (tsx-loaded in a checkout) speaking over IPC: `entry` is
 * the module it runs (job-host.ts, or a test's host that wraps it), `env` is added to this
 * process's environment for it. The one place a job process is forked.
 */
export function forkJobHost(entry: URL, env: Record<string, string> = {}): SpawnJob {
  return (kind, payload) => {
    const child = fork(fileURLToPath(entry), [], {
      execArgv: nodeArgsFor(entry),
      // A training job's activations are returned to the system on free (engine/runtime/allocator.ts).
      env: withTunedAllocator({ ...process.env, ...env }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
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
}

/** The default job host: job-host.ts in a Node child process. */
export const forkJob: SpawnJob = forkJobHost(new URL('./job-host.ts', import.meta.url));
