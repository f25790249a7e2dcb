// Which files of a Hub repository Finch downloads. A model folder is data: config, tokenizer files
// and safetensors weights; pickle files (*.bin, *.pt, *.pth, *.pkl, *.ckpt) can run code when
// loaded, so they are never downloaded. A dataset's data files are listed with their format and,
// where the path says so, their split.

import { extname } from 'node:path';
import { FILE_KINDS, type FileKind } from '../data/read/index.js';

/** The formats Finch's dataset readers take: Parquet, JSON, JSON Lines, CSV, TSV. */
export type DatasetFormat = FileKind;

/** A file of the repository as the Hub's tree listing describes it. */
export interface RepoFile {
  path: string;
  size: number;
  /** Git blob id (sha1 of "blob <size>\0" + content): how the Hub names a small file. */
  oid?: string;
  /** Large files (Git LFS / Xet) carry the sha256 of their content. */
  lfs?: { oid: string; size: number };
}

const PICKLE = /\.(bin|pt|pth|pkl|pickle|ckpt)$/i;

export const isPickle = (path: string): boolean => PICKLE.test(path);

export const PICKLE_NOTE = 'pickle file: never downloaded (loading pickle can run arbitrary code; Finch reads safetensors)';

/** Files at the root of a model repository that a Hugging Face model folder may need besides weights. */
const MODEL_SUPPORT_FILES = new Set([
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model', // SentencePiece model (protobuf, not pickle)
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
  'chat_template.json',
  'README.md',
  'LICENSE',
  'LICENSE.txt',
  'USE_POLICY.md',
]);

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/**
 * Splits a model repository's files into the support files to fetch first, and the rest skipped
 * with a reason. Weights are chosen afterwards (`weightFiles`), from the index when there is one.
 */
export function modelSupportFiles(files: readonly RepoFile[]): { wanted: RepoFile[]; skipped: { path: string; reason: string }[] } {
  const wanted: RepoFile[] = [];
  const skipped: { path: string; reason: string }[] = [];
  for (const f of files) {
    if (MODEL_SUPPORT_FILES.has(f.path) || f.path === SAFETENSORS_INDEX) wanted.push(f);
    else if (isPickle(f.path)) skipped.push({ path: f.path, reason: PICKLE_NOTE });
    else if (!f.path.endsWith('.safetensors') || f.path.includes('/')) skipped.push({ path: f.path, reason: 'not part of a Hugging Face model folder' });
  }
  return { wanted, skipped };
}

/**
 * The safetensors files that hold the model: the shards named by the index's weight_map when the
 * repository has one (so a stray consolidated.safetensors is not fetched twice the size), else
 * model.safetensors, else every top-level *.safetensors. Null when there is none.
 */
export function weightFiles(files: readonly RepoFile[], index: { weight_map?: Record<string, string> } | null): RepoFile[] | null {
  const byPath = new Map(files.map((f) => [f.path, f]));
  if (index?.weight_map) {
    const names = [...new Set(Object.values(index.weight_map))].sort();
    return names.map((n) => byPath.get(n) ?? { path: n, size: -1 });
  }
  const single = byPath.get('model.safetensors');
  if (single) return [single];
  const top = files.filter((f) => f.path.endsWith('.safetensors') && !f.path.includes('/'));
  return top.length ? top : null;
}

/** The data format a dataset file's name says, or null for files Finch does not read (README, scripts, archives). */
export function datasetFormat(path: string): DatasetFormat | null {
  if (/(^|\/)(dataset_infos?|dataset_dict|state)\.json$/i.test(path)) return null; // `datasets` metadata, not rows
  return FILE_KINDS[extname(path).toLowerCase()] ?? null;
}

// Split names as the `datasets` library recognises them in file and folder names: a word bounded
// by the start, the end, or a non-letter ("data/train-00000-of-00002.parquet", "test.jsonl").
const SPLIT_WORDS: [string, RegExp][] = [
  ['train', /(^|[^a-z])(train|training)(?![a-z])/],
  ['validation', /(^|[^a-z])(validation|valid|val|dev)(?![a-z])/],
  ['test', /(^|[^a-z])(test|testing|eval|evaluation)(?![a-z])/],
];

/** The split a data file's path names (the file name first, then its folders), or undefined. */
export function inferSplit(path: string): string | undefined {
  const parts = path.toLowerCase().split('/').reverse();
  for (const part of parts) {
    const hits = SPLIT_WORDS.filter(([, re]) => re.test(part)).map(([split]) => split);
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) return undefined; // "train_test_pairs.json": ambiguous
  }
  return undefined;
}

/** A repository-relative path that cannot escape the download folder. */
export function isSafeRelativePath(path: string): boolean {
  if (!path || path.startsWith('/') || path.includes('\\') || /^[a-zA-Z]:/.test(path)) return false;
  return path.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}
