// Runtime schemas of everything the renderer sends to the back end, declared once: the argument
// types of DesktopApi (src-shared/api.ts) are inferred from these, and the one dispatcher
// (src-main/services/dispatch.ts) validates every call's arguments with CALL_ARGS before any
// service sees them, whatever the transport (Electron IPC or the WebSocket of `finch serve`).
// Objects are strict: an unknown field is an error naming it, not silently dropped.

import { z } from 'zod';
import { PROVIDER_NAMES } from './choices.js';
import { ColumnMap, Field, FormatName, LoraSettings, LoraTarget, ProviderChoice, RunSettings, TemplateChoice, TrainOn } from './run-config.js';

export { ColumnMap, Field, FormatName, LoraSettings, LoraTarget, ProviderChoice };

// ---- small pieces ------------------------------------------------------------------------------

export const Id = z.string().min(1).max(200);
/** A path the user typed or picked in a native dialog; the API reads only paths given like this. */
export const UserPath = z.string().min(1).max(4096);
export const ProviderName = z.enum(PROVIDER_NAMES);
export const ChatMessage = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().max(200_000),
});
/** A Hugging Face repository id ("meta-llama/Llama-3.2-1B-Instruct", "meta-math/MetaMathQA"). */
export const RepoId = z.string().regex(/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/, 'a repository id like "owner/name"').max(200);
export const Revision = z.string().min(1).max(200);

// ---- runs --------------------------------------------------------------------------------------

/**
 * A fine-tuning run as the app starts it: every run setting (run-config.ts), with the model and
 * dataset named by library id instead of path; Finch chooses the output folder (under
 * FINCH_HOME). A setting left out takes its default, as on the command line.
 */
export const RunConfig = z.strictObject({
  /** Shown in run history; defaults to "<model> on <dataset>". */
  name: z.string().max(200).optional(),
  modelId: Id,
  datasetId: Id,
  ...RunSettings.shape,
  /** Held-out prompts answered by the current adapter at each evaluation (0 = none). */
  samplePrompts: z.int().min(0).max(16).default(3),
});

/** Every default of an app run: the wizard starts from these. */
export const RUN_DEFAULTS: Omit<z.output<typeof RunConfig>, 'modelId' | 'datasetId'> = RunConfig.omit({ modelId: true, datasetId: true }).parse({});

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
  template: TemplateChoice.optional(),
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
  /** A token for gated repositories; absent: HF_TOKEN, then the saved one. Never stored by this call. */
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
  trainOn: TrainOn.optional(),
  template: TemplateChoice.optional(),
  seqLen: RunSettings.shape.seqLen.unwrap().optional(),
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
/** A repository to push to: "owner/name", the owner being the token's account or one of its organizations. */
export const PushRepoId = z.string().regex(/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/, 'a repository id like "user/name"').max(200);
export const PushRequest = z.strictObject({
  source: ModelSide.refine((s) => s.kind !== 'base', { message: 'push needs an adapter or a run, not the base model' }),
  /** adapter: the PEFT folder; merged: the adapter folded into its base; gguf: that merged model as one GGUF file. */
  what: z.enum(['adapter', 'merged', 'gguf']),
  repo: PushRepoId,
  /** Keep the repository private (default: public once every file is there). */
  private: z.boolean().optional(),
  /** The base model, for merged and gguf (default: the run's or the adapter's). */
  modelId: Id.optional(),
  /** GGUF weights (default q8_0). */
  dtype: GgufDtype.optional(),
  /** A token with write access; absent: the app's setting, then HF_TOKEN. Never stored by this call. */
  token: z.string().min(1).max(1000).optional(),
  /** A batch comparison of this adapter against the base model (batchCompare's accuracies), for the model card. */
  comparison: z.strictObject({
    datasetId: Id, rows: z.int().min(1).max(100_000), baseAccuracy: z.number().min(0).max(1), tunedAccuracy: z.number().min(0).max(1),
  }).optional(),
});
export const Settings = z.strictObject({
  /**
   * Hugging Face token for gated models, saved outside the library database (encrypted by the
   * keychain in the desktop app, else a file only the user can read); null or "" removes it.
   * Write-only through the API: appInfo/getSettings say only whether one is set, and how it is kept.
   */
  hfToken: z.string().max(1000).nullable(),
  /** The Hub endpoint (default https://huggingface.co): an http(s) address only (never javascript:, file:, ...). */
  hfEndpoint: z.url({ protocol: /^https?$/, error: 'the Hub endpoint must be an http:// or https:// address' }).nullable(),
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

/**
 * Each call's argument tuple: the dispatcher parses `args` with it before calling the service. An
 * argument whose fields are all optional defaults to {}, so a JSON-RPC call may leave `params` out.
 */
export const CALL_ARGS = {
  appInfo: z.tuple([]),
  getSettings: z.tuple([]),
  setSettings: z.tuple([Settings.partial().default({})]),

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
  startDemo: z.tuple([z.strictObject({ steps: z.int().min(1).max(100_000).optional(), start: z.boolean().optional(), method: z.enum(['sft', 'dpo']).optional() }).default({})]),

  listAdapters: z.tuple([]),
  importAdapter: z.tuple([ImportAdapterRequest]),
  exportAdapter: z.tuple([ExportAdapterRequest]),
  exportMerged: z.tuple([ExportMergedRequest]),
  exportGguf: z.tuple([ExportGgufRequest]),
  exportOllama: z.tuple([ExportOllamaRequest]),
  exportAccelerate: z.tuple([ExportAccelerateRequest]),
  pushToHub: z.tuple([PushRequest]),
  cancelPush: z.tuple([PushRepoId]),

  generate: z.tuple([GenerateRequest]),
  stopGeneration: z.tuple([Id]),
  batchCompare: z.tuple([BatchCompareRequest]),
  saveComparison: z.tuple([SaveComparisonRequest]),
  listComparisons: z.tuple([z.strictObject({ runId: Id.optional() }).default({})]),

  listWeightCache: z.tuple([]),
  removeWeightCacheEntry: z.tuple([WeightCacheId]),
  clearWeightCache: z.tuple([]),

  pickPath: z.tuple([PickPathRequest]),
} as const;

export type CallArgs = { [K in keyof typeof CALL_ARGS]: z.infer<(typeof CALL_ARGS)[K]> };
