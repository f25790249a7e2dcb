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
