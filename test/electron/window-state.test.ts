// src-main/electron/window-state.ts: the window comes back where it was, never off-screen, and a
// damaged record costs only a warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_WINDOW_STATE, readWindowState, writeWindowState } from '../../src-main/electron/window-state.js';

const screen = [{ x: 0, y: 0, width: 1920, height: 1080 }];
const twoScreens = [...screen, { x: 1920, y: 0, width: 2560, height: 1440 }];

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'finch-window-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a written state reads back the same, through an atomic write that leaves no temp file', () => withDir((dir) => {
  const file = join(dir, 'window-state.json');
  const s = { x: 2000, y: 40, width: 1400, height: 900, maximized: true };
  writeWindowState(file, s);
  assert.deepEqual(readWindowState(file, twoScreens), s);
  assert.deepEqual(readdirSync(dir), ['window-state.json']);
}));

test('a position on no display (a monitor unplugged since) is dropped, the size kept', () => withDir((dir) => {
  const file = join(dir, 'window-state.json');
  writeWindowState(file, { x: 2000, y: 40, width: 1400, height: 900, maximized: false });
  assert.deepEqual(readWindowState(file, screen), { width: 1400, height: 900, maximized: false });
  writeWindowState(file, { x: 100, y: -500, width: 1400, height: 900, maximized: false });
  assert.deepEqual(readWindowState(file, screen), { width: 1400, height: 900, maximized: false }, 'title bar above the screen');
}));

test('missing, corrupt or out-of-range records fall back to the defaults with a warning naming the file and field', () => withDir((dir) => {
  const file = join(dir, 'window-state.json');
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  assert.deepEqual(readWindowState(file, screen, warn), DEFAULT_WINDOW_STATE);
  assert.deepEqual(warnings, [], 'a first launch is not a problem');
  writeFileSync(file, '{"width": 1200, "height": 8');
  assert.deepEqual(readWindowState(file, screen, warn), DEFAULT_WINDOW_STATE);
  assert.match(warnings.pop()!, /window-state\.json: invalid JSON/);
  writeFileSync(file, JSON.stringify({ width: 50, height: 800, maximized: false }));
  assert.deepEqual(readWindowState(file, screen, warn), DEFAULT_WINDOW_STATE);
  assert.match(warnings.pop()!, /window-state\.json: field "width"/);
  assert.throws(() => writeWindowState(file, { width: Number.NaN, height: 800, maximized: false }));
  assert.match(readFileSync(file, 'utf8'), /"width":\s*50/, 'a refused write leaves the old file');
}));
