// The library: model folders, datasets and adapters the user named, described once when added
// (architecture, size, format) and kept in the store. The API reads only paths the user gave:
// a folder picked in a dialog or typed in browser mode, or files Finch itself wrote.

import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import type {
  AdapterSummary, DatasetPreview, DatasetSummary, ExportResult, ModelDetails, ModelSide, ModelSummary, PreviewRequest, RunSummary,
} from '../../src-shared/api.js';
import { prepareDataset } from '../data/dataset.js';
import { resolveFormat } from '../data/formats.js';
import { previewDataset as readPreview } from '../data/preview.js';
import { openRows } from '../data/read/index.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadPeftAdapter } from '../model/adapter.js';
import { loadModelConfig } from '../model/config.js';
import { loadTokenizer } from '../model/tokenizer.js';
import type { ModelConfig } from '../model/types.js';
import { frozenBytes, projectionShapes } from '../train/memory.js';
import { latestCheckpoint } from '../train/checkpoint.js';
import type { Store } from '../store/store.js';
import { ServiceError } from './errors.js';

/** Parameters of a Llama-family checkpoint from its config. */
export function parameterCount(c: ModelConfig): number {
  return c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2)
    + c.numLayers * (2 * c.hiddenSize * c.numHeads * c.headDim + 2 * c.hiddenSize * c.numKvHeads * c.headDim + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize)
    + c.hiddenSize;
}

function folderFiles(dir: string): { name: string; bytes: number }[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => ({ name: e.name, bytes: statSync(join(dir, e.name)).size }));
}

/** Reads what the library shows of a model folder; throws bad_model naming the missing piece. */
export function describeModel(path: string): Omit<ModelSummary, 'id' | 'addedAt' | 'name' | 'source' | 'repo' | 'revision'> & { config: ModelConfig } {
  const dir = resolve(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ServiceError('not_found', `model folder not found: ${dir}`, 'pick the folder that holds config.json, tokenizer.json and the *.safetensors files');
  const files = folderFiles(dir);
  if (!files.some((f) => f.name.endsWith('.safetensors'))) {
    const pickled = files.find((f) => /\.(bin|pt|pth|ckpt)$/.test(f.name));
    throw new ServiceError('bad_model', `${dir}: no *.safetensors weights${pickled ? ` (only ${pickled.name}, a pickle file, which Finch never loads: it can run code)` : ''}`,
      'download the safetensors version of the model (most Hugging Face repositories have one)');
  }
  const config = loadModelConfig(dir);
  const tokenizer = loadTokenizer(dir);
  return {
    path: dir, modelType: config.modelType, parameters: parameterCount(config), sizeBytes: files.reduce((s, f) => s + f.bytes, 0),
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

  addModel(path: string, o: { name?: string; source: ModelSummary['source']; repo?: string | null; revision?: string | null }): ModelSummary {
    const d = describeModel(path);
    const existing = this.store.modelByPath(d.path);
    if (existing) return existing;
    const { config: _config, ...summary } = d;
    return this.store.addModel({ ...summary, name: o.name ?? o.repo ?? basename(d.path), source: o.source, repo: o.repo ?? null, revision: o.revision ?? null });
  }

  modelDetails(id: string): ModelDetails {
    const m = this.model(id);
    const { config: c } = describeModel(m.path);
    const weights = (quantize: boolean) => c.numLayers * projectionShapes(c).reduce((s, [n, k]) => s + frozenBytes(n, k, quantize, 32), 0)
      + c.vocabSize * c.hiddenSize * 4 + (c.tieWordEmbeddings ? 0 : frozenBytes(c.vocabSize, c.hiddenSize, quantize, 32));
    return {
      ...m,
      architecture: {
        hiddenSize: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, intermediateSize: c.intermediateSize,
        vocabSize: c.vocabSize, maxPositions: c.maxPositionEmbeddings, ropeTheta: c.ropeTheta, tiedEmbeddings: c.tieWordEmbeddings,
      },
      files: folderFiles(m.path),
      weightBytes4bit: weights(true),
      weightBytes32bit: weights(false),
    };
  }

  async addDataset(path: string, o: Pick<DatasetSummary, 'source' | 'repo' | 'split'> & { name?: string; format?: DatasetSummary['format']; map?: DatasetSummary['map'] }): Promise<DatasetSummary> {
    const file = resolve(path);
    if (!existsSync(file) || !statSync(file).isFile()) throw new ServiceError('not_found', `dataset file not found: ${file}`, 'pick a .jsonl, .json, .csv, .tsv or .parquet file');
    const { kind, rows } = await openRows(file, { onBadRow: 'skip' });
    let format: DatasetSummary['format'] = o.format ?? null;
    for await (const { row } of rows) {
      try {
        format = resolveFormat(file, row, { format: o.format ?? undefined, map: o.map ?? undefined }).name;
      } catch {
        format = null; // needs a column mapping: the preview says which columns it found
      }
      break;
    }
    return this.store.addDataset({
      name: o.name ?? basename(file, extname(file)), path: file, source: o.source, repo: o.repo, split: o.split,
      fileKind: kind, sizeBytes: statSync(file).size, format, map: o.map ?? null,
    });
  }

  async preview(req: PreviewRequest): Promise<DatasetPreview> {
    const ds = req.datasetId ? this.dataset(req.datasetId) : null;
    const file = ds ? ds.path : resolve(req.path!);
    if (!existsSync(file)) throw new ServiceError('not_found', `dataset file not found: ${file}`, null);
    const format = req.format ?? ds?.format ?? undefined, map = req.map ?? ds?.map ?? undefined;
    const tokenizer = req.modelId ? loadTokenizer(this.model(req.modelId).path) : undefined;
    const seqLen = req.seqLen ?? 512;
    const p = await readPreview(file, { rows: req.rows ?? 20, tokenizer, seqLen, format, map, trainOn: req.trainOn, template: req.template });
    const sampleRow = p.rows.find((r) => r.rendered);
    let lengths: DatasetPreview['lengths'] = null;
    if (tokenizer && p.format) {
      // Untruncated lengths of the first statsRows rows: the histogram shows what seqLen would cut.
      const prep = await prepareDataset(file, tokenizer, {
        seqLen: 1 << 20, valFraction: 0, format, map, trainOn: req.trainOn, template: req.template ?? 'auto', maxRows: req.statsRows ?? 2000, onBadRow: 'skip',
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

  importAdapter(path: string, baseModelId: string, name?: string): AdapterSummary {
    const base = this.model(baseModelId);
    const dir = resolve(path);
    const cfg = loadModelConfig(base.path);
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

  exportAdapter(adapterDir: string, dest: string): ExportResult {
    const out = emptyDestination(dest);
    mkdirSync(out, { recursive: true });
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) cpSync(join(adapterDir, f), join(out, f));
    return { path: out, files: folderFiles(out) };
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
  const lo = Math.min(...values), hi = Math.max(...values), width = Math.max(1, Math.ceil((hi - lo + 1) / bins));
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
