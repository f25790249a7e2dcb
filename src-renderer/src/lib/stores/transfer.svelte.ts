// Export and import calls, refreshing the adapter list when one is added.
import type { AdapterSummary, ExportResult, ModelSide } from '../../../../src-shared/api.ts';
import { finch } from '../services/finch.ts';
import { library } from './library.svelte.ts';

/** A side that has an adapter (not the base model). */
export type AdapterSide = Exclude<ModelSide, { kind: 'base' }>;

export function exportAdapter(source: AdapterSide, dest: string): Promise<ExportResult> {
  return finch().exportAdapter({ source, dest });
}

export function exportMerged(modelId: string, source: AdapterSide, dest: string): Promise<ExportResult> {
  return finch().exportMerged({ modelId, source, dest });
}

export type GgufDtype = 'f32' | 'f16' | 'q8_0' | 'q4_0';

/** One GGUF file (the adapter merged into its base) for llama.cpp / LM Studio. */
export function exportGguf(modelId: string, source: AdapterSide, dest: string, dtype: GgufDtype): Promise<ExportResult> {
  return finch().exportGguf({ modelId, source, dest, dtype });
}

/** A folder for Ollama (GGUF + Modelfile); the result's `command` registers it. */
export function exportOllama(modelId: string, source: AdapterSide, dest: string, dtype: GgufDtype): Promise<ExportResult> {
  return finch().exportOllama({ modelId, source, dest, dtype });
}

export async function importAdapter(path: string, baseModelId: string): Promise<AdapterSummary> {
  const a = await finch().importAdapter({ path, baseModelId });
  void library.refresh('adapters');
  return a;
}
