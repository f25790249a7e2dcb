// The main window's size, position and maximized state, remembered across launches in
// <userData>/window-state.json. Written atomically (temp file + rename) so a crash mid-write
// never leaves a half file; a missing, corrupt or off-screen record falls back to defaults with a
// warning naming the file, never a failed start.
// No electron import: main.ts passes the displays' work areas in, so this is plain Node.

import { z } from 'zod';
import { writeFileAtomic } from '../model/safetensors.js';
import { readJsonObject } from '../util/json-file.js';

export interface Rect { x: number; y: number; width: number; height: number }

const WindowStateSchema = z.object({
  x: z.int().optional(),
  y: z.int().optional(),
  width: z.int().min(400).max(100_000),
  height: z.int().min(300).max(100_000),
  maximized: z.boolean(),
});
export type WindowState = z.infer<typeof WindowStateSchema>;

export const DEFAULT_WINDOW_STATE: WindowState = { width: 1280, height: 820, maximized: false };

/** How much of the window's title bar must lie on some display for the position to be kept. */
const MIN_VISIBLE = 64;

function visibleOn(s: Required<Pick<WindowState, 'x' | 'y' | 'width'>>, area: Rect): boolean {
  const overlap = Math.min(s.x + s.width, area.x + area.width) - Math.max(s.x, area.x);
  return overlap >= MIN_VISIBLE && s.y >= area.y && s.y < area.y + area.height - MIN_VISIBLE / 2;
}

/**
 * The remembered state, or the defaults. A position whose title bar is on no display (a monitor
 * unplugged since) is dropped so the window opens centred instead of invisible.
 */
export function readWindowState(file: string, workAreas: readonly Rect[], warn: (m: string) => void = console.warn): WindowState {
  let raw: unknown;
  try {
    raw = readJsonObject(file, { required: false, missingHint: '', error: (m) => new Error(m) });
  } catch (e) {
    warn(`finch: ignoring the saved window state: ${(e as Error).message}`);
    return { ...DEFAULT_WINDOW_STATE };
  }
  if (raw === null) return { ...DEFAULT_WINDOW_STATE };
  const parsed = WindowStateSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    warn(`finch: ignoring the saved window state ${file}: field "${issue.path.join('.')}": ${issue.message}`);
    return { ...DEFAULT_WINDOW_STATE };
  }
  const s = parsed.data;
  if (s.x === undefined || s.y === undefined) return { width: s.width, height: s.height, maximized: s.maximized };
  const pos = { x: s.x, y: s.y, width: s.width };
  if (!workAreas.some((a) => visibleOn(pos, a))) return { width: s.width, height: s.height, maximized: s.maximized };
  return s;
}

export function writeWindowState(file: string, s: WindowState): void {
  writeFileAtomic(file, `${JSON.stringify(WindowStateSchema.parse(s), null, 2)}\n`);
}
