// The 4-bit weight cache as Home shows it: the entries and their total size, kept fresh by the
// back end's events ('library-changed': a 4-bit run wrote an entry, another window removed one;
// 'run-status': which entries a run holds), and removing one entry or all of them once the person
// has confirmed.

import type { WeightCacheEntry, WeightCacheView } from '../../../../src-shared/api.ts';
import { finch, onEvent } from '../services/finch.ts';

export class WeightCacheState {
  view = $state<WeightCacheView | null>(null);
  error = $state<unknown>(null);
  /** The entry id (or 'all') whose removal waits for a confirmation, or is under way. */
  confirming = $state<string | null>(null);
  busy = $state(false);
  private offs: (() => void)[] = [];

  get entries(): WeightCacheEntry[] {
    return this.view?.entries ?? [];
  }

  /** Loads the list and follows changes; returns the function that stops following. */
  start(): () => void {
    if (!this.offs.length) {
      this.offs = [
        onEvent('library-changed', (e) => { if (e.what === 'weight-cache') void this.load(); }),
        // A run starting, pausing or ending changes which entries are in use.
        onEvent('run-status', () => void this.load()),
      ];
    }
    void this.load();
    return () => { for (const off of this.offs.splice(0)) off(); };
  }

  async load(): Promise<void> {
    try {
      this.view = await finch().listWeightCache();
      this.error = null;
    } catch (e) {
      this.error = e;
    }
  }

  /** Removes the entry (or every entry, for 'all') that `confirming` names. */
  async confirm(): Promise<void> {
    const id = this.confirming;
    if (id === null || this.busy) return;
    this.busy = true;
    try {
      this.view = id === 'all' ? await finch().clearWeightCache() : await finch().removeWeightCacheEntry(id);
      this.error = null;
    } catch (e) {
      this.error = e;
    } finally {
      this.busy = false;
      this.confirming = null;
    }
  }
}

/** What a person calls an entry: the library model's name, else the checkpoint folder. */
export function entryLabel(e: WeightCacheEntry): string {
  return e.modelName ?? (e.checkpoint || `unreadable entry ${e.id.slice(0, 8)}`);
}
