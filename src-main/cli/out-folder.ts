// The output folder of a command that writes one (`finch train --out`): refuse a path that runs
// into a file, in words rather than EEXIST / ENOTDIR, and take back the folders a failed run made.

import { existsSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The first existing path at or above `out` when it is a file (so the run folder cannot be made), else null. */
export function fileInTheWay(out: string): string | null {
  for (let p = resolve(out); ; p = dirname(p)) {
    if (existsSync(p)) return statSync(p).isDirectory() ? null : p;
    if (dirname(p) === p) return null;
  }
}

/** The topmost folder of `out` that does not exist yet (what a run would create), or null. */
export function topmostMissing(out: string): string | null {
  let missing: string | null = null;
  for (let p = resolve(out); !existsSync(p) && dirname(p) !== p; p = dirname(p)) missing = p;
  return missing;
}

/** Removes `dir` and its parents up to `top` while they are empty. */
export function removeEmptyUpTo(dir: string, top: string): void {
  for (let p = resolve(dir); existsSync(p) && readdirSync(p).length === 0; p = dirname(p)) {
    rmdirSync(p);
    if (p === top) break;
  }
}
