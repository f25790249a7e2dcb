// The one contract between Finch's UI and its back end. The renderer only ever speaks DesktopApi:
// through the preload bridge in Electron (src-main/electron/) or over the WebSocket of browser mode
// (src-main/server/). Both transports are built from the tables at the end of this file, and every
// call's arguments are validated by the schemas in ./schemas.ts (the argument types below are
// inferred from them, so a type and its schema cannot drift apart).
// Everything crossing is plain data (structured-clone and JSON safe): no classes, no functions,
// no bigint, no typed arrays. Failures cross as ApiError data, never as a stack trace.
//
// Its only runtime import is the plain value lists of choices.ts: the sandboxed preload and the
// renderer can include it freely (the schemas, and zod, stay out of the preload).

import type { z } from 'zod';
import type { PROVIDER_NAMES } from './choices.js';
import type * as S from './schemas.js';
import type { RewardMetrics, TrainEvent, TrainEventOf, TrainPhase } from './train-events.js';

export { PROVIDER_NAMES } from './choices.js';

// ---- argument types (inferred from the schemas) ------------------------------------------------

/** ONNX Runtime execution providers Finch can run on (choices.ts PROVIDER_NAMES; the engine keeps the same list, checked by services/system.ts). */
export type ProviderName = (typeof PROVIDER_NAMES)[number];
export type ProviderChoice = z.infer<typeof S.ProviderChoice>;
export type FormatName = z.infer<typeof S.FormatName>;
export type ColumnMap = z.infer<typeof S.ColumnMap>;
export type LoraTarget = z.infer<typeof S.LoraTarget>;
export type ChatMessage = z.infer<typeof S.ChatMessage>;
export type LoraSettings = z.infer<typeof S.LoraSettings>;
export type RunConfig = z.infer<typeof S.RunConfig>;
export type ModelSide = z.infer<typeof S.ModelSide>;
export type Sampling = z.infer<typeof S.Sampling>;
export type GenerateRequest = z.infer<typeof S.GenerateRequest>;
export type BatchCompareRequest = z.infer<typeof S.BatchCompareRequest>;
export type SaveComparisonRequest = z.infer<typeof S.SaveComparisonRequest>;
export type AddLocalModelRequest = z.infer<typeof S.AddLocalModelRequest>;
export type DownloadModelRequest = z.infer<typeof S.DownloadModelRequest>;
export type RemoveRequest = z.infer<typeof S.RemoveRequest>;
export type AddDatasetRequest = z.infer<typeof S.AddDatasetRequest>;
export type HubDatasetRequest = z.infer<typeof S.HubDatasetRequest>;
export type DownloadDatasetRequest = z.infer<typeof S.DownloadDatasetRequest>;
export type PreviewRequest = z.infer<typeof S.PreviewRequest>;
export type ImportAdapterRequest = z.infer<typeof S.ImportAdapterRequest>;
export type ExportAdapterRequest = z.infer<typeof S.ExportAdapterRequest>;
export type ExportMergedRequest = z.infer<typeof S.ExportMergedRequest>;
export type ExportGgufRequest = z.infer<typeof S.ExportGgufRequest>;
export type ExportOllamaRequest = z.infer<typeof S.ExportOllamaRequest>;
export type ExportAccelerateRequest = z.infer<typeof S.ExportAccelerateRequest>;
export type PushRequest = z.infer<typeof S.PushRequest>;
export type Settings = z.infer<typeof S.Settings>;
export type PickPathRequest = z.infer<typeof S.PickPathRequest>;
export type StartDemoRequest = z.infer<(typeof S.CALL_ARGS)['startDemo']>[0];

export type Id = string;
export type RunId = string;

export const GREEDY_SAMPLING: Sampling = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };

// ---- errors ------------------------------------------------------------------------------------

export type ErrorCode =
  | 'invalid_argument' // a field failed its schema (`field` names it)
  | 'unknown_call'
  | 'not_found' // no model/dataset/run/... with that id, or a path that does not exist
  | 'conflict' // the call does not fit the current state (pause a finished run, a folder exists)
  | 'bad_model' // a model folder that cannot be used (names the file and field)
  | 'bad_dataset' // a dataset that cannot be read or converted (names the file and line)
  | 'bad_adapter'
  | 'hub' // a Hugging Face Hub failure (network, 404, unknown revision)
  | 'hub_auth' // 401/403: the hint says how to request access and where to put the token
  | 'disk_full'
  | 'job_failed' // a training or generation process crashed or threw
  | 'cancelled'
  | 'internal';

/** How every failure crosses a transport. */
export interface ApiError {
  code: ErrorCode;
  /** One sentence for a person: what went wrong, naming the file/line/field. */
  message: string;
  /** What to do about it, or null. */
  hint: string | null;
  /** For invalid_argument: the failing field as a path ("0.lora.rank"). */
  field?: string;
}

/** What the dispatcher answers: transports carry this envelope and clients unwrap it. */
export type CallResult<T = unknown> = { ok: true; value: T } | { ok: false; error: ApiError };

// ---- results -----------------------------------------------------------------------------------

export interface ProviderInfo {
  name: ProviderName;
  /** ONNX Runtime in this build offers it on this machine (WebGPU: and Dawn lists an adapter). */
  available: boolean;
  /** Why not, or what it runs on ("AMD Radeon RX 7900 XTX — WebGPU over Vulkan", "needs the CUDA provider libraries ..."). */
  note: string;
}

/** A WebGPU adapter as the app shows it: "<name> — WebGPU over <backend>". */
export interface WebGpuAdapterInfo {
  /** "AMD Radeon RX 7900 XTX", "Apple M2 Max". */
  name: string;
  /** The graphics API Dawn runs WebGPU over here. */
  backend: 'Vulkan' | 'D3D12' | 'Metal';
  vendor: string;
  architecture: string;
  /** A CPU implementation (lavapipe, SwiftShader, WARP): never picked by 'auto'. */
  software: boolean;
}

export interface AppInfo {
  version: string;
  platform: string;
  arch: string;
  cpus: number;
  /** Host memory in bytes. */
  totalMemory: number;
  freeMemory: number;
  providers: ProviderInfo[];
  /**
   * What provider 'auto' picks on this machine, and why: the decision `finch doctor` prints.
   * adapter: the WebGPU adapter when it picks WebGPU.
   */
  auto: { provider: ProviderName; reason: string; adapter: WebGpuAdapterInfo | null };
  /** Where runs, downloads and the database live. */
  finchHome: string;
  /** True in browser mode: file paths are typed, not picked in a dialog. */
  browserMode: boolean;
  /** A Hugging Face token is usable here (HF_TOKEN, or a saved one); the token itself never crosses. */
  hfTokenSet: boolean;
  /** How the saved token is kept (null: none saved); see HfTokenStorage. */
  hfTokenStorage: HfTokenStorage | null;
}

/**
 * How Finch keeps a saved Hugging Face token (never in the library database): 'encrypted' by the
 * system keychain (the desktop app, where it has one), or 'file': FINCH_HOME/secrets/hf-token,
 * readable only by the user. Only the desktop app can read an encrypted one.
 */
export type HfTokenStorage = 'encrypted' | 'file';

export interface SettingsView {
  /** A token is usable here: HF_TOKEN, or a saved one this process can read. */
  hfTokenSet: boolean;
  /** How the saved token is kept; null: none saved. */
  hfTokenStorage: HfTokenStorage | null;
  /** How a token saved now would be kept ('encrypted' only in the desktop app with a keychain). */
  hfTokenSaveAs: HfTokenStorage;
  /** HF_TOKEN is set in Finch's environment: it is used before a saved token. */
  hfTokenFromEnv: boolean;
  hfEndpoint: string | null;
  cacheDir: string | null;
  defaultProvider: ProviderChoice;
}

export type LibrarySource = 'local' | 'hub' | 'demo';

export interface ModelSummary {
  id: Id;
  name: string;
  /** The Hugging Face model folder. */
  path: string;
  source: LibrarySource;
  repo: string | null;
  revision: string | null;
  /** config.json's model_type as Finch reads it ('llama', 'qwen3', 'gemma3_text', ...; choices.ts familyName gives the family). */
  modelType: string;
  parameters: number;
  sizeBytes: number;
  /** The checkpoint's storage dtype ("bfloat16", "float16", "float32"). */
  dtype: string;
  hasChatTemplate: boolean;
  addedAt: string;
}

export interface ModelDetails extends ModelSummary {
  architecture: {
    hiddenSize: number;
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    intermediateSize: number;
    vocabSize: number;
    maxPositions: number;
    ropeTheta: number;
    tiedEmbeddings: boolean;
  };
  files: { name: string; bytes: number }[];
  /** Frozen-weight bytes in 4 bits (QLoRA) and in float32 (LoRA). */
  weightBytes4bit: number;
  weightBytes32bit: number;
}

export interface DatasetSummary {
  id: Id;
  name: string;
  path: string;
  source: LibrarySource;
  repo: string | null;
  /** The Hub split the file belongs to ("train", "test"), when known. */
  split: string | null;
  fileKind: string;
  sizeBytes: number;
  /** The detected (or chosen) format and column mapping, null when it needs a mapping. */
  format: FormatName | null;
  map: ColumnMap | null;
  addedAt: string;
}

export interface HubDatasetFile {
  path: string;
  size: number;
  format: 'parquet' | 'json' | 'jsonl' | 'csv' | 'tsv';
  split: string | null;
}

export interface TextSpan {
  text: string;
  /** Tokens the loss trains on; false for prompt/template tokens. */
  trained: boolean;
  /** Cut off by the sequence length. */
  truncated: boolean;
}

export interface DatasetPreview {
  file: string;
  fileKind: string;
  columns: string[];
  format: { name: FormatName; columns: ColumnMap; mapped: boolean } | null;
  /** Why no format could be resolved (naming the columns found), or null. */
  formatError: string | null;
  /** A likely mapping when the columns are not a known format. */
  suggestedMap: ColumnMap | null;
  template: 'model' | 'fallback' | null;
  notes: string[];
  rows: { line: number; raw: Record<string, unknown>; error: string | null }[];
  /**
   * The first convertible row rendered as training text (needs modelId); for a preference pair its
   * chosen side, and in `pair` the shared prompt and both answers, trained spans marked.
   */
  sample: { line: number; spans: TextSpan[]; tokens: number; trainedTokens: number; pair: { prompt: TextSpan[]; chosen: TextSpan[]; rejected: TextSpan[] } | null } | null;
  /** Token lengths of the first statsRows rows (needs modelId). */
  lengths: {
    rows: number;
    badRows: number;
    min: number;
    mean: number;
    p50: number;
    p95: number;
    max: number;
    /** Rows longer than seqLen (cut). */
    overSeqLen: number;
    histogram: { from: number; to: number; count: number }[];
  } | null;
  badRows: { line: number; message: string }[];
}

export interface MemoryEstimateResult {
  /** Peak host memory of a training step (bytes): the whole step on the CPU; on a GPU, what the host keeps beside it (ONNX Runtime's session, the LoRA state). */
  hostBytes: number;
  /** The breakdown of the figure the verdict turns on: the host's parts on the CPU, the GPU's on a GPU. */
  parts: Record<string, number>;
  /** GPU memory needed when the provider is a GPU (the graph the trainer would build there), else null. */
  gpuBytes: number | null;
  availableHostBytes: number;
  totalHostBytes: number;
  /** Free memory of the GPU the run would use, where the system tells it; null on the CPU or when unknown (gpuNote says why). */
  availableGpuBytes: number | null;
  totalGpuBytes: number | null;
  /** The GPU judged against, e.g. "NVIDIA GeForce RTX 4070"; null on the CPU or when unknown. */
  gpuName: string | null;
  /** Where the GPU's memory was read, or why it could not be; null on the CPU. */
  gpuNote: string | null;
  /** The GPU's memory is the host's (Apple silicon, a software WebGPU adapter): gpuBytes and hostBytes come out of availableHostBytes together. */
  unifiedMemory: boolean;
  /** The dtype the frozen weights would be computed in there (`auto` decided as the trainer decides it). */
  computeDtype: 'float32' | 'float16';
  /** 'unknown': a GPU run whose GPU memory could not be read (gpuNote). */
  verdict: 'fits' | 'tight' | 'will-not-fit' | 'unknown';
  provider: ProviderName;
  /**
   * What to change, most effective first; `change` can be applied to the config as is. `hostBytes`
   * and `gpuBytes` are the needs after the change (as above); the text ends with the one the verdict turns on.
   */
  suggestions: { text: string; change: Partial<RunConfig>; hostBytes: number; gpuBytes: number | null }[];
}

export type RunStatus = 'queued' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'interrupted';
export const RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', 'paused', 'completed', 'failed', 'cancelled', 'interrupted'];
/** Statuses a run can be resumed from (exactly, from its last checkpoint). */
export const RESUMABLE: readonly RunStatus[] = ['paused', 'failed', 'cancelled', 'interrupted'];
/**
 * A pause, resume or cancel asked of a run's job and not yet done: the job honours it at its next
 * boundary (between steps, tensors, batches, sessions; train/control.ts), and the app shows
 * "pausing…", "resuming…" or "cancelling…" meanwhile.
 */
export type RunRequest = 'pause' | 'resume' | 'cancel';

export interface RunSummary {
  id: RunId;
  name: string;
  kind: 'train' | 'demo';
  /** 'cli': started by `finch train`/`finch demo` and found under FINCH_HOME/runs. */
  origin: 'app' | 'cli';
  status: RunStatus;
  modelId: Id | null;
  datasetId: Id | null;
  modelName: string;
  datasetName: string;
  provider: ProviderName | null;
  step: number;
  totalSteps: number | null;
  loss: number | null;
  evalLoss: number | null;
  bestEvalLoss: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Seconds spent running (pauses excluded). */
  durationS: number;
  /** The run folder (adapter, checkpoints, run.json). */
  dir: string;
  /** The final adapter folder, when the run completed. */
  adapterPath: string | null;
  error: ApiError | null;
  /** What the run's job was asked and has not done yet (live runs only; null otherwise). */
  request: RunRequest | null;
  /** What the run's job is doing now (live runs only; null otherwise); 'run-phase' events follow it. */
  phase: TrainPhase | null;
}

/** One optimizer step as the store keeps it: the fields of the trainer's 'step' event. */
export type MetricPoint = Pick<TrainEventOf<'step'>, 'step' | 'loss' | 'lr' | 'grad_norm' | 'tokens_per_s' | 'rss_mb' | keyof RewardMetrics>;
/** One evaluation: the fields of the trainer's 'eval' event. */
export type EvalPoint = Omit<TrainEventOf<'eval'>, 'event'>;
export interface EvalSample { prompt: string; reference: string; answer: string; correct: boolean | null }
export interface CheckpointInfo { step: number; path: string; createdAt: string }
export interface LogLine { at: string; level: 'info' | 'warn' | 'error'; message: string }

export interface RunDetails extends RunSummary {
  config: RunConfig | null;
  /** The config as the trainer got it (paths resolved). */
  trainConfig: Record<string, unknown> | null;
  metrics: MetricPoint[];
  evals: EvalPoint[];
  /** Sample answers at each evaluation, newest last. */
  samples: { step: number; samples: EvalSample[] }[];
  checkpoints: CheckpointInfo[];
  logs: LogLine[];
  /** The demo's base/tuned comparison, for demo runs. */
  demo: DemoResult | null;
}

export interface DemoRow { prompt: string; reference: string; base: string; tuned: string | null; baseCorrect: boolean; tunedCorrect: boolean | null }
/** Exact-match accuracy on the demo's held-out problems (every row `finch demo` scores), and each answer. */
export interface DemoResult { baseAccuracy: number; tunedAccuracy: number | null; rows: DemoRow[] }
/** The batchId of a demo run's comparison: its 'batch-progress' events while base and tuned answer. */
export const demoBatchId = (runId: RunId): Id => `demo-${runId}`;

export interface StartDemoResult {
  model: ModelSummary;
  dataset: DatasetSummary;
  /** The demo recipe as a run config (start it with startRun, or see `run` when start was true). */
  config: RunConfig;
  run: RunSummary | null;
}

export interface AdapterSummary {
  id: Id;
  name: string;
  path: string;
  baseModelId: Id;
  /** 'run': a run's final adapter; 'imported': a PEFT folder made elsewhere. */
  origin: 'run' | 'imported';
  runId: RunId | null;
  rank: number;
  alpha: number;
  targets: string[];
  addedAt: string;
}

/**
 * How the compare engine holds a model's frozen weights: float32 (exact), or 4-bit blocks multiplied
 * with int8 activations when float32 would not fit its share of the machine's memory.
 */
export type ChatWeights = 'float32' | '4bit';

export interface GenerationStarted {
  generationId: Id;
}

export interface BatchCompareResult {
  rows: { prompt: string; reference: string; left: string; right: string; leftCorrect: boolean; rightCorrect: boolean }[];
  leftAccuracy: number;
  rightAccuracy: number;
  /** Indices of rows where exactly one side is right. */
  differing: number[];
}

export interface Comparison {
  id: Id;
  modelId: Id;
  left: ModelSide;
  right: ModelSide;
  /** Human labels of the two sides ("base", "run 'math' step 300"). */
  leftLabel: string;
  rightLabel: string;
  messages: ChatMessage[];
  leftOutput: string;
  rightOutput: string;
  sampling: Sampling | null;
  maxNewTokens: number | null;
  rating: 'left' | 'right' | 'tie' | 'both-bad' | null;
  notes: string;
  createdAt: string;
}

export interface ExportResult {
  path: string;
  files: { name: string; bytes: number }[];
  /** What to run next, when there is something (`ollama create ...`, `accelerate launch ...`). */
  command?: string;
}

/** What a push to the Hugging Face Hub made. */
export interface PushResult {
  repo: string;
  /** The repository's page. */
  url: string;
  commit: string;
  private: boolean;
  /** The push created the repository (else it updated one that existed, keeping its visibility). */
  created: boolean;
  files: { name: string; bytes: number }[];
  /** Large files the Hub had already (a push run again after a failure): not sent again. */
  alreadyStored: string[];
}

/** The steps of a push: building the merged model or GGUF file, then the upload's (hub/upload.ts). */
export type PushPhase = 'merging' | 'converting' | 'creating' | 'hashing' | 'uploading' | 'committing' | 'publishing';

export interface DownloadStarted {
  downloadId: Id;
}

/** One entry of the 4-bit weight cache: a checkpoint's quantized projections at one block size. */
export interface WeightCacheEntry {
  /** The entry's key (its file name without .safetensors): what removeWeightCacheEntry takes. */
  id: Id;
  /** The entry's one file. */
  file: string;
  /** The checkpoint folder it was quantized from ('' when the file cannot be read). */
  checkpoint: string;
  /** The library model at that folder, when there is one. */
  modelId: Id | null;
  modelName: string | null;
  blockSize: number;
  bytes: number;
  createdAt: string | null;
  /** Written or last read by a 4-bit load. */
  lastUsedAt: string;
  /** False for a file that cannot be read: the next 4-bit load of its checkpoint rebuilds it. */
  readable: boolean;
  /** The name of the 4-bit run training on this checkpoint now (removing waits until it ends), or null. */
  inUseBy: string | null;
}

export interface WeightCacheView {
  /** FINCH_HOME/cache/int4. */
  dir: string;
  totalBytes: number;
  entries: WeightCacheEntry[];
}

// ---- events: one vocabulary for runs, downloads, generation ------------------------------------

/**
 * A trainer event (train-events.ts: what `finch train --json` prints) as the app forwards it: the
 * same fields, tagged with its run; its `event` becomes the type, so `step` arrives as 'run-step'.
 */
export type RunTrainEvent = TrainEvent extends infer E ? (E extends { event: infer K extends string } ? { type: `run-${K}`; runId: RunId } & Omit<E, 'event'> : never) : never;

/** Tags a trainer event with its run, changing nothing else. */
export function runTrainEvent(runId: RunId, e: TrainEvent): RunTrainEvent {
  const { event, ...fields } = e;
  return { type: `run-${event}`, runId, ...fields } as RunTrainEvent;
}

export type FinchEvent =
  | RunTrainEvent
  | { type: 'run-status'; runId: RunId; status: RunStatus; error: ApiError | null; /** Absent: nothing asked. */ request?: RunRequest | null }
  /** The sample answers of the adapter checkpointed at an evaluation step. */
  | { type: 'run-samples'; runId: RunId; step: number; samples: EvalSample[] }
  | { type: 'run-log'; runId: RunId; line: LogLine }
  /** The demo's base answers before training ('base') and both sides after ('compare'). */
  | { type: 'run-demo'; runId: RunId; phase: 'base' | 'compare'; result: DemoResult }
  | {
    type: 'download'; downloadId: Id; kind: 'model' | 'dataset'; repo: string;
    state: 'running' | 'done' | 'failed' | 'cancelled';
    /** The file being transferred now, bytes so far and in all (null while listing). */
    file: string | null; bytes: number; totalBytes: number | null; bytesPerS: number; etaS: number | null;
    /** Set when state is 'done': the library entry made. */
    modelId: Id | null; datasetId: Id | null;
    error: ApiError | null;
  }
  | { type: 'generation-delta'; generationId: Id; side: 'left' | 'right'; text: string }
  /** Before a generation's first token: the engine quantizes the model to 4 bits (done / total weights). */
  | { type: 'generation-progress'; generationId: Id; phase: 'quantizing'; done: number; total: number }
  /** `weights`: how the compare engine held the model's frozen weights for this answer (ChatWeights). */
  | { type: 'generation-done'; generationId: Id; side: 'left' | 'right'; text: string; tokens: number; finish: 'eos' | 'length' | 'stop' | 'stopped'; seconds: number; tokensPerS: number; weights: ChatWeights }
  | { type: 'generation-error'; generationId: Id; error: ApiError }
  | { type: 'batch-progress'; batchId: Id; done: number; total: number }
  /** An export's progress; a push to the Hub sets `repo` and `phase` (dest: the repository's page; done/total: bytes, or tensors while building). */
  | { type: 'export-progress'; dest: string; done: number; total: number; repo?: string; phase?: PushPhase }
  /** A library list changed (a download finished, a CLI run appeared): refetch it. */
  | { type: 'library-changed'; what: 'models' | 'datasets' | 'runs' | 'adapters' | 'comparisons' | 'weight-cache' };

export type FinchEventType = FinchEvent['type'];

// ---- the API -----------------------------------------------------------------------------------

export interface DesktopApi {
  appInfo(): Promise<AppInfo>;
  getSettings(): Promise<SettingsView>;
  setSettings(patch: Partial<Settings>): Promise<SettingsView>;

  listModels(): Promise<ModelSummary[]>;
  addLocalModel(req: AddLocalModelRequest): Promise<ModelSummary>;
  /** Starts a Hub download; progress and the new model's id arrive as 'download' events. */
  downloadModel(req: DownloadModelRequest): Promise<DownloadStarted>;
  cancelDownload(downloadId: Id): Promise<void>;
  removeModel(id: Id, opts: RemoveRequest): Promise<void>;
  modelDetails(id: Id): Promise<ModelDetails>;

  listDatasets(): Promise<DatasetSummary[]>;
  addDataset(req: AddDatasetRequest): Promise<DatasetSummary>;
  listHubDatasetFiles(req: HubDatasetRequest): Promise<HubDatasetFile[]>;
  /** Starts a Hub download of one data file; it joins the library when done ('download' events). */
  downloadDataset(req: DownloadDatasetRequest): Promise<DownloadStarted>;
  removeDataset(id: Id, opts: RemoveRequest): Promise<void>;
  previewDataset(req: PreviewRequest): Promise<DatasetPreview>;

  estimateMemory(config: RunConfig): Promise<MemoryEstimateResult>;
  /** Starts (or queues, while another run trains) a run. */
  startRun(config: RunConfig): Promise<RunSummary>;
  pauseRun(id: RunId): Promise<RunSummary>;
  /** Continues a paused run, or resumes an interrupted/failed/cancelled one exactly from its last checkpoint. */
  resumeRun(id: RunId): Promise<RunSummary>;
  /** Stops after the current step; the last checkpoint stays, so it can be resumed. */
  cancelRun(id: RunId): Promise<RunSummary>;
  listRuns(): Promise<RunSummary[]>;
  runDetails(id: RunId): Promise<RunDetails>;
  deleteRun(id: RunId, opts: RemoveRequest): Promise<void>;
  /** Adds the bundled demo model and dataset and the demo recipe; with start (default) runs it. */
  startDemo(req: StartDemoRequest): Promise<StartDemoResult>;

  listAdapters(): Promise<AdapterSummary[]>;
  /** A PEFT adapter folder made elsewhere, checked against its base model's shapes. */
  importAdapter(req: ImportAdapterRequest): Promise<AdapterSummary>;
  exportAdapter(req: ExportAdapterRequest): Promise<ExportResult>;
  exportMerged(req: ExportMergedRequest): Promise<ExportResult>;
  /** One GGUF file for llama.cpp / LM Studio. */
  exportGguf(req: ExportGgufRequest): Promise<ExportResult>;
  /** A folder for Ollama (GGUF + Modelfile); `command` registers it. */
  exportOllama(req: ExportOllamaRequest): Promise<ExportResult>;
  /** A run as a Transformers + PEFT + Accelerate project for multi-GPU training; `command` launches it. */
  exportAccelerate(req: ExportAccelerateRequest): Promise<ExportResult>;
  /**
   * Uploads a run's or an adapter's result to the Hugging Face Hub with a model card, as one commit
   * of a repository that stays private until every file is there; 'export-progress' events carry
   * `repo`. A failed push publishes nothing, and the same push again continues where it stopped.
   */
  pushToHub(req: PushRequest): Promise<PushResult>;
  /** Stops a running push to `repo`; pushToHub rejects with code 'cancelled'. */
  cancelPush(repo: string): Promise<void>;

  /** Starts streaming answers ('generation-*' events keyed by generationId and side). */
  generate(req: GenerateRequest): Promise<GenerationStarted>;
  stopGeneration(generationId: Id): Promise<void>;
  batchCompare(req: BatchCompareRequest): Promise<BatchCompareResult>;
  saveComparison(req: SaveComparisonRequest): Promise<Comparison>;
  listComparisons(filter: { runId?: RunId }): Promise<Comparison[]>;

  /** The 4-bit weight cache (FINCH_HOME/cache/int4): each entry's checkpoint, block size and size on disk. */
  listWeightCache(): Promise<WeightCacheView>;
  /** Deletes one entry (rebuilt by the next 4-bit load); refused while a run trains on its checkpoint. */
  removeWeightCacheEntry(id: Id): Promise<WeightCacheView>;
  /** Deletes every entry; refused while a 4-bit run trains (it may be writing one). */
  clearWeightCache(): Promise<WeightCacheView>;

  /**
   * Desktop app: a native open dialog; resolves with the chosen path, or null when the user
   * cancels. Browser mode has no dialogs and answers null (appInfo.browserMode: show a path field).
   */
  pickPath(req: PickPathRequest): Promise<string | null>;

  /** Every event (runs, downloads, generation); returns the unsubscribe function. */
  onEvent(listener: (e: FinchEvent) => void): () => void;
}

// ---- transport tables --------------------------------------------------------------------------

/** Request/response methods: everything but the `on...` subscription. */
export type ApiCalls = { [K in keyof DesktopApi as K extends `on${string}` ? never : K]: DesktopApi[K] };
export type CallName = keyof ApiCalls;
export type CallResultOf<K extends CallName> = Awaited<ReturnType<ApiCalls[K]>>;

/** Every call, for transports to register; the checks below fail to compile if one is missing. */
export const API_CALLS = [
  'appInfo', 'getSettings', 'setSettings',
  'listModels', 'addLocalModel', 'downloadModel', 'cancelDownload', 'removeModel', 'modelDetails',
  'listDatasets', 'addDataset', 'listHubDatasetFiles', 'downloadDataset', 'removeDataset', 'previewDataset',
  'estimateMemory', 'startRun', 'pauseRun', 'resumeRun', 'cancelRun', 'listRuns', 'runDetails', 'deleteRun', 'startDemo',
  'listAdapters', 'importAdapter', 'exportAdapter', 'exportMerged', 'exportGguf', 'exportOllama', 'exportAccelerate', 'pushToHub', 'cancelPush',
  'generate', 'stopGeneration', 'batchCompare', 'saveComparison', 'listComparisons',
  'listWeightCache', 'removeWeightCacheEntry', 'clearWeightCache',
  'pickPath',
] as const satisfies readonly CallName[];
type Missing = Exclude<CallName, (typeof API_CALLS)[number]>;
const allCallsListed: [Missing] extends [never] ? true : { missing: Missing } = true;
void allCallsListed;

// Each call's parameters are exactly its schema's tuple (schemas.ts CALL_ARGS).
type ParamsMismatch = { [K in CallName]: Parameters<ApiCalls[K]> extends S.CallArgs[K] ? (S.CallArgs[K] extends Parameters<ApiCalls[K]> ? never : K) : K }[CallName];
const paramsMatchSchemas: [ParamsMismatch] extends [never] ? true : { mismatch: ParamsMismatch } = true;
void paramsMatchSchemas;

/** The one push channel (IPC channel name; in JSON-RPC, notifications with method "event"). */
export const EVENT_CHANNEL = 'finch:event';

/** The IPC channel name of a call. */
export const callChannel = (name: CallName): string => `finch:${name}`;

/** A rejected call on the client side: the ApiError's fields on an Error (message is the sentence). */
export interface ApiFailure extends Error, Omit<ApiError, 'message'> {}

/** Turns an ApiError into a throwable Error carrying code, hint and field (for clients). */
export function apiFailure(e: ApiError): ApiFailure {
  return Object.assign(new Error(e.message), { name: 'FinchApiError', code: e.code, hint: e.hint, field: e.field });
}

/**
 * Builds a DesktopApi from a transport: `call` sends (name, args) and resolves with the dispatcher's
 * envelope; `subscribe` delivers every FinchEvent. Electron's preload and the browser's WebSocket
 * client both use this, so the renderer sees one identical `window.api`.
 */
export function makeApiClient(call: (name: CallName, args: unknown[]) => Promise<CallResult>, subscribe: (listener: (e: FinchEvent) => void) => () => void): DesktopApi {
  const api: Record<string, unknown> = {
    onEvent: (listener: (e: FinchEvent) => void) => subscribe(listener),
  };
  for (const name of API_CALLS) {
    api[name] = async (...args: unknown[]) => {
      const r = await call(name, args);
      if (!r.ok) throw apiFailure(r.error);
      return r.value;
    };
  }
  return api as unknown as DesktopApi;
}

declare global {
  // In the renderer, `window.api` is the preload's bridge (or the WebSocket client in browser mode).
  interface Window {
    api: DesktopApi;
  }
}
