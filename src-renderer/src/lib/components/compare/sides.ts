// Human names of comparison sides ("Base model", "math-run (final)", "step 200 of math-run").
import type { ModelSide } from '../../../../../src-shared/api.ts';
import { library } from '../../stores/library.svelte.ts';

export function sideLabel(s: ModelSide): string {
  if (s.kind === 'base') return 'Base model';
  if (s.kind === 'adapter') return `Adapter: ${library.adapters.find((a) => a.id === s.adapterId)?.name ?? s.adapterId}`;
  const name = library.run(s.runId)?.name ?? s.runId;
  return s.step ? `${name} at step ${s.step}` : `Tuned: ${name}`;
}
