// A graph written to a private folder for one session to load from: the way big models reach ONNX
// Runtime without a second copy. In memory (serializeModel) every weight would sit in JS twice (the
// graph's bytes and the concatenated external data) while ORT copies it a third time; from a file,
// weights stream through JS one at a time and ORT maps the aligned external data in place.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph } from '../graph/graph.js';
import { writeModelFile } from './writer.js';

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

/** True when some initializer is read only at write time (streamed frozen weights). */
export const hasLazyWeights = (g: Graph): boolean => [...g.initializers.values()].some((i) => i.data.kind === 'lazy');

/** Writes `g` under `parent` (created if needed) in a fresh folder. */
export function stageModel(g: Graph, parent: string): StagedModel {
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, `${g.name}-`));
  let path: string;
  try {
    path = writeModelFile(g, dir);
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
