// The library: model folders, datasets and adapters the user named, described once when added
// (architecture, size, format) and kept in the store. The API reads only paths the user gave:
// a folder picked in a dialog or typed in browser mode, or files Finch itself wrote. Every read
// here is asynchronous and bounded (util/regular-file.ts), so one bad path never holds up the
// server's other calls, and a dataset is only looked at through a window: whole-dataset work
// belongs to jobs.

import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type {
  AdapterSummary, DatasetPreview, DatasetSummary, ExportResult, ModelDetails, ModelSide, ModelSummary, PreviewRequest, RunSummary,
} from '../../src-shared/api.js';
import { prepareDataset } from '../data/dataset.js';
import { resolveFormat } from '../data/formats.js';
import { previewDataset as readPreview } from '../data/preview.js';
import { openRows } from '../data/read/index.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadPeftAdapter } from '../model/adapter.js';
import { loadModelConfigAsync, parameterCount } from '../model/config.js';
import { resolveModelFolder } from '../model/hf-cache.js';
import { Checkpoint } from '../model/safetensors.js';
import { loadTokenizerAsync } from '../model/tokenizer.js';
import type { ModelConfig } from '../model/types.js';
import { checkWeightsMatchConfig } from '../model/validate.js';
import { frozenBytes, projectionShapes } from '../train/memory.js';
import { latestCheckpoint } from '../train/checkpoint.js';
import type { Store } from '../store/store.js';
import { READ_LIMITS, sizeText, specialKind } from '../util/regular-file.js';
import { ServiceError } from './errors.js';

export { parameterCount };

/**
 * The regular files of a folder (symbolic links followed, as a Hugging Face snapshot's files are
 * links into blobs/); with `special`, what the other entries are ("model.safetensors" -> "a FIFO").
 */
async function folderFiles(dir: string, special?: Map<string, string>): Promise<{ name: string; bytes: number }[]> {
  const out: { name: string; bytes: number }[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name)).catch(() => null);
    if (st?.isFile()) out.push({ name, bytes: st.size });
    else special?.set(name, st ? specialKind(st)! : 'a dangling symbolic link');
  }
  return out;
}

/** The model folder `path` names (a Hugging Face cache folder opens its snapshot), or not_found. */
async function modelFolder(path: string) {
  const given = resolve(path);
  const st = await stat(given).catch(() => null);
  if (!st?.isDirectory()) {
    throw new ServiceError('not_found', st ? `${given} is not a folder but ${specialKind(st) ?? 'a file'}` : `model folder not found: ${given}`,
      'pick the folder that holds config.json, tokenizer.json and the *.safetensors files');
  }
  return resolveModelFolder(given);
}

export type ModelDescription = Omit<ModelSummary, 'id' | 'addedAt' | 'name' | 'source'> & { config: ModelConfig };

/**
 * Reads what the library shows of a model folder, and checks it can be used: config.json within
 * Finch's limits, a tokenizer, and safetensors headers that match the config and their files'
 * lengths (no tensor data is read). Throws bad_model naming the missing or wrong piece.
 */
export async function describeModel(path: string): Promise<ModelDescription> {
  const { dir, repo, revision } = await modelFolder(path);
  const special = new Map<string, string>();
  const files = await folderFiles(dir, special);
  if (!files.some((f) => f.name.endsWith('.safetensors'))) {
    const odd = [...special].find(([name]) => name.endsWith('.safetensors'));
    if (odd) throw new ServiceError('bad_model', `${join(dir, odd[0])} is ${odd[1]}, not a regular file`, 'point the model at a folder whose weights are regular files (or links to them)');
    const pickled = files.find((f) => /\.(bin|pt|pth|ckpt)$/.test(f.name));
    throw new ServiceError('bad_model', `${dir}: no *.safetensors weights${pickled ? ` (only ${pickled.name}, a pickle file, which Finch never loads: it can run code)` : ''}`,
      'download the safetensors version of the model (most Hugging Face repositories have one)');
  }
  const config = await loadModelConfigAsync(dir);
  const tokenizer = await loadTokenizerAsync(dir);
  const weights = await Checkpoint.openAsync(dir);
  try {
    checkWeightsMatchConfig(config, weights, join(dir, 'config.json'), tokenizer.vocabSize);
  } finally {
    weights.close();
  }
  return {
    path: dir, repo, revision, modelType: config.modelType, parameters: parameterCount(config), sizeBytes: files.reduce((s, f) => s + f.bytes, 0),
    dtype: config.torchDtype, hasChatTemplate: tokenizer.hasChatTemplate, config,
  };
}

export class Library {
  constructor(private readonly store: Store) {}

  model(id: string): ModelSummary {
    const m = this.store.model(id);
    if (!m) throw new ServiceError('not_found', `no model with id ${id} in the library`, 'refresh the model list');
    return m;
  }

  dataset(id: string): DatasetSummary {
    const d = this.store.dataset(id);
    if (!d) throw new ServiceError('not_found', `no dataset with id ${id} in the library`, 'refresh the dataset list');
    return d;
  }

  /** Adds the model in `path` (a folder, or a Hugging Face cache folder); a model already in the library is returned as it is. */
  async addModel(path: string, o: { name?: string; source: ModelSummary['source']; repo?: string | null; revision?: string | null }): Promise<ModelSummary> {
    const existing = this.store.modelByPath((await modelFolder(path)).dir);
    if (existing) return existing;
    const { config: _config, ...d } = await describeModel(path);
    const repo = o.repo ?? d.repo, revision = o.revision ?? d.revision;
    return this.store.addModel({ ...d, name: o.name ?? repo ?? basename(d.path), source: o.source, repo, revision });
  }

  async modelDetails(id: string): Promise<ModelDetails> {
    const m = this.model(id);
    const c = await loadModelConfigAsync(m.path);
    const weights = (quantize: boolean) => c.numLayers * projectionShapes(c).reduce((s, [n, k]) => s + frozenBytes(n, k, quantize, 32), 0)
      + c.vocabSize * c.hiddenSize * 4 + (c.tieWordEmbeddings ? 0 : frozenBytes(c.vocabSize, c.hiddenSize, quantize, 32));
    return {
      ...m,
      architecture: {
        hiddenSize: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, intermediateSize: c.intermediateSize,
        vocabSize: c.vocabSize, maxPositions: c.maxPositionEmbeddings, ropeTheta: c.ropeTheta, tiedEmbeddings: c.tieWordEmbeddings,
      },
      files: await folderFiles(m.path),
      weightBytes4bit: weights(true),
      weightBytes32bit: weights(false),
    };
  }

  /**
   * Adds a dataset file after a look at its first rows (within READ_LIMITS.previewWindow): a file
   * with no rows (empty, a header alone, an empty array, only bad rows) is refused, saying why. A
   * file already in the library is returned as it is; asked for with another format or column
   * map, it is a conflict (the run's own settings choose those).
   */
  async addDataset(path: string, o: Pick<DatasetSummary, 'source' | 'repo' | 'split'> & { name?: string; format?: DatasetSummary['format']; map?: DatasetSummary['map'] }): Promise<DatasetSummary> {
    const file = resolve(path);
    const st = await stat(file).catch(() => null);
    if (!st) throw new ServiceError('not_found', `dataset file not found: ${file}`, 'pick a .jsonl, .json, .csv, .tsv or .parquet file');
    const existing = this.store.datasetByPath(file);
    if (existing) {
      const same = (o.format == null || o.format === existing.format) && (o.map == null || JSON.stringify(o.map) === JSON.stringify(existing.map));
      if (same) return existing;
      throw new ServiceError('conflict', `${file} is already in the library as "${existing.name}" with ${existing.map ? `the column map ${JSON.stringify(existing.map)}` : `format ${existing.format ?? '(to be mapped)'}`}`,
        'use that entry: a run\'s own format and column map settings override the library\'s; or remove it first to add it again');
    }
    const { kind, bad, rows } = await openRows(file, { onBadRow: 'skip', window: READ_LIMITS.previewWindow });
    let first: { row: Record<string, unknown> } | null = null;
    for await (const r of rows) {
      first = r;
      break;
    }
    if (!first) {
      const cut = st.size > READ_LIMITS.previewWindow ? ` in its first ${sizeText(READ_LIMITS.previewWindow)}` : '';
      const why = st.size === 0 ? 'the file is empty (0 bytes)'
        : bad.count ? `no readable row${cut}: ${bad.first.length ? `${bad.unit} ${bad.first[0]!.line}: ${bad.first[0]!.reason}` : 'every row is bad'}`
        : `no rows${cut} (${kind === 'csv' || kind === 'tsv' ? 'a header line alone' : kind === 'parquet' ? 'the table is empty' : 'nothing but blank lines or an empty array'})`;
      throw new ServiceError('bad_dataset', `${file}: ${why}`, 'a dataset needs at least one example; check that this is the file you meant');
    }
    let format: DatasetSummary['format'] = o.format ?? null;
    try {
      format = resolveFormat(file, first.row, { format: o.format ?? undefined, map: o.map ?? undefined }).name;
    } catch {
      format = null; // needs a column mapping: the preview says which columns it found
    }
    return this.store.addDataset({
      name: o.name ?? basename(file, extname(file)), path: file, source: o.source, repo: o.repo, split: o.split,
      fileKind: kind, sizeBytes: st.size, format, map: o.map ?? null,
    });
  }

  async preview(req: PreviewRequest): Promise<DatasetPreview> {
    const ds = req.datasetId ? this.dataset(req.datasetId) : null;
    const file = ds ? ds.path : resolve(req.path!);
    if (!existsSync(file)) throw new ServiceError('not_found', `dataset file not found: ${file}`, null);
    const format = req.format ?? ds?.format ?? undefined, map = req.map ?? ds?.map ?? undefined;
    const tokenizer = req.modelId ? await loadTokenizerAsync(this.model(req.modelId).path) : undefined;
    const seqLen = req.seqLen ?? 512;
    // Rows and lengths come from the file's first READ_LIMITS.previewWindow bytes at most.
    const window = READ_LIMITS.previewWindow;
    const p = await readPreview(file, { rows: req.rows ?? 20, tokenizer, seqLen, format, map, trainOn: req.trainOn, template: req.template, window });
    const sampleRow = p.rows.find((r) => r.rendered);
    let lengths: DatasetPreview['lengths'] = null;
    if (tokenizer && p.format) {
      // Untruncated lengths of the first statsRows rows: the histogram shows what seqLen would cut.
      const prep = await prepareDataset(file, tokenizer, {
        seqLen: 1 << 20, valFraction: 0, format, map, trainOn: req.trainOn, template: req.template ?? 'auto', maxRows: req.statsRows ?? 2000, onBadRow: 'skip', window,
      });
      const counts = Array.from({ length: prep.train.length }, (_, i) => prep.train.tokenCount(i));
      const s = prep.stats.lengths;
      lengths = {
        rows: prep.stats.rows, badRows: prep.stats.badRows, min: s.min, mean: s.mean, p50: s.p50, p95: s.p95, max: s.max,
        overSeqLen: counts.filter((n) => n > seqLen).length, histogram: histogram(counts, 20),
      };
    }
    return {
      file: p.file, fileKind: p.fileKind, columns: p.columns, format: p.format, formatError: p.formatError, suggestedMap: p.suggestedMap,
      template: p.template, notes: p.notes,
      rows: p.rows.map((r) => ({ line: r.line, raw: r.raw, error: r.error })),
      sample: sampleRow?.rendered ? {
        line: sampleRow.line, spans: sampleRow.rendered.spans, tokens: sampleRow.rendered.tokens, trainedTokens: sampleRow.rendered.trainedTokens,
        pair: sampleRow.pair ? { prompt: sampleRow.pair.prompt, chosen: sampleRow.pair.chosen, rejected: sampleRow.pair.rejected } : null,
      } : null,
      lengths,
      badRows: p.badRows.map((b) => ({ line: b.line, message: b.reason })),
    };
  }

  async importAdapter(path: string, baseModelId: string, name?: string): Promise<AdapterSummary> {
    const base = this.model(baseModelId);
    const dir = resolve(path);
    const cfg = await loadModelConfigAsync(base.path);
    const a = loadPeftAdapter(dir, cfg); // checks every tensor's shape against the base
    return this.store.addAdapter({
      name: name ?? basename(dir), path: dir, baseModelId, origin: 'imported', runId: null,
      rank: a.spec.rank, alpha: a.spec.alpha, targets: [...a.spec.targets],
    });
  }

  /** The adapter folder a comparison side or export source names (null for the base model). */
  adapterDir(side: ModelSide, modelId: string | null, run: (id: string) => RunSummary): string | null {
    if (side.kind === 'base') return null;
    if (side.kind === 'adapter') {
      const a = this.store.adapter(side.adapterId);
      if (!a) throw new ServiceError('not_found', `no adapter with id ${side.adapterId}`, null);
      if (modelId && a.baseModelId !== modelId) throw new ServiceError('conflict', `adapter "${a.name}" was made for another base model`, 'pick the base model it was imported for');
      return a.path;
    }
    const r = run(side.runId);
    if (modelId && r.modelId !== modelId) throw new ServiceError('conflict', `run "${r.name}" fine-tuned another base model`, 'pick that run\'s base model');
    if (side.step !== undefined) {
      const ck = this.store.checkpoints(r.id).find((c) => c.step === side.step);
      if (!ck || !existsSync(ck.path)) throw new ServiceError('not_found', `run "${r.name}" has no checkpoint at step ${side.step} (older ones are pruned)`, 'pick one of the steps listed in the run details');
      return ck.path;
    }
    const dir = r.adapterPath ?? latestCheckpoint(r.dir);
    if (!dir || !existsSync(join(dir, ADAPTER_WEIGHTS))) throw new ServiceError('conflict', `run "${r.name}" has no adapter yet (status ${r.status}, step ${r.step})`, 'wait for its first checkpoint');
    return dir;
  }

  async exportAdapter(adapterDir: string, dest: string): Promise<ExportResult> {
    const out = emptyDestination(dest);
    mkdirSync(out, { recursive: true });
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) cpSync(join(adapterDir, f), join(out, f));
    return { path: out, files: await folderFiles(out) };
  }
}

/** An export folder must be new or empty: Finch never overwrites a folder the user has filled. */
export function emptyDestination(dest: string): string {
  const out = resolve(dest);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new ServiceError('conflict', `${out} is a file, not a folder`, 'choose a new folder name');
    if (readdirSync(out).length) throw new ServiceError('conflict', `${out} is not empty`, 'choose a new or empty folder');
  }
  return out;
}

/** About `bins` equal-width bins from the shortest to the longest value. */
function histogram(values: number[], bins: number): { from: number; to: number; count: number }[] {
  if (!values.length) return [];
  // A loop, not Math.min(...values): statsRows allows 100k values, past what a call's arguments may hold.
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const width = Math.max(1, Math.ceil((hi - lo + 1) / bins));
  const out = Array.from({ length: Math.ceil((hi - lo + 1) / width) }, (_, i) => ({ from: lo + i * width, to: lo + (i + 1) * width, count: 0 }));
  for (const v of values) out[Math.floor((v - lo) / width)]!.count++;
  return out;
}

export const removeFilesUnder = (root: string, dir: string): boolean => {
  const r = resolve(root) + '/', d = resolve(dir);
  if (!d.startsWith(r)) return false; // only files Finch made, under its own folders
  rmSync(d, { recursive: true, force: true });
  return true;
};
