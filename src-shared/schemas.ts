// Runtime schemas of everything the renderer sends to the back end, declared once: the argument
// types of DesktopApi (src-shared/api.ts) are inferred from these, and the one dispatcher
// (src-main/services/dispatch.ts) validates every call's arguments with CALL_ARGS before any
// service sees them, whatever the transport (Electron IPC or the WebSocket of `finch serve`).
// Objects are strict: an unknown field is an error naming it, not silently dropped.

import { z } from 'zod';
import { PROVIDER_NAMES } from './api.js';

// ---- small pieces ------------------------------------------------------------------------------

export const Id = z.string().min(1).max(200);
/** A path the user typed or picked in a native dialog; the API reads only paths given like this. */
export const UserPath = z.string().min(1).max(4096);
export const ProviderName = z.enum(PROVIDER_NAMES);
/** A run's provider: one of the above, or 'auto' (appInfo says what it picks and why). */
export const ProviderChoice = z.union([ProviderName, z.literal('auto')]);
export const FormatName = z.enum(['alpaca', 'sharegpt', 'messages', 'completion', 'text']);
export const Field = z.enum(['instruction', 'input', 'output', 'system', 'conversations', 'messages', 'prompt', 'completion', 'text']);
/** Format field -> dataset column, e.g. MetaMathQA's {prompt: 'query', completion: 'response'}. */
export const ColumnMap = z.partialRecord(Field, z.string().min(1).max(200));
export const LoraTarget = z.enum(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
export const ChatMessage = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().max(200_000),
});
/** A Hugging Face repository id ("meta-llama/Llama-3.2-1B-Instruct", "meta-math/MetaMathQA"). */
export const RepoId = z.string().regex(/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/, 'a repository id like "owner/name"').max(200);
export const Revision = z.string().min(1).max(200);

// ---- runs --------------------------------------------------------------------------------------

export const LoraSettings = z.strictObject({
  rank: z.int().min(1).max(1024),
  alpha: z.number().positive().max(1e4),
  dropout: z.number().min(0).max(0.9),
  rslora: z.boolean(),
  targets: z.array(LoraTarget).min(1),
});

/**
 * A fine-tuning run as the app starts it: the trainer's TrainConfig with the model and dataset
 * named by library id instead of path, and the output folder chosen by Finch (under FINCH_HOME).
 * RUN_DEFAULTS (api.ts) holds every default; the wizard sends a complete config.
 */
export const RunConfig = z.strictObject({
  /** Shown in run history; defaults to "<model> on <dataset>". */
  name: z.string().max(200).optional(),
  modelId: Id,
  datasetId: Id,
  format: FormatName.optional(),
  map: ColumnMap.optional(),
  trainOn: z.enum(['completions', 'all']),
  template: z.enum(['auto', 'model', 'fallback']),
  pack: z.boolean(),
  seqLen: z.int().min(8).max(131_072),
  valFraction: z.number().min(0).max(0.5),
  lora: LoraSettings,
  /** 4-bit frozen base (QLoRA). */
  quantize: z.boolean(),
  lr: z.number().positive().max(1),
  schedule: z.enum(['constant', 'linear', 'cosine']),
  warmupSteps: z.int().min(0),
  epochs: z.int().min(1).max(1000),
  /** Stop after this many optimizer steps (overrides epochs). */
  maxSteps: z.int().min(1).nullable(),
  batch: z.int().min(1).max(4096),
  gradAccum: z.int().min(1).max(4096),
  weightDecay: z.number().min(0).max(1),
  maxGradNorm: z.number().positive().nullable(),
  /** Validation loss and sample answers every N steps (0 = only at the end). */
  evalEvery: z.int().min(0),
  checkpointEvery: z.int().min(1),
  keepCheckpoints: z.int().min(1).max(1000),
  seed: z.int().min(0),
  /** CPU threads (0 = all cores). */
  threads: z.int().min(0).max(1024),
  provider: ProviderChoice,
  /** A node that would fall back to the CPU is an error instead of a warning (GPU providers). */
  strictProvider: z.boolean().optional(),
  checkpointLayers: z.boolean(),
  /** 4-bit block size (32: lower error; 64: ~5% less memory). */
  blockSize: z.union([z.literal(32), z.literal(64), z.literal(128)]),
  /** The frozen path's dtype on a GPU: float16 keeps LoRA, gradients and optimizer state float32; auto = float16 on a hardware WebGPU adapter with shader-f16. */
  computeDtype: z.enum(['float32', 'float16', 'auto']).optional(),
  /** Pad every batch to the dataset's longest row (one static graph) instead of each batch's own longest. */
  staticSeq: z.boolean().optional(),
  /** Rows of similar length share a step (seeded per epoch): less padding, exact resume. */
  groupByLength: z.boolean().optional(),
  /** Held-out prompts answered by the current adapter at each evaluation (0 = none). */
  samplePrompts: z.int().min(0).max(16),
});

// ---- generation --------------------------------------------------------------------------------

/** One side of a comparison: the base model, a run's adapter (final or a checkpoint), an imported adapter. */
export const ModelSide = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('base') }),
  z.strictObject({ kind: z.literal('run'), runId: Id, /** A checkpoint's step; absent = the run's final adapter (or its latest checkpoint). */ step: z.int().min(1).optional() }),
  z.strictObject({ kind: z.literal('adapter'), adapterId: Id }),
]);

export const Sampling = z.strictObject({
  /** 0 = greedy. */
  temperature: z.number().min(0).max(5),
  topK: z.int().min(0),
  topP: z.number().gt(0).max(1),
  repetitionPenalty: z.number().min(0.5).max(3),
  seed: z.int().min(0),
});

export const GenerationSideRequest = z.strictObject({
  side: ModelSide,
  /** This side's conversation so far, ending with the user's new message (multi-turn: its own earlier answers). */
  messages: z.array(ChatMessage).min(1).max(1000),
});

export const GenerateRequest = z.strictObject({
  /** The base model both sides share (one loaded model serves base and tuned answers). */
  modelId: Id,
  left: GenerationSideRequest,
  /** Absent: one side only. */
  right: GenerationSideRequest.optional(),
  sampling: Sampling.optional(),
  maxNewTokens: z.int().min(1).max(8192),
  template: z.enum(['auto', 'model', 'fallback']).optional(),
});

export const BatchCompareRequest = z.strictObject({
  modelId: Id,
  left: ModelSide,
  right: ModelSide,
  datasetId: Id,
  format: FormatName.optional(),
  map: ColumnMap.optional(),
  /** How many rows (from the end of the dataset's held-out part: the last rows). */
  rows: z.int().min(1).max(5000),
  maxNewTokens: z.int().min(1).max(4096),
  /** Echoed on its 'batch-progress' events, so the caller can tell its progress apart. */
  batchId: Id.optional(),
});

export const SaveComparisonRequest = z.strictObject({
  modelId: Id,
  left: ModelSide,
  right: ModelSide,
  /** The conversation shown (the prompt turns), and each side's answer to its last user turn. */
  messages: z.array(ChatMessage).min(1).max(1000),
  leftOutput: z.string().max(1_000_000),
  rightOutput: z.string().max(1_000_000),
  sampling: Sampling.optional(),
  maxNewTokens: z.int().min(1).optional(),
  rating: z.enum(['left', 'right', 'tie', 'both-bad']).nullable(),
  notes: z.string().max(100_000),
});

// ---- models, datasets, adapters ----------------------------------------------------------------

export const AddLocalModelRequest = z.strictObject({ path: UserPath, name: z.string().max(200).optional() });
export const DownloadModelRequest = z.strictObject({
  repo: RepoId,
  revision: Revision.optional(),
  /** A token for gated repositories; absent: the app's setting, then HF_TOKEN. Never stored by this call. */
  token: z.string().min(1).max(1000).optional(),
  name: z.string().max(200).optional(),
});
export const RemoveRequest = z.strictObject({
  /** Also delete the files: only ever those Finch itself made (downloads, run folders). */
  deleteFiles: z.boolean(),
});
export const AddDatasetRequest = z.strictObject({
  path: UserPath,
  name: z.string().max(200).optional(),
  format: FormatName.optional(),
  map: ColumnMap.optional(),
});
export const HubDatasetRequest = z.strictObject({ repo: RepoId, revision: Revision.optional(), token: z.string().min(1).max(1000).optional() });
export const DownloadDatasetRequest = z.strictObject({
  repo: RepoId,
  revision: Revision.optional(),
  /** The data file chosen from listHubDatasetFiles. */
  file: z.string().min(1).max(1000),
  token: z.string().min(1).max(1000).optional(),
  name: z.string().max(200).optional(),
  format: FormatName.optional(),
  map: ColumnMap.optional(),
});
export const PreviewRequest = z.strictObject({
  /** A library dataset, or a file path the user just picked (before adding it). */
  datasetId: Id.optional(),
  path: UserPath.optional(),
  /** Renders the sample with this model's tokenizer and chat template; absent: no token view. */
  modelId: Id.optional(),
  format: FormatName.optional(),
  map: ColumnMap.optional(),
  trainOn: z.enum(['completions', 'all']).optional(),
  template: z.enum(['auto', 'model', 'fallback']).optional(),
  seqLen: z.int().min(8).max(131_072).optional(),
  /** Table rows (default 20). */
  rows: z.int().min(1).max(500).optional(),
  /** Rows tokenised for the histogram and statistics (default 2000). */
  statsRows: z.int().min(1).max(100_000).optional(),
}).refine((r) => (r.datasetId === undefined) !== (r.path === undefined), { message: 'give exactly one of datasetId or path', path: ['datasetId'] });
export const ImportAdapterRequest = z.strictObject({ path: UserPath, baseModelId: Id, name: z.string().max(200).optional() });
export const ExportAdapterRequest = z.strictObject({
  source: ModelSide.refine((s) => s.kind !== 'base', { message: 'export needs an adapter or a run, not the base model' }),
  /** The folder to write (created; must not exist or be empty). */
  dest: UserPath,
});
export const ExportMergedRequest = z.strictObject({
  modelId: Id,
  source: ModelSide.refine((s) => s.kind !== 'base', { message: 'merge needs an adapter or a run, not the base model' }),
  /** The folder to write: the base's files with the adapter folded into its weights (same dtype as the base). */
  dest: UserPath,
});
/** GGUF tensor types: f16 (default) and f32 keep the weights; q8_0 and q4_0 quantize them as llama.cpp does. */
export const GgufDtype = z.enum(['f32', 'f16', 'q8_0', 'q4_0']);
export const ExportGgufRequest = z.strictObject({
  modelId: Id,
  /** base: the model alone; a run or adapter: merged in, or with loraOnly the adapter alone as a GGUF LoRA. */
  source: ModelSide,
  /** The .gguf file to write. */
  dest: UserPath,
  dtype: GgufDtype.optional(),
  loraOnly: z.boolean().optional(),
});
export const ExportOllamaRequest = z.strictObject({
  modelId: Id,
  source: ModelSide,
  /** The folder to write: model.gguf (and adapter.gguf with separateAdapter) and a Modelfile. */
  dest: UserPath,
  dtype: GgufDtype.optional(),
  separateAdapter: z.boolean().optional(),
  /** The name `ollama create` registers. */
  name: z.string().regex(/^[a-z0-9][a-z0-9._:-]*$/, 'a lower-case Ollama model name').max(100).optional(),
});
export const ExportAccelerateRequest = z.strictObject({
  runId: Id,
  dest: UserPath,
  gpus: z.int().min(1).max(1024).optional(),
});
export const Settings = z.strictObject({
  /** Hugging Face token for gated models (write-only through the API: appInfo/getSettings say only whether one is set). */
  hfToken: z.string().max(1000).nullable(),
  /** The Hub endpoint (default https://huggingface.co). */
  hfEndpoint: z.url().nullable(),
  /** Where Hub downloads go (default FINCH_HOME/hub). */
  cacheDir: UserPath.nullable(),
  defaultProvider: ProviderChoice,
});

/** A 4-bit weight cache entry's id (listWeightCache): a file name stem, so never a path. */
export const WeightCacheId = z.string().regex(/^[\w-]{1,200}$/, 'a weight cache entry id from listWeightCache (letters, digits, "-" and "_")');

/**
 * A native open dialog (desktop app only): what the user is asked to pick. The renderer never
 * reads the file system itself; it gets back the path the user chose and passes it to
 * addLocalModel / addDataset / importAdapter / export*.
 */
export const PickPathRequest = z.strictObject({
  kind: z.enum(['model-folder', 'dataset-file', 'adapter-folder', 'export-folder']),
});

// ---- the call table ----------------------------------------------------------------------------

/** Each call's argument tuple: the dispatcher parses `args` with it before calling the service. */
export const CALL_ARGS = {
  appInfo: z.tuple([]),
  getSettings: z.tuple([]),
  setSettings: z.tuple([Settings.partial()]),

  listModels: z.tuple([]),
  addLocalModel: z.tuple([AddLocalModelRequest]),
  downloadModel: z.tuple([DownloadModelRequest]),
  cancelDownload: z.tuple([Id]),
  removeModel: z.tuple([Id, RemoveRequest]),
  modelDetails: z.tuple([Id]),

  listDatasets: z.tuple([]),
  addDataset: z.tuple([AddDatasetRequest]),
  listHubDatasetFiles: z.tuple([HubDatasetRequest]),
  downloadDataset: z.tuple([DownloadDatasetRequest]),
  removeDataset: z.tuple([Id, RemoveRequest]),
  previewDataset: z.tuple([PreviewRequest]),

  estimateMemory: z.tuple([RunConfig]),
  startRun: z.tuple([RunConfig]),
  pauseRun: z.tuple([Id]),
  resumeRun: z.tuple([Id]),
  cancelRun: z.tuple([Id]),
  listRuns: z.tuple([]),
  runDetails: z.tuple([Id]),
  deleteRun: z.tuple([Id, RemoveRequest]),
  startDemo: z.tuple([z.strictObject({ steps: z.int().min(1).max(100_000).optional(), start: z.boolean().optional() })]),

  listAdapters: z.tuple([]),
  importAdapter: z.tuple([ImportAdapterRequest]),
  exportAdapter: z.tuple([ExportAdapterRequest]),
  exportMerged: z.tuple([ExportMergedRequest]),
  exportGguf: z.tuple([ExportGgufRequest]),
  exportOllama: z.tuple([ExportOllamaRequest]),
  exportAccelerate: z.tuple([ExportAccelerateRequest]),

  generate: z.tuple([GenerateRequest]),
  stopGeneration: z.tuple([Id]),
  batchCompare: z.tuple([BatchCompareRequest]),
  saveComparison: z.tuple([SaveComparisonRequest]),
  listComparisons: z.tuple([z.strictObject({ runId: Id.optional() })]),

  listWeightCache: z.tuple([]),
  removeWeightCacheEntry: z.tuple([WeightCacheId]),
  clearWeightCache: z.tuple([]),

  pickPath: z.tuple([PickPathRequest]),
} as const;

export type CallArgs = { [K in keyof typeof CALL_ARGS]: z.infer<(typeof CALL_ARGS)[K]> };
