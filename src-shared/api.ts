// The one contract between Finch's UI and its back end. The renderer only ever speaks DesktopApi:
// through the preload bridge in Electron (src-main/electron/preload.ts), and any other transport
// (a browser mode, say) is to be built from the same tables below, so a method added here and not
// implemented is a compile error, not a silent missing channel.
// Everything crossing it is plain data (structured-clone safe): no classes, no functions.

export type RunId = string;
/** ONNX Runtime execution providers Finch can run on: the one list (engine/runtime/session.ts's Provider is this type). */
export const PROVIDER_NAMES = ['cpu', 'webgpu', 'dml', 'cuda', 'coreml'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export interface AppInfo {
  version: string;
  platform: string;
  /** Execution providers this build of ONNX Runtime offers on this machine. */
  providers: ProviderName[];
}

export interface ModelSummary {
  id: string;
  name: string;
  /** The Hugging Face model folder. */
  path: string;
  modelType: string;
  parameters: number | null;
}

export interface RunConfig {
  modelId: string;
  datasetPath: string;
  method: 'lora' | 'qlora';
  provider: ProviderName;
  rank: number;
  alpha: number;
  learningRate: number;
  epochs: number;
}

/** What a running job reports; the main process stores these and forwards them to windows. */
export type RunEvent =
  | { type: 'started'; runId: RunId; totalSteps: number }
  | { type: 'step'; runId: RunId; step: number; totalSteps: number; loss: number; tokensPerSecond: number; etaSeconds: number | null }
  | { type: 'log'; runId: RunId; level: 'info' | 'warn'; message: string }
  | { type: 'finished'; runId: RunId; adapterPath: string }
  | { type: 'failed'; runId: RunId; message: string };

export interface DesktopApi {
  appInfo(): Promise<AppInfo>;
  listModels(): Promise<ModelSummary[]>;
  startRun(config: RunConfig): Promise<RunId>;
  stopRun(runId: RunId): Promise<void>;
  /** Subscribes to every run's events; returns the unsubscribe function. */
  onRunEvent(listener: (e: RunEvent) => void): () => void;
}

// ---- transport tables -------------------------------------------------------------------------

/** Request/response methods: everything but the `on...` subscriptions. */
export type ApiCalls = { [K in keyof DesktopApi as K extends `on${string}` ? never : K]: DesktopApi[K] };
export type CallName = keyof ApiCalls;

/** Every call, for transports to register; the check below fails to compile if one is missing. */
export const API_CALLS = ['appInfo', 'listModels', 'startRun', 'stopRun'] as const satisfies readonly CallName[];
type Missing = Exclude<CallName, (typeof API_CALLS)[number]>;
const allCallsListed: [Missing] extends [never] ? true : { missing: Missing } = true;
void allCallsListed;

/** Push channels: subscription method -> event channel name. */
export const API_EVENTS = { onRunEvent: 'finch:run-event' } as const satisfies Record<Exclude<keyof DesktopApi, CallName>, string>;

/** The IPC / WebSocket channel name of a call. */
export const callChannel = (name: CallName): string => `finch:${name}`;

declare global {
  // In the renderer, `window.api` is the preload's bridge (or the WebSocket client in browser mode).
  interface Window {
    api: DesktopApi;
  }
}
