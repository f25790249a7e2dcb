// What Finch has: models, datasets, runs, adapters and the machine (appInfo). Loaded once, then
// kept fresh by the back end's 'library-changed' and run events, so every screen shows the same lists.

import type { AdapterSummary, AppInfo, DatasetSummary, ModelSummary, RunSummary } from '../../../../src-shared/api.ts';
import { finch, onEvent } from '../services/finch.ts';

type Kind = 'models' | 'datasets' | 'runs' | 'adapters';

class Library {
  info = $state<AppInfo | null>(null);
  models = $state<ModelSummary[]>([]);
  datasets = $state<DatasetSummary[]>([]);
  runs = $state<RunSummary[]>([]);
  adapters = $state<AdapterSummary[]>([]);
  loaded = $state(false);
  error = $state<unknown>(null);
  private started = false;

  /** Loads everything once and subscribes to changes (idempotent). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    onEvent('library-changed', (e) => { if (e.what !== 'comparisons' && e.what !== 'weight-cache') void this.refresh(e.what); });
    // A run's status or last numbers changed: patch the row in place, refetch when it is new.
    onEvent('run-status', (e) => {
      const r = this.runs.find((x) => x.id === e.runId);
      if (r) { r.status = e.status; r.error = e.error; } else void this.refresh('runs');
      if (e.status === 'completed') void this.refresh('adapters');
    });
    onEvent('run-step', (e) => {
      const r = this.runs.find((x) => x.id === e.runId);
      if (r) { r.step = e.step; r.totalSteps = e.total_steps; r.loss = e.loss; r.durationS = e.elapsed_s; }
    });
    onEvent('run-done', () => { void this.refresh('runs'); void this.refresh('adapters'); });
    await this.reload();
  }

  async reload(): Promise<void> {
    try {
      this.error = null;
      const api = finch();
      // appInfo probes the machine (seconds, the first time): it must not hold the lists back, and
      // lists fetched before it must not land after it, over a model added meanwhile.
      const info = this.reloadInfo();
      const [models, datasets, runs, adapters] = await Promise.all([api.listModels(), api.listDatasets(), api.listRuns(), api.listAdapters()]);
      Object.assign(this, { models, datasets, runs, adapters });
      this.loaded = true;
      await info;
    } catch (e) {
      this.error = e;
    }
  }

  /** appInfo again (the machine, and whether a Hugging Face token is set). */
  async reloadInfo(): Promise<void> {
    this.info = await finch().appInfo();
  }

  async refresh(what: Kind): Promise<void> {
    const api = finch();
    try {
      if (what === 'models') this.models = await api.listModels();
      else if (what === 'datasets') this.datasets = await api.listDatasets();
      else if (what === 'runs') this.runs = await api.listRuns();
      else this.adapters = await api.listAdapters();
    } catch (e) {
      this.error = e;
    }
  }

  model(id: string | null | undefined): ModelSummary | undefined {
    return this.models.find((m) => m.id === id);
  }
  dataset(id: string | null | undefined): DatasetSummary | undefined {
    return this.datasets.find((d) => d.id === id);
  }
  run(id: string | null | undefined): RunSummary | undefined {
    return this.runs.find((r) => r.id === id);
  }
}

export const library = new Library();
