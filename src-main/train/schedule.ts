// Learning-rate schedules with linear warmup, as in Hugging Face's get_*_schedule_with_warmup:
// the lr for optimizer step s (0-based) of `total`.

export type ScheduleName = 'constant' | 'linear' | 'cosine';

export function learningRate(kind: ScheduleName, peak: number, step: number, total: number, warmup: number): number {
  if (warmup > 0 && step < warmup) return (peak * (step + 1)) / warmup;
  if (kind === 'constant') return peak;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  if (kind === 'linear') return peak * Math.max(0, 1 - progress);
  return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
}
