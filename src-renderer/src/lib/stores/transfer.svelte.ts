// Export and import calls, refreshing the adapter list when one is added.
import type { AdapterSummary, ExportResult, ModelSide } from '../../../../src-shared/api.ts';
import { finch } from '../services/finch.ts';
import { library } from './library.svelte.ts';

/** A side that has an adapter (not the base model). */
export type AdapterSide = Exclude<ModelSide, { kind: 'base' }>;

export function exportAdapter(source: AdapterSide, dest: string): Promise<ExportResult> {
  return finch().exportAdapter({ source, dest });
}

export function exportMerged(modelId: string, source: AdapterSide, dest: string, dtype: 'float32' | 'float16' | 'bfloat16'): Promise<ExportResult> {
  return finch().exportMerged({ modelId, source, dest, dtype });
}

export async function importAdapter(path: string, baseModelId: string): Promise<AdapterSummary> {
  const a = await finch().importAdapter({ path, baseModelId });
  void library.refresh('adapters');
  return a;
}
