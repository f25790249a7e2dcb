// Model folders in the Hugging Face cache, where `huggingface-cli download` and transformers leave
// every model a user already has:
//
//   <cache>/models--org--name/refs/main              the commit "main" pointed to ("a1b2…")
//   <cache>/models--org--name/snapshots/<commit>/    config.json, *.safetensors, ... each file a
//                                                    symbolic link into ../../blobs/<hash>
//   <cache>/models--org--name/blobs/<hash>           the bytes
//
// A snapshot folder is an ordinary model folder once its links are followed (util/regular-file.ts
// follows them). This module names what a cache folder is: `models--org--name` itself opens the
// snapshot refs/main points to, and either form gives the repository ("org/name") and the commit.

import * as fs from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { readRegularFile, readRegularFileSync } from '../util/regular-file.js';

export interface ModelFolder {
  /** The folder to read: `path` itself, or the snapshot a models--org--name folder points to. */
  dir: string;
  /** "org/name" for a Hugging Face cache folder, else null. */
  repo: string | null;
  /** The snapshot's commit for a cache folder, else null. */
  revision: string | null;
}

export class HfCacheError extends Error {
  override name = 'HfCacheError';
}

const REPO_FOLDER = /^models--(.+)$/;
/** A ref file holds one commit hash; anything longer is not a ref. */
const REF_LIMIT = 1024;

/** "models--org--name" -> "org/name" (the cache's own naming: "/" became "--"). */
export function repoOfCacheFolder(name: string): string | null {
  const m = REPO_FOLDER.exec(name);
  return m ? m[1]!.split('--').join('/') : null;
}

const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** What `path` is: a cache repository folder, one of its snapshots, or any other folder (as it is). */
function classify(path: string): { kind: 'repo' | 'snapshot' | 'plain'; repo: string | null; abs: string } {
  const abs = resolve(path);
  const own = repoOfCacheFolder(basename(abs));
  if (own && isDir(join(abs, 'snapshots'))) return { kind: 'repo', repo: own, abs };
  const parent = dirname(abs);
  const upper = repoOfCacheFolder(basename(dirname(parent)));
  if (upper && basename(parent) === 'snapshots') return { kind: 'snapshot', repo: upper, abs };
  return { kind: 'plain', repo: null, abs };
}

/** The snapshot a repository folder opens, from the text of refs/main (null when it has none). */
function snapshotOf(abs: string, ref: string | null): string {
  const snapshots = join(abs, 'snapshots');
  if (ref !== null) {
    const commit = ref.trim();
    if (!/^[\w.-]+$/.test(commit)) throw new HfCacheError(`${join(abs, 'refs', 'main')} does not hold a commit (got ${JSON.stringify(commit.slice(0, 80))})`);
    const dir = join(snapshots, commit);
    if (!isDir(dir)) throw new HfCacheError(`${join(abs, 'refs', 'main')} points to commit ${commit}, but ${dir} is missing; download the model again or pick one of the folders in ${snapshots}`);
    return dir;
  }
  const all = fs.readdirSync(snapshots).filter((n) => isDir(join(snapshots, n)));
  if (all.length === 1) return join(snapshots, all[0]!);
  throw new HfCacheError(all.length === 0
    ? `${abs} is a Hugging Face cache folder with no snapshots: the download did not finish`
    : `${abs} has no refs/main and ${all.length} snapshots (${all.join(', ')}); pick one of the folders in ${snapshots}`);
}

const refFile = (abs: string) => join(abs, 'refs', 'main');
const absent = (e: unknown) => (e as { problem?: string }).problem === 'missing';

/** Where the model in `path` is (a plain folder is returned as it is). */
export function resolveModelFolderSync(path: string): ModelFolder {
  const c = classify(path);
  if (c.kind === 'plain') return { dir: c.abs, repo: null, revision: null };
  if (c.kind === 'snapshot') return { dir: c.abs, repo: c.repo, revision: basename(c.abs) };
  let ref: string | null = null;
  try {
    ref = readRegularFileSync(refFile(c.abs), REF_LIMIT, { what: 'a ref file' }).toString('utf8');
  } catch (e) {
    if (!absent(e)) throw new HfCacheError((e as Error).message);
  }
  const dir = snapshotOf(c.abs, ref);
  return { dir, repo: c.repo, revision: basename(dir) };
}

/** resolveModelFolderSync without blocking on the ref file (the server's reads). */
export async function resolveModelFolder(path: string): Promise<ModelFolder> {
  const c = classify(path);
  if (c.kind !== 'repo') return resolveModelFolderSync(path);
  let ref: string | null = null;
  try {
    ref = (await readRegularFile(refFile(c.abs), REF_LIMIT, { what: 'a ref file' })).toString('utf8');
  } catch (e) {
    if (!absent(e)) throw new HfCacheError((e as Error).message);
  }
  const dir = snapshotOf(c.abs, ref);
  return { dir, repo: c.repo, revision: basename(dir) };
}
