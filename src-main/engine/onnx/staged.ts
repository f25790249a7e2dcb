// A graph written to a private folder for one session to load from: the way big models reach ONNX
// Runtime without a second copy. In memory (serializeModel) every weight would sit in JS twice (the
// graph's bytes and the concatenated external data) while ORT copies it a third time; from a file,
// weights stream through JS one at a time and ORT maps the aligned external data in place.
// Initializers that already sit in a file (a checkpoint's tensors) are reached through a link in
// the folder, as ONNX Runtime reads external data only from inside the model's folder.

import { copyFileSync, linkSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Graph } from '../graph/graph.js';
import { Session, type SessionOptions } from '../runtime/session.js';
import { serializeModel, writeModelFile } from './writer.js';

export interface StagedModel {
  /** The .onnx path to create the session from. */
  path: string;
  /**
   * Removes the folder. Call it once the session exists: on Linux and macOS a mapped file stays
   * readable after removal; where removal fails (Windows keeps mapped files), call it again after
   * the session is released. Returns whether the folder is gone.
   */
  dispose(): boolean;
}

/** True when some initializer is read at write time or from a file (a checkpoint's frozen weights). */
export const hasLazyWeights = (g: Graph): boolean => [...g.initializers.values()].some((i) => i.data.kind !== 'inline');

/** Writes `g` under `parent` (created if needed) in a fresh folder. */
export function stageModel(g: Graph, parent: string): StagedModel {
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, `${g.name}-`));
  let path: string;
  try {
    path = writeModelFile(g, dir, { fileLinks: linkFiles(g, dir) });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  let gone = false;
  return {
    path,
    dispose() {
      if (gone) return true;
      try {
        rmSync(dir, { recursive: true, force: true });
        gone = true;
      } catch { /* still mapped (Windows): try again after release */ }
      return gone;
    },
  };
}

/**
 * Puts every outside file that file-backed initializers read into `dir`: a hard link (ORT resolves
 * symbolic links and refuses targets outside the folder), else a copy (another file system).
 */
function linkFiles(g: Graph, dir: string): Map<string, string> {
  const links = new Map<string, string>();
  for (const { data } of g.initializers.values()) {
    if (data.kind !== 'file') continue;
    const src = resolve(data.path);
    if (links.has(src) || src.startsWith(resolve(dir))) continue;
    const link = join(dir, `${links.size}-${basename(src)}`);
    const target = realpathSync(src); // a Hugging Face cache file is a symbolic link to its blob
    try { linkSync(target, link); } catch { copyFileSync(target, link); }
    links.set(src, link);
  }
  return links;
}

/**
 * A session for `g`: from a folder staged under `parent` when its weights stream from files (the
 * folder is removed once ORT has loaded it, or at exit where the system keeps mapped files), else
 * from memory.
 */
export async function sessionFromGraph(g: Graph, opts: SessionOptions, parent: string): Promise<Session> {
  if (!hasLazyWeights(g)) return Session.create(serializeModel(g), opts);
  const staged = stageModel(g, parent);
  try {
    return await Session.create(staged.path, opts);
  } finally {
    if (!staged.dispose()) process.once('exit', () => staged.dispose());
  }
}
