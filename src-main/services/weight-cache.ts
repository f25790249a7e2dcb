// The 4-bit weight cache as the app shows it (model/quant-cache.ts keeps it; `finch cache` is the
// command line's view): each entry with the library model it belongs to and its size, and removing
// one entry or all of them.
//
// Removal is refused while an app run trains (or is paused) in 4 bits on the entry's checkpoint,
// and clear while any 4-bit run does. Such a run reads the entry when it loads and may read it
// again later (a session made mid-run takes the blocks from the file), or writes it after a cold
// quantization (temp file, then rename): deleting under it would fail on Windows, where an open file
// cannot be deleted, make a temp file vanish before its rename, or take the blocks from a session
// still to be made. A `finch` process on the command line is not seen here (nor by `finch cache
// clear`): removing the entry it trains on can make it fail.

import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { RunSummary, WeightCacheEntry, WeightCacheView } from '../../src-shared/api.js';
import { clearQuantCache, listQuantCache } from '../model/quant-cache.js';
import { quantCacheDir } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { ServiceError } from './errors.js';

/** A run of the app that holds the 4-bit weights of `model` now. */
interface QuantizedRun { run: RunSummary; model: string }

export class WeightCache {
  constructor(private readonly store: Store) {}

  list(): WeightCacheView {
    const busy = this.quantizedRuns();
    const entries = listQuantCache().map((e): WeightCacheEntry => {
      const checkpoint = e.checkpoint === '(unreadable)' ? '' : e.checkpoint;
      const model = checkpoint ? this.store.modelByPath(resolve(checkpoint)) : null;
      const user = checkpoint ? busy.find((b) => b.model === resolve(checkpoint)) : undefined;
      return {
        id: basename(e.file, '.safetensors'), file: e.file, checkpoint, modelId: model?.id ?? null, modelName: model?.name ?? null,
        blockSize: e.blockSize, bytes: e.bytes, createdAt: e.created || null, lastUsedAt: statSync(e.file).mtime.toISOString(),
        readable: checkpoint !== '', inUseBy: user?.run.name ?? null,
      };
    });
    return { dir: quantCacheDir(), totalBytes: entries.reduce((a, e) => a + e.bytes, 0), entries };
  }

  remove(id: string): WeightCacheView {
    const entry = this.list().entries.find((e) => e.id === id);
    if (!entry) throw new ServiceError('not_found', `the 4-bit weight cache has no entry ${id}`, 'refresh the cache list: it may have been removed already');
    if (entry.inUseBy !== null) {
      throw new ServiceError('conflict', `the 4-bit weights of ${entry.modelName ?? entry.checkpoint} are in use by run "${entry.inUseBy}"`, 'remove it once the run has ended (or cancel the run first)');
    }
    if (existsSync(entry.file)) rmSync(entry.file, { force: true });
    return this.list();
  }

  clear(): WeightCacheView {
    const busy = this.quantizedRuns()[0];
    if (busy) {
      throw new ServiceError('conflict', `run "${busy.run.name}" is training in 4 bits and may be writing to the weight cache`, 'clear the cache once the run has ended, or remove other entries one by one');
    }
    clearQuantCache();
    return this.list();
  }

  /** Runs the app is training with 4-bit weights now (running or paused: their job holds the model). */
  private quantizedRuns(): QuantizedRun[] {
    return this.store.runsWithStatus('running', 'paused').flatMap((run) => {
      const cfg = this.store.runRow(run.id)?.trainConfig as { model?: string; quantize?: boolean } | null | undefined;
      return cfg?.quantize && cfg.model ? [{ run, model: resolve(cfg.model) }] : [];
    });
  }
}
