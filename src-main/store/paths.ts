// Where Finch keeps its own files: runs (adapters, checkpoints, run records), the database, caches.
// FINCH_HOME overrides the default (~/.finch, or $XDG_DATA_HOME/finch on Linux when set).

import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function finchHome(): string {
  if (process.env.FINCH_HOME) return process.env.FINCH_HOME;
  if (process.platform === 'linux' && process.env.XDG_DATA_HOME) return join(process.env.XDG_DATA_HOME, 'finch');
  return join(homedir(), '.finch');
}

export const runsDir = (): string => join(finchHome(), 'runs');

/** Model files written for one session and removed once it has loaded them (engine/onnx/staged.ts). */
export const stagingDir = (): string => join(finchHome(), 'tmp');

/** Quantized weights kept between runs (model/quant-cache.ts). */
export const quantCacheDir = (): string => join(finchHome(), 'cache', 'int4');

/** A new run folder name: sortable time plus a label ("2026-11-27T22-50-01-demo"). */
export function newRunId(label: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, '');
  return `${stamp}-${label.replace(/[^a-zA-Z0-9_-]+/g, '-')}`;
}

/**
 * Makes a new, empty run folder under runsDir() and returns its path: newRunId(label), or with
 * "-2", "-3", ... when a folder of that name exists or `taken` says so (two runs of one name
 * started in the same second). Made with an exclusive mkdir, so two processes never share one.
 */
export function makeRunDir(label: string, taken: (dir: string) => boolean = () => false): string {
  const root = runsDir();
  mkdirSync(root, { recursive: true });
  const base = newRunId(label);
  for (let n = 1; ; n++) {
    const dir = join(root, n === 1 ? base : `${base}-${n}`);
    if (taken(dir)) continue;
    try {
      mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}
