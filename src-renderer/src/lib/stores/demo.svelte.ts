// The demo flow: startDemo adds the bundled model and dataset and runs the demo recipe. When the
// SFT demo's run completes, the dashboard goes on to the compare view, which greets the person with
// the demo's result: base and tuned accuracy on the held-out problems `finch demo` scores, the
// answers side by side (asked right after training: the progress of that comparison is kept here).

import { demoBatchId, type RunSummary } from '../../../../src-shared/api.ts';
import { finch, onEvent } from '../services/finch.ts';
import { library } from './library.svelte.ts';

class DemoState {
  /** The run started by "Try the demo" in this session (its dashboard ends in Compare). */
  runId = $state<string | null>(null);
  /** Answers given so far by base and tuned, per demo run, while its comparison runs. */
  progress = $state<Record<string, { done: number; total: number }>>({});
}
export const demo = new DemoState();

onEvent('batch-progress', (e) => {
  const runId = library.runs.find((r) => r.kind === 'demo' && demoBatchId(r.id) === e.batchId)?.id;
  if (runId) demo.progress[runId] = { done: e.done, total: e.total };
});

/**
 * Starts a demo: 'sft' fine-tunes on the word problems and ends in the comparison; 'dpo' tunes on
 * pairs of them (right answer preferred) and its dashboard shows the held-out reward accuracy.
 */
export async function startDemo(method: 'sft' | 'dpo' = 'sft'): Promise<RunSummary | null> {
  const r = await finch().startDemo({ start: true, method });
  void library.reload();
  demo.runId = method === 'sft' ? r.run?.id ?? null : null;
  return r.run;
}

/** The bundled model and dataset in the library, without starting a run (the wizard's "use the demo"). */
export async function addDemoAssets(): Promise<{ modelId: string; datasetId: string }> {
  const r = await finch().startDemo({ start: false });
  await library.reload();
  return { modelId: r.model.id, datasetId: r.dataset.id };
}
