// Finch's one window: hardened web preferences, the remembered size and position, the app icon.
// (The session-wide walls and navigation guards are in security.ts.)

import { BrowserWindow, screen } from 'electron';
import { join } from 'node:path';
import { readWindowState, writeWindowState } from './window-state.js';

export interface MainWindowOptions {
  /** The bundled preload (dist/electron/preload.cjs). */
  preload: string;
  /** Where the window's state is kept (<userData>/window-state.json). */
  stateFile: string;
  /** The window icon on Linux (Windows and macOS take it from the executable). */
  icon: string | undefined;
  url: string;
}

/** How long the window must rest before a move or resize is written down. */
const SAVE_DELAY_MS = 500;

export function createMainWindow(o: MainWindowOptions): BrowserWindow {
  const state = readWindowState(o.stateFile, screen.getAllDisplays().map((d) => d.workArea));
  const win = new BrowserWindow({
    ...(state.x !== undefined && state.y !== undefined ? { x: state.x, y: state.y } : {}),
    width: state.width,
    height: state.height,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'Finch',
    ...(o.icon ? { icon: o.icon } : {}),
    webPreferences: {
      preload: o.preload,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      sandbox: true,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  if (state.maximized) win.maximize();

  let timer: NodeJS.Timeout | null = null;
  const save = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (win.isDestroyed()) return;
    try {
      writeWindowState(o.stateFile, { ...win.getNormalBounds(), maximized: win.isMaximized() });
    } catch (e) {
      console.warn(`finch: could not save the window state to ${o.stateFile}: ${(e as Error).message}`);
    }
  };
  const saveSoon = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(save, SAVE_DELAY_MS);
  };
  for (const event of ['resize', 'move', 'maximize', 'unmaximize'] as const) win.on(event as 'resize', saveSoon);
  win.on('close', save);

  win.once('ready-to-show', () => win.show());
  void win.loadURL(o.url);
  return win;
}

/** The icon file for a window on Linux, from the packaged resources or the checkout. */
export function windowIcon(assetsDir: string): string | undefined {
  return process.platform === 'linux' ? join(assetsDir, 'icon', 'png', '512x512.png') : undefined;
}
