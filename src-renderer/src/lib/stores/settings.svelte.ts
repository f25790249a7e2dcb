// The Settings screen's state: what getSettings says (never the token itself: the API is
// write-only for it) and the saves. A saved or removed token also refreshes appInfo, whose
// hfTokenSet the model step's download form reads.

import type { Settings, SettingsView } from '../../../../src-shared/api.ts';
import { finch } from '../services/finch.ts';
import { library } from './library.svelte.ts';

class SettingsState {
  view = $state<SettingsView | null>(null);
  error = $state<unknown>(null);
  busy = $state(false);
  /** What the last save did, in words (a status line). */
  saved = $state<string | null>(null);

  async load(): Promise<void> {
    try {
      this.view = await finch().getSettings();
      this.error = null;
    } catch (e) {
      this.error = e;
    }
  }

  async save(patch: Partial<Settings>, done: string): Promise<boolean> {
    this.busy = true;
    this.saved = null;
    try {
      this.view = await finch().setSettings(patch);
      this.error = null;
      this.saved = done;
      if ('hfToken' in patch) void library.reloadInfo().catch(() => {});
      return true;
    } catch (e) {
      this.error = e;
      return false;
    } finally {
      this.busy = false;
    }
  }
}

export const settings = new SettingsState();
