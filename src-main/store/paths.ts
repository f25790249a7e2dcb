// Where Finch keeps its own files: runs (adapters, checkpoints, run records), the database, caches.
// FINCH_HOME overrides the default (~/.finch, or $XDG_DATA_HOME/finch on Linux when set).

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
