// Downloading a model or dataset repository from the Hugging Face Hub into Finch's cache:
//   <cacheDir>/<models|datasets>/<owner>/<name>/<commit>/<files as in the repository>
// The revision is resolved to its commit first, so every file of one download comes from the same
// commit and a finished folder never changes. @huggingface/hub answers the repository info and the
// file tree; the bytes come from the resolve endpoint through the resumable transfer.

import { readFile, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { datasetInfo, listFiles, modelInfo } from '@huggingface/hub';
import { finchHome } from '../store/paths.js';
import { HubError } from './errors.js';
import {
  PICKLE_NOTE, SAFETENSORS_INDEX, datasetFormat, inferSplit, isPickle, isSafeRelativePath, modelSupportFiles, weightFiles,
  type DatasetFormat, type RepoFile,
} from './files.js';
import { delay, errorFromThrown, hubFetch, type HubKind, type HubTarget } from './http.js';
import { partPath, transferFile } from './transfer.js';

export type { DatasetFormat } from './files.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubAccess {
  /** "owner/name" (a dataset's id without the "datasets/" prefix). */
  repo: string;
  /** A branch, tag or commit; default "main". */
  revision?: string;
  /** Default: the HF_TOKEN environment variable. Needed for gated and private repositories. */
  token?: string;
  /** The Hub's address; default HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  signal?: AbortSignal;
}

export interface DownloadRepoOptions extends HubAccess {
  kind: HubKind;
  /**
   * Exact repository paths to download. Default: a model's config, tokenizer files and
   * safetensors weights (with the index); every data file of a dataset.
   */
  files?: string[];
  /** Default: <FINCH_HOME>/hub. */
  cacheDir?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Automatic resumes after a cut connection, per file (default 3; 0 = fail at the first cut). */
  retries?: number;
}

export interface DownloadProgress {
  /** 'start': the plan is known; 'file': a file begins; 'bytes': data arrived; 'file-done': a file is complete. */
  event: 'start' | 'file' | 'bytes' | 'file-done';
  file?: string;
  fileBytes: number;
  fileTotal: number;
  /** Bytes on disk over all files of this download, and their total. */
  bytes: number;
  total: number;
  filesDone: number;
  filesTotal: number;
  /** 'file': bytes already in the partial file, continued with an HTTP Range request. */
  resumedFrom?: number;
}

export interface DownloadedFile {
  path: string;
  size: number;
  localPath: string;
  /** Already complete in the cache: nothing was transferred. */
  cached: boolean;
  /** Bytes that came from an earlier partial file. */
  resumedFrom: number;
}

export interface SkippedFile {
  path: string;
  reason: string;
  /** A pickle file: never downloaded, whatever was asked. */
  pickle: boolean;
}

export interface DownloadResult {
  /** The local folder: for a model, a Hugging Face model folder that model/load.ts opens. */
  dir: string;
  repo: string;
  kind: HubKind;
  revision: string;
  /** The commit the revision pointed at. */
  commit: string;
  files: DownloadedFile[];
  /** Files of the repository left out, with why (pickle files always). */
  skipped: SkippedFile[];
  /** Bytes transferred by this call (less than the total when files were cached or resumed). */
  bytesReceived: number;
}

export interface DatasetFile {
  path: string;
  size: number;
  format: DatasetFormat;
  /** "train", "validation" or "test" when the path names it. */
  split?: string;
  /** Set when the file is on another branch than the one asked for (the Parquet conversion): pass it to downloadRepo. */
  revision?: string;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
// Branch and tag names as git allows them, minus anything that could change the URL's meaning.
const REVISION = /^(?!.*\.\.)[\w.\-/]+$/;
/** Files being transferred by this process (their final paths). */
const transferring = new Set<string>();
/** Free space kept beyond the download itself (temporary files, the store, the OS). */
const SPACE_MARGIN = 64 * 1024 * 1024;

interface Resolved {
  target: HubTarget;
  token: string | undefined;
  commit: string;
  files: RepoFile[];
}

function checkAccess(o: HubAccess, kind: HubKind): HubTarget & { token: string | undefined } {
  const repo = o.repo.replace(/^datasets\//, '');
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new HubError('bad_request', `"${o.repo}" is not a Hub repository id`, 'write it as owner/name, e.g. meta-llama/Llama-3.2-1B or meta-math/MetaMathQA');
  }
  const revision = o.revision ?? 'main';
  if (!REVISION.test(revision)) throw new HubError('bad_request', `"${revision}" is not a valid revision`, 'use a branch, tag or commit id');
  const token = o.token || process.env.HF_TOKEN || undefined;
  if (token !== undefined && !/^hf_\w+$/.test(token)) {
    throw new HubError('bad_request', 'the Hugging Face token does not look like one (tokens start with "hf_")', 'copy it again from https://huggingface.co/settings/tokens');
  }
  const endpoint = (o.endpoint || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  return { repo, kind, revision, endpoint, hasToken: token !== undefined, token };
}

/** The revision's commit and its file tree (files only), through @huggingface/hub. */
async function resolveRepo(o: HubAccess, kind: HubKind): Promise<Resolved> {
  const { token, ...target } = checkAccess(o, kind);
  const common = { hubUrl: target.endpoint, accessToken: token, revision: target.revision, fetch: hubFetch(target, o.signal) };
  let commit: string;
  try {
    const info = kind === 'model'
      ? await modelInfo({ ...common, name: target.repo, additionalFields: ['sha'] })
      : await datasetInfo({ ...common, name: target.repo, additionalFields: ['sha'] });
    commit = info.sha;
    if (!/^[0-9a-f]{40}$/.test(commit ?? '')) throw new HubError('network', `the Hub gave no commit for ${kind} ${target.repo} at "${target.revision}"`, 'try again later');
    const files: RepoFile[] = [];
    for await (const entry of listFiles({ ...common, repo: { type: kind, name: target.repo }, revision: commit, recursive: true })) {
      if (entry.type !== 'file') continue;
      if (!isSafeRelativePath(entry.path)) throw new HubError('integrity', `${kind} ${target.repo} lists an unsafe file path "${entry.path}"`, 'report it to the repository owner');
      files.push({ path: entry.path, size: entry.size, oid: entry.oid, ...(entry.lfs ? { lfs: { oid: entry.lfs.oid, size: entry.lfs.size } } : {}) });
    }
    return { target, token, commit, files };
  } catch (e) {
    throw errorFromThrown(e, target, o.signal);
  }
}

/** The branch where the Hub keeps its Parquet conversion of a dataset. */
export const PARQUET_CONVERSION = 'refs/convert/parquet';

/**
 * The data files of a dataset repository, with format and split. A dataset without data files (one
 * built by a loading script), asked for without a revision, lists the Hub's Parquet conversion
 * instead; those files carry `revision` for downloadRepo.
 */
export async function listDatasetFiles(o: HubAccess): Promise<DatasetFile[]> {
  const { files } = await resolveRepo(o, 'dataset');
  const data = dataFilesOf(files);
  if (data.length || o.revision) return data;
  try {
    const converted = await resolveRepo({ ...o, revision: PARQUET_CONVERSION }, 'dataset');
    return dataFilesOf(converted.files).map((f) => ({ ...f, revision: PARQUET_CONVERSION }));
  } catch (e) {
    if (e instanceof HubError && e.code === 'revision_not_found') return [];
    throw e;
  }
}

function dataFilesOf(files: readonly RepoFile[]): DatasetFile[] {
  const out: DatasetFile[] = [];
  for (const f of files) {
    const format = datasetFormat(f.path);
    if (!format || isPickle(f.path)) continue;
    const split = inferSplit(f.path);
    out.push({ path: f.path, size: f.size, format, ...(split ? { split } : {}) });
  }
  return out;
}

const resolveUrl = (t: HubTarget, commit: string, path: string): string =>
  `${t.endpoint}/${t.kind === 'dataset' ? 'datasets/' : ''}${t.repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;

/** Bytes already on disk for a file: complete, or partial. */
async function bytesOnDisk(dest: string, size: number): Promise<{ complete: boolean; bytes: number }> {
  const done = await stat(dest).catch(() => null);
  if (done && done.size === size) return { complete: true, bytes: size };
  const part = await stat(partPath(dest)).catch(() => null);
  return { complete: false, bytes: part && part.size <= size ? part.size : 0 };
}

/** Free bytes on the file system that holds `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number> {
  let probe = dir;
  for (;;) {
    try {
      const s = await statfs(probe);
      return s.bavail * s.bsize;
    } catch (e) {
      const parent = join(probe, '..');
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === probe) throw e;
      probe = parent;
    }
  }
}

/** Runs a transfer again after a cut connection (it resumes from its part file), up to `retries` times. */
async function withResumes<T>(transfer: () => Promise<T>, retries: number, target: HubTarget, signal: AbortSignal | undefined): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await transfer();
    } catch (e) {
      const err = errorFromThrown(e, target, signal);
      if (err.code !== 'network' || attempt >= retries) throw err;
      await delay(500 * 2 ** attempt, signal).catch(() => undefined); // a cancel surfaces from the next try
    }
  }
}

const formatBytes = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`;

/** Downloads a repository (or the chosen files of it) into the cache; see DownloadRepoOptions. */
export async function downloadRepo(o: DownloadRepoOptions): Promise<DownloadResult> {
  if (o.kind !== 'model' && o.kind !== 'dataset') throw new HubError('bad_request', `kind must be "model" or "dataset", got ${JSON.stringify(o.kind)}`);
  const { target, token, commit, files } = await resolveRepo(o, o.kind);
  const [owner, name = owner] = target.repo.split('/');
  const dir = join(o.cacheDir ?? join(finchHome(), 'hub'), `${o.kind}s`, owner!, name!, commit);
  const byPath = new Map(files.map((f) => [f.path, f]));
  const skipped: Omit<SkippedFile, 'pickle'>[] = [];
  const fetchedWhilePlanning = new Set<string>();
  let bytesReceived = 0;
  let plan: RepoFile[];

  if (o.files?.length) {
    plan = o.files.map((p) => {
      if (isPickle(p)) throw new HubError('pickle_refused', `${p} of ${o.kind} ${target.repo} is a pickle file, which Finch never downloads (loading pickle can run arbitrary code)`, 'choose the .safetensors version of the weights');
      const f = byPath.get(p);
      if (!f) throw new HubError('not_found', `${p} does not exist in ${o.kind} ${target.repo} at revision "${target.revision}"`, `see the files on ${target.endpoint}/${o.kind === 'dataset' ? 'datasets/' : ''}${target.repo}/tree/${target.revision}`);
      return f;
    });
  } else if (o.kind === 'dataset') {
    const data = new Set(dataFilesOf(files).map((f) => f.path));
    plan = files.filter((f) => data.has(f.path));
    for (const f of files) if (!data.has(f.path)) skipped.push({ path: f.path, reason: isPickle(f.path) ? PICKLE_NOTE : 'not a data file Finch reads (Parquet, JSON, JSONL, CSV, TSV)' });
    if (!plan.length) throw new HubError('not_found', `dataset ${target.repo} has no Parquet, JSON, JSONL or CSV files`, `a dataset built by a loading script cannot be read as is; the Hub's Parquet conversion may exist: finch pull ${target.repo}@${PARQUET_CONVERSION} --dataset --list`);
  } else {
    const support = modelSupportFiles(files);
    skipped.push(...support.skipped);
    // The weights are the shards the index names, so the (small) index is fetched before planning.
    const index = byPath.get(SAFETENSORS_INDEX);
    let indexJson: { weight_map?: Record<string, string> } | null = null;
    if (index) {
      const dest = join(dir, SAFETENSORS_INDEX);
      if (!(await bytesOnDisk(dest, index.size)).complete) {
        const indexTarget = { ...target, file: index.path };
        const r = await withResumes(() => transferFile({ url: resolveUrl(target, commit, index.path), dest, file: index, target: indexTarget, token, signal: o.signal }),
          o.retries ?? 3, indexTarget, o.signal);
        bytesReceived += r.received;
        fetchedWhilePlanning.add(index.path);
      }
      try {
        indexJson = JSON.parse(await readFile(dest, 'utf8')) as { weight_map?: Record<string, string> };
      } catch (e) {
        throw new HubError('integrity', `${SAFETENSORS_INDEX} of ${o.kind} ${target.repo} is not valid JSON (${(e as Error).message})`, 'the repository is broken at this revision; try another');
      }
    }
    const weights = weightFiles(files, indexJson);
    if (!weights) {
      const pickles = files.filter((f) => isPickle(f.path)).map((f) => f.path);
      throw new HubError('no_weights', pickles.length
        ? `model ${target.repo} has only pickle weights (${pickles.slice(0, 3).join(', ')}); Finch never loads pickle, which can run arbitrary code`
        : `model ${target.repo} has no *.safetensors weights`, 'look for a safetensors version of this model on the Hub');
    }
    const missing = weights.find((w) => w.size < 0);
    if (missing) throw new HubError('integrity', `${SAFETENSORS_INDEX} of ${target.repo} names ${missing.path}, which the repository does not have`, 'the repository is incomplete at this revision; try another');
    for (const f of files) {
      if (f.path.endsWith('.safetensors') && !f.path.includes('/') && !weights.includes(f)) skipped.push({ path: f.path, reason: `not one of the shards ${SAFETENSORS_INDEX} names` });
    }
    plan = [...support.wanted, ...weights];
  }

  let total = 0;
  let bytes = 0;
  let filesDone = 0;
  const results: DownloadedFile[] = [];
  const progress = (event: DownloadProgress['event'], file: RepoFile | undefined, fileBytes: number, extra: Partial<DownloadProgress> = {}) =>
    o.onProgress?.({ event, file: file?.path, fileBytes, fileTotal: file?.size ?? 0, bytes, total, filesDone, filesTotal: plan.length, ...extra });

  const fetchOne = async (f: RepoFile): Promise<void> => {
    const dest = join(dir, ...f.path.split('/'));
    const before = await bytesOnDisk(dest, f.size);
    if (before.complete) {
      results.push({ path: f.path, size: f.size, localPath: dest, cached: !fetchedWhilePlanning.has(f.path), resumedFrom: 0 });
      filesDone++;
      progress('file-done', f, f.size);
      return;
    }
    // One transfer of a file at a time in this process (a second click in the app must not write the same .part).
    if (transferring.has(dest)) throw new HubError('busy', `${f.path} of ${o.kind} ${target.repo} is already being downloaded (${dest})`, 'wait for that download to finish, or cancel it');
    transferring.add(dest);
    try {
      await transferWithRetries(f, dest, before.bytes);
    } finally {
      transferring.delete(dest);
    }
  };

  const transferWithRetries = async (f: RepoFile, dest: string, onDisk: number): Promise<void> => {
    const base = bytes - onDisk; // `bytes` counts this file's partial bytes already
    progress('file', f, onDisk, { resumedFrom: onDisk });
    let resumedFrom = onDisk, attempts = 0;
    await withResumes(async () => {
      const r = await transferFile({
        url: resolveUrl(target, commit, f.path), dest, file: f, target: { ...target, file: f.path }, token, signal: o.signal,
        onBytes: (fileBytes, chunk) => {
          bytes = base + fileBytes;
          bytesReceived += chunk;
          progress('bytes', f, fileBytes);
        },
      });
      if (attempts++ === 0) resumedFrom = r.resumedFrom; // 0 when the server ignored the Range request
    }, o.retries ?? 3, { ...target, file: f.path }, o.signal);
    bytes = base + f.size;
    filesDone++;
    results.push({ path: f.path, size: f.size, localPath: dest, cached: false, resumedFrom });
    progress('file-done', f, f.size);
  };

  // Counts what is already on disk, and refuses to start what the disk cannot hold.
  let needed = 0;
  for (const f of plan) {
    const on = await bytesOnDisk(join(dir, ...f.path.split('/')), f.size);
    total += f.size;
    bytes += on.bytes;
    needed += f.size - on.bytes;
  }
  const free = await freeBytes(dir);
  if (needed + SPACE_MARGIN > free) {
    throw new HubError('no_space', `${o.kind} ${target.repo} needs ${formatBytes(needed)} more in ${dir}, but only ${formatBytes(free)} are free`,
      'free some disk space, or point FINCH_HOME (or the cache folder in Settings) at a larger disk');
  }
  progress('start', undefined, 0);
  for (const f of plan) await fetchOne(f);
  return {
    dir, repo: target.repo, kind: o.kind, revision: target.revision, commit, files: results,
    skipped: skipped.map((x) => ({ ...x, pickle: isPickle(x.path) })), bytesReceived,
  };
}
