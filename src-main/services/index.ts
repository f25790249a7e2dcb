// The DesktopApi implementation: one object with every call of the contract, composed from the
// library, runs, generation, downloads and system services over one store and one event bus.
// Transports never call it directly: they go through createDispatcher (validation, errors as data).
//
//   const app = createServices({ browserMode: true });
//   const dispatcher = createDispatcher(app.api, app.bus);
//   ...
//   app.close();   // stops jobs (a run still training becomes 'interrupted'), closes the database

import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { demoBatchId, type ApiCalls, type ModelSide, type RunConfig, type RunSummary, type SettingsView } from '../../src-shared/api.js';
import type { TrainConfig } from '../../src-shared/run-config.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { type GpuMemoryReading, readGpuMemory } from '../engine/runtime/gpu-memory.js';
import { type AdapterList, type MachineProviders, probeMachine } from '../engine/runtime/providers.js';
import { readQa } from '../train/evaluate.js';
import { hubToken } from '../hub/index.js';
import { finchHome } from '../store/paths.js';
import { Store } from '../store/store.js';
import { TokenStore, migrateTokenOutOfDb, type TokenCipher } from '../store/token-store.js';
import { EventBus } from './bus.js';
import { DEMO_MODEL, DEMO_PAIRS_TRAIN, DEMO_RECIPE, DEMO_TEST, DEMO_TRAIN, DPO_DEMO_RECIPE, dpoDemoConfig } from './demo.js';
import { createDispatcher, type Dispatcher } from './dispatch.js';
import { Downloads } from './downloads.js';
import { ExportService } from './exports.js';
import { Pushes } from './pushes.js';
import { ServiceError } from './errors.js';
import { GenerationService, type ResolvedSide } from './generation.js';
import { forkJob, type SamplePrompts, type SpawnJob, type TrainPayload } from './jobs.js';
import { Library, emptyDestination, removeFilesUnder } from './library.js';
import { RunManager } from './runs.js';
import { appInfo, estimateMemory, refuseUnfit, runDecision, runProvider } from './system.js';
import { WeightCache } from './weight-cache.js';

export interface ServicesOptions {
  /** Default: FINCH_HOME/finch.db. */
  dbFile?: string;
  browserMode?: boolean;
  /** How jobs are hosted (default: Node child processes; Electron passes utility processes). */
  spawnJob?: SpawnJob;
  /** The desktop app's native open dialog; without one (browser mode) pickPath answers null. */
  pickPath?: ApiCalls['pickPath'];
  /**
   * How WebGPU adapters are listed (default: a Node child process). Electron's main process passes
   * a utility process: its `process.execPath` is Electron, which cannot run the probe as Node.
   */
  listAdapters?: () => Promise<AdapterList>;
  /**
   * The system keychain that encrypts the saved Hugging Face token (the desktop app, where it has
   * one); without it the token is kept in a file only the user can read (store/token-store.ts).
   */
  tokenCipher?: TokenCipher | null;
  /** How the GPUs' memory is read for the memory verdict (default: this machine's, engine/runtime/gpu-memory.ts). */
  readGpuMemory?: () => Promise<GpuMemoryReading>;
}

export interface Services {
  api: ApiCalls;
  bus: EventBus;
  dispatcher: Dispatcher;
  store: Store;
  runs: RunManager;
  generation: GenerationService;
  close(): void;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const DEMO_MAP = { prompt: 'query', completion: 'response' } as const;
/** Tokens per sample answer at evaluations. */
const SAMPLE_TOKENS = 64;

export function createServices(o: ServicesOptions = {}): Services {
  const home = finchHome();
  const store = new Store(o.dbFile ?? join(home, 'finch.db'));
  const bus = new EventBus();
  // What this machine offers, probed once, when first asked (the adapter probe is a process of its
  // own): appInfo's 'auto', the memory verdict and every run decide from it, as `finch doctor` does.
  let probing: Promise<MachineProviders> | null = null;
  let probed: MachineProviders | null = null;
  const machine = () => (probing ??= probeMachine(o.listAdapters).then((m) => (probed = m)));
  // A training job is handed that machine: it decides its device as the app did, without a probe of its own.
  const spawnJob: SpawnJob = (kind, payload) =>
    (o.spawnJob ?? forkJob)(kind, kind === 'train' && probed ? { ...(payload as TrainPayload), machine: probed } : payload);
  const library = new Library(store);
  const generation = new GenerationService(bus, spawnJob);
  const exports = new ExportService(bus, spawnJob);
  const weightCache = new WeightCache(store);

  // The Hugging Face token lives in its own store, never in finch.db: an earlier Finch's is moved
  // out first, and every read waits for that.
  const tokens = new TokenStore(home, o.tokenCipher ?? null);
  const tokensMoved = migrateTokenOutOfDb(store, tokens).catch((e: unknown) => {
    console.error(`finch: the Hugging Face token stays in finch.db for now; moving it to ${tokens.dir} failed: ${(e as Error).message}`);
  });
  /** The token a Hub request uses: its own, else HF_TOKEN, else the saved one (hub/token.ts hubToken). */
  const hfToken = async (given?: string) => { await tokensMoved; return hubToken(given, tokens); };
  const defaultProvider = () => store.setting<SettingsView['defaultProvider']>('defaultProvider') ?? 'auto';
  const settingsView = async (): Promise<SettingsView> => {
    await tokensMoved;
    return {
      hfTokenSet: Boolean(await hfToken()), hfTokenStorage: tokens.storage(), hfTokenSaveAs: tokens.saveAs, hfTokenFromEnv: Boolean(process.env.HF_TOKEN),
      hfEndpoint: store.setting<string>('hfEndpoint'), cacheDir: store.setting<string>('cacheDir'), defaultProvider: defaultProvider(),
    };
  };
  const downloads = new Downloads(bus, library, {
    token: hfToken, endpoint: () => store.setting<string>('hfEndpoint') ?? undefined, cacheDir: () => store.setting<string>('cacheDir') ?? undefined,
  });

  const pushes = new Pushes(bus, store, library, (id) => runs.run(id), {
    token: hfToken, endpoint: () => store.setting<string>('hfEndpoint') ?? undefined,
  }, exports);

  /** A few held-out prompts for a run's sample answers: the demo's test set, else the dataset's last rows. */
  const samplePrompts = async (run: RunSummary, cfg: TrainConfig, n: number): Promise<SamplePrompts | null> => {
    if (n === 0) return null;
    const demo = run.kind === 'demo' || cfg.data === DEMO_TRAIN || cfg.data === DEMO_PAIRS_TRAIN;
    const qa = demo ? await readQa(DEMO_TEST, { map: DEMO_MAP, limit: n }) : (await readQa(cfg.data, { format: cfg.format, map: cfg.map })).slice(-n);
    if (!qa.length) return null;
    return { prompts: qa.map((q) => q.prompt), references: qa.map((q) => q.reference), maxNewTokens: demo ? DEMO_RECIPE.maxNewTokens : SAMPLE_TOKENS };
  };

  const runs: RunManager = new RunManager(store, library, bus, spawnJob, samplePrompts, (run) => {
    const model = run.modelId ? store.model(run.modelId) : null;
    if (model && run.adapterPath) {
      const cfg = store.runRow(run.id)?.config;
      store.addAdapter({ name: run.name, path: run.adapterPath, baseModelId: model.id, origin: 'run', runId: run.id, rank: cfg?.lora.rank ?? 0, alpha: cfg?.lora.alpha ?? 0, targets: cfg?.lora.targets ?? [] });
      bus.emit({ type: 'library-changed', what: 'adapters' });
    }
    // The SFT demo compares answers; the preference demo's result is its held-out reward accuracy (its evaluations).
    const method = store.runRow(run.id)?.config?.method ?? 'sft';
    if (run.kind === 'demo' && method === 'sft' && model && run.adapterPath) void demoCompare(run, model.path, run.adapterPath);
  });

  /**
   * After a demo run: base and tuned answers on the held-out problems `finch demo` scores (the
   * same rows, so the same accuracy), with 'batch-progress' events under demoBatchId(run.id).
   */
  const demoCompare = async (run: RunSummary, modelPath: string, adapter: string) => {
    try {
      const rows = await generation.batch(modelPath, {
        left: null, right: adapter, dataset: DEMO_TEST, map: DEMO_MAP, rows: DEMO_RECIPE.evalRows, maxNewTokens: DEMO_RECIPE.maxNewTokens, batchId: demoBatchId(run.id),
      });
      const frac = (f: (r: (typeof rows)[number]) => boolean) => rows.filter(f).length / Math.max(1, rows.length);
      const result = {
        baseAccuracy: frac((r) => r.leftCorrect), tunedAccuracy: frac((r) => r.rightCorrect),
        rows: rows.map((r) => ({ prompt: r.prompt, reference: r.reference, base: r.left, tuned: r.right, baseCorrect: r.leftCorrect, tunedCorrect: r.rightCorrect })),
      };
      store.updateRun(run.id, { demo: result });
      bus.emit({ type: 'run-demo', runId: run.id, phase: 'compare', result });
    } catch (e) {
      bus.emit({ type: 'run-log', runId: run.id, line: { at: new Date().toISOString(), level: 'warn', message: `demo comparison failed: ${(e as Error).message}` } });
    }
  };

  const providerOf = async (c: RunConfig) => runProvider(c.provider, defaultProvider(), await machine());
  /** Where a run would go, and the GPUs' memory now (read at each call: other programs take and give it back). */
  const whereItRuns = async (c: RunConfig) => {
    const decision = runDecision(c.provider, defaultProvider(), await machine());
    const gpus = decision.provider === 'cpu' ? { gpus: [], notes: [] } : await (o.readGpuMemory ?? readGpuMemory)();
    return [decision, gpus] as const;
  };
  const sideLabel = (s: ModelSide): string => {
    if (s.kind === 'base') return 'base model';
    if (s.kind === 'adapter') return `adapter "${store.adapter(s.adapterId)?.name ?? s.adapterId}"`;
    const r = store.run(s.runId);
    return `run "${r?.name ?? s.runId}"${s.step ? ` at step ${s.step}` : ''}`;
  };
  const adapterOf = (s: ModelSide, modelId: string | null) => library.adapterDir(s, modelId, (id) => runs.run(id));

  const demoLibrary = async (method: 'sft' | 'dpo') => {
    const model = store.modelByPath(DEMO_MODEL) ?? await library.addModel(DEMO_MODEL, { name: 'Finch demo model', source: 'demo' });
    const dataset = method === 'dpo'
      ? store.datasetByPath(DEMO_PAIRS_TRAIN) ?? await library.addDataset(DEMO_PAIRS_TRAIN, { name: 'Demo arithmetic preference pairs', source: 'demo', repo: null, split: 'train', format: 'preference' })
      : store.datasetByPath(DEMO_TRAIN) ?? await library.addDataset(DEMO_TRAIN, { name: 'Demo arithmetic (MetaMathQA-style)', source: 'demo', repo: null, split: 'train', map: { ...DEMO_MAP } });
    return { model, dataset };
  };

  const api: ApiCalls = {
    appInfo: async () => {
      const s = await settingsView();
      return appInfo({ version: VERSION, finchHome: home, browserMode: o.browserMode ?? false, hfTokenSet: s.hfTokenSet, hfTokenStorage: s.hfTokenStorage }, await machine());
    },
    getSettings: async () => settingsView(),
    setSettings: async (patch) => {
      const { hfToken: token, ...rest } = patch;
      if (token !== undefined) {
        await tokensMoved;
        await tokens.save(token ?? '');
      }
      for (const [k, v] of Object.entries(rest)) store.setSetting(k, v);
      return settingsView();
    },

    listModels: async () => store.listModels(),
    addLocalModel: async (req) => {
      const m = await library.addModel(req.path, { name: req.name, source: 'local' });
      bus.emit({ type: 'library-changed', what: 'models' });
      return m;
    },
    downloadModel: async (req) => ({ downloadId: downloads.model(req) }),
    cancelDownload: async (id) => downloads.cancel(id),
    removeModel: async (id, opts) => {
      const m = library.model(id);
      store.removeModel(id);
      if (opts.deleteFiles && m.source === 'hub') removeFilesUnder(store.setting<string>('cacheDir') ?? join(home, 'hub'), m.path);
      bus.emit({ type: 'library-changed', what: 'models' });
    },
    modelDetails: async (id) => library.modelDetails(id),

    listDatasets: async () => store.listDatasets(),
    addDataset: async (req) => {
      const d = await library.addDataset(req.path, { name: req.name, source: 'local', repo: null, split: null, format: req.format, map: req.map });
      bus.emit({ type: 'library-changed', what: 'datasets' });
      return d;
    },
    listHubDatasetFiles: async (req) => downloads.listDatasetFiles(req.repo, req.revision, req.token),
    downloadDataset: async (req) => ({ downloadId: downloads.dataset(req) }),
    removeDataset: async (id, opts) => {
      const d = library.dataset(id);
      store.removeDataset(id);
      if (opts.deleteFiles && d.source === 'hub') removeFilesUnder(store.setting<string>('cacheDir') ?? join(home, 'hub'), d.path);
      bus.emit({ type: 'library-changed', what: 'datasets' });
    },
    previewDataset: async (req) => library.preview(req),

    estimateMemory: async (cfg) => estimateMemory(library.model(cfg.modelId).path, cfg, ...(await whereItRuns(cfg))),
    startRun: async (cfg) => {
      const [decision, gpus] = await whereItRuns(cfg);
      await refuseUnfit(library.model(cfg.modelId).path, cfg, decision, gpus);
      return runs.start(cfg, 'train', decision.provider);
    },
    pauseRun: async (id) => runs.pause(id),
    resumeRun: async (id) => {
      await machine(); // its job is handed the machine
      return runs.resume(id);
    },
    cancelRun: async (id) => runs.cancel(id),
    listRuns: async () => runs.list(),
    runDetails: async (id) => runs.details(id),
    deleteRun: async (id, opts) => runs.delete(id, opts.deleteFiles),
    startDemo: async (req) => {
      const method = req.method ?? 'sft';
      const { model, dataset } = await demoLibrary(method);
      if (method === 'dpo') {
        // The preference demo (`finch demo --method dpo`): DPO on pairs of the same problems.
        const config: RunConfig = {
          ...RUN_DEFAULTS, name: 'Demo: preference tuning (DPO)', modelId: model.id, datasetId: dataset.id, format: 'preference', provider: 'cpu',
          ...dpoDemoConfig(req.steps ?? DPO_DEMO_RECIPE.steps),
        };
        return { model, dataset, config, run: req.start === false ? null : runs.start(config, 'demo', 'cpu') };
      }
      const steps = req.steps ?? DEMO_RECIPE.steps;
      const config: RunConfig = {
        ...RUN_DEFAULTS, name: 'Demo: arithmetic word problems', modelId: model.id, datasetId: dataset.id, map: { ...DEMO_MAP }, quantize: true,
        maxSteps: steps, batch: DEMO_RECIPE.batch, lr: DEMO_RECIPE.lr, schedule: 'cosine', warmupSteps: Math.min(10, Math.floor(steps / 10)),
        seqLen: DEMO_RECIPE.seqLen, valFraction: 0, checkpointEvery: steps, provider: 'cpu',
        lora: { ...RUN_DEFAULTS.lora, rank: DEMO_RECIPE.rank, alpha: DEMO_RECIPE.alpha, dropout: 0 },
      };
      const run = req.start === false ? null : runs.start(config, 'demo', 'cpu');
      return { model, dataset, config, run };
    },

    listAdapters: async () => store.listAdapters(),
    importAdapter: async (req) => {
      const a = await library.importAdapter(req.path, req.baseModelId, req.name);
      bus.emit({ type: 'library-changed', what: 'adapters' });
      return a;
    },
    exportAdapter: async (req) => library.exportAdapter(adapterOf(req.source, null)!, req.dest),
    // Exports run as jobs (exports.ts): the API answers while one writes.
    exportMerged: async (req) => {
      const base = library.model(req.modelId);
      const out = emptyDestination(req.dest);
      return exports.run({ kind: 'merged', model: base.path, adapter: adapterOf(req.source, req.modelId)!, out }, out);
    },
    exportGguf: async (req) => {
      const base = library.model(req.modelId);
      const adapter = adapterOf(req.source, req.modelId);
      if (req.loraOnly && !adapter) throw new ServiceError('invalid_argument', 'loraOnly exports an adapter: choose a run or an adapter, not the base model', null);
      return exports.run({ kind: 'gguf', model: base.path, adapter, loraOnly: req.loraOnly ?? false, dtype: req.dtype ?? 'f16', out: req.dest, name: base.name }, req.dest);
    },
    exportOllama: async (req) => {
      const base = library.model(req.modelId);
      const outDir = emptyDestination(req.dest);
      return exports.run({
        kind: 'ollama', model: base.path, adapter: adapterOf(req.source, req.modelId), dtype: req.dtype ?? 'f16', outDir,
        separateAdapter: req.separateAdapter, modelName: req.name, name: base.name,
      }, outDir);
    },
    exportAccelerate: async (req) => {
      const outDir = emptyDestination(req.dest);
      return exports.run({ kind: 'accelerate', runDir: runs.run(req.runId).dir, outDir, gpus: req.gpus }, outDir);
    },
    pushToHub: async (req) => pushes.push(req),
    cancelPush: async (repo) => pushes.cancel(repo),

    generate: async (req) => {
      const model = library.model(req.modelId);
      const sides: ResolvedSide[] = [{ side: 'left', messages: req.left.messages, adapterDir: adapterOf(req.left.side, model.id) }];
      if (req.right) sides.push({ side: 'right', messages: req.right.messages, adapterDir: adapterOf(req.right.side, model.id) });
      for (const s of sides) {
        if (s.messages.at(-1)?.role !== 'user') throw new ServiceError('invalid_argument', `the ${s.side} conversation must end with the user's message`, null);
      }
      return { generationId: generation.generate(model.path, req, sides) };
    },
    stopGeneration: async (id) => generation.stop(id),
    batchCompare: async (req) => {
      const model = library.model(req.modelId);
      const ds = library.dataset(req.datasetId);
      const rows = await generation.batch(model.path, {
        left: adapterOf(req.left, model.id), right: adapterOf(req.right, model.id), dataset: ds.path,
        format: req.format ?? ds.format ?? undefined, map: req.map ?? ds.map ?? undefined, rows: req.rows, maxNewTokens: req.maxNewTokens, batchId: req.batchId,
      });
      const acc = (f: (r: (typeof rows)[number]) => boolean) => rows.filter(f).length / Math.max(1, rows.length);
      return {
        rows, leftAccuracy: acc((r) => r.leftCorrect), rightAccuracy: acc((r) => r.rightCorrect),
        differing: rows.flatMap((r, i) => (r.leftCorrect !== r.rightCorrect ? [i] : [])),
      };
    },
    saveComparison: async (req) => {
      library.model(req.modelId);
      const c = store.addComparison({
        modelId: req.modelId, left: req.left, right: req.right, leftLabel: sideLabel(req.left), rightLabel: sideLabel(req.right), messages: req.messages,
        leftOutput: req.leftOutput, rightOutput: req.rightOutput, sampling: req.sampling ?? null, maxNewTokens: req.maxNewTokens ?? null, rating: req.rating, notes: req.notes,
      });
      bus.emit({ type: 'library-changed', what: 'comparisons' });
      return c;
    },
    listComparisons: async (filter) => store.listComparisons().filter((c) => !filter.runId || [c.left, c.right].some((s) => s.kind === 'run' && s.runId === filter.runId)),

    listWeightCache: async () => weightCache.list(),
    removeWeightCacheEntry: async (id) => {
      const view = weightCache.remove(id);
      bus.emit({ type: 'library-changed', what: 'weight-cache' });
      return view;
    },
    clearWeightCache: async () => {
      const view = weightCache.clear();
      bus.emit({ type: 'library-changed', what: 'weight-cache' });
      return view;
    },
    // Native dialogs belong to the desktop shell (o.pickPath); browser mode types paths.
    pickPath: o.pickPath ?? (async () => null),
  };

  runs.recover();
  return {
    api, bus, dispatcher: createDispatcher(api, bus), store, runs, generation,
    close() {
      downloads.cancelAll();
      pushes.cancelAll();
      runs.shutdown();
      generation.close();
      exports.close();
      store.close();
    },
  };
}
