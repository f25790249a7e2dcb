// The demo flow: startDemo adds the bundled model and dataset and runs the demo recipe; when that
// run completes, the dashboard offers (and, if still open, goes to) the compare view.

import type { RunSummary } from '../../../../src-shared/api.ts';
import { finch } from '../services/finch.ts';
import { library } from './library.svelte.ts';

class DemoState {
  /** The run started by "Try the demo" in this session (its dashboard ends in Compare). */
  runId = $state<string | null>(null);
}
export const demo = new DemoState();

export async function startDemo(): Promise<RunSummary | null> {
  const r = await finch().startDemo({ start: true });
  void library.reload();
  demo.runId = r.run?.id ?? null;
  return r.run;
}

/** The bundled model and dataset in the library, without starting a run (the wizard's "use the demo"). */
export async function addDemoAssets(): Promise<{ modelId: string; datasetId: string }> {
  const r = await finch().startDemo({ start: false });
  await library.reload();
  return { modelId: r.model.id, datasetId: r.dataset.id };
}
