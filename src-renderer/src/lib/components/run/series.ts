// Chart series as the run charts draw them, and the palette for overlaid runs.

export interface Series {
  label: string;
  points: { x: number; y: number }[];
  color: string;
  dashed?: boolean;
  /** Draw dots (sparse series such as eval loss). */
  dots?: boolean;
}

/** Distinct, colour-blind-friendly hues for overlaid runs (Okabe–Ito), after the accent for the run itself. */
export const OVERLAY_COLOURS = ['#0072b2', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#7f7f7f'];

/** The most points a chart draws of one series: a canvas ~1,000 pixels wide shows no more. */
export const MAX_DRAWN_POINTS = 1200;

/**
 * A long series cut to at most `max` points for drawing: the steps are split into buckets and each
 * keeps its lowest and highest point, in step order, so spikes survive; the first and last points
 * are always kept. A series of `max` points or fewer is returned as it is.
 */
export function thin<P extends { x: number; y: number }>(points: readonly P[], max = MAX_DRAWN_POINTS): readonly P[] {
  if (points.length <= max) return points;
  const buckets = Math.floor((max - 2) / 2);
  const out: P[] = [points[0]!];
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * (points.length - 2)) / buckets), end = 1 + Math.floor(((b + 1) * (points.length - 2)) / buckets);
    let lo = start, hi = start;
    for (let i = start + 1; i < end; i++) {
      if (points[i]!.y < points[lo]!.y) lo = i;
      if (points[i]!.y > points[hi]!.y) hi = i;
    }
    if (start === end) continue;
    out.push(points[Math.min(lo, hi)]!);
    if (lo !== hi) out.push(points[Math.max(lo, hi)]!);
  }
  out.push(points.at(-1)!);
  return out;
}
