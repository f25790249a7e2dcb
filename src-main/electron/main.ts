// Electron main process: Finch's one window, its pages served from app://finch, the IPC bridge to
// the back end, and the desktop's own parts (menu, native dialogs, keeping the system awake while
// training, asking before quitting a training run, notifications). No heavy work here: training
// and generation run in job processes (jobs.ts). The walls around the renderer are security.ts.
//
// Development: FINCH_RENDERER_URL=http://localhost:5173 loads the Vite dev server instead of
// dist/renderer (with the same CSP, plus the dev server's HMR socket).

import { app, BrowserWindow, dialog, session, shell } from 'electron';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { finchHome } from '../store/paths.js';
import { startDesktopBackend, type DesktopBackend } from './backend.js';
import { pickPath } from './dialogs.js';
import { forwardEvents, registerIpc } from './ipc.js';
import { installAppMenu } from './menu.js';
import { RunWatch } from './runs.js';
import { appUrlCheck, APP_ENTRY, hardenSession, hardenWebContents, registerAppScheme, serveRenderer } from './security.js';
import { createMainWindow, windowIcon } from './window.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/electron after the build
const RENDERER_DIR = process.env.FINCH_RENDERER_DIR ?? join(here, '..', 'renderer');
/** The icons and demo assets: beside the app in a package (extraResources), in the checkout otherwise. */
const ASSETS_DIR = app.isPackaged ? join(process.resourcesPath, 'assets') : join(here, '..', '..', 'assets');
const DEV_URL = process.env.FINCH_RENDERER_URL;
const isAppUrl = appUrlCheck(DEV_URL);

let mainWindow: BrowserWindow | null = null;
const appContents = () => (mainWindow && !mainWindow.isDestroyed() ? mainWindow.webContents : null);

registerAppScheme();
app.enableSandbox();
if (process.platform === 'win32') app.setAppUserModelId('app.finch.desktop'); // notifications need it

if (!app.requestSingleInstanceLock()) {
  // Another Finch is running: it gets focused (its 'second-instance'), this one leaves.
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow || mainWindow.isDestroyed()) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.show();
    mainWindow.focus();
  });
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, isAppUrl));
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.whenReady().then(start).catch((err: unknown) => {
    const e = err as Error;
    console.error('finch: failed to start:', e);
    dialog.showErrorBox('Finch could not start', `${e.message}\n\nRun \`npx finch serve\` for browser mode, or report this with the message above.`);
    app.exit(1);
  });
}

async function start(): Promise<void> {
  hardenSession(session.defaultSession, isAppUrl, DEV_URL);
  if (!DEV_URL && !existsSync(join(RENDERER_DIR, 'index.html'))) {
    throw new Error(`the app's pages are missing (${join(RENDERER_DIR, 'index.html')}): build them with \`npm run build:renderer\`, or start with \`npm start\``);
  }
  serveRenderer(RENDERER_DIR);

  const backend: DesktopBackend = await startDesktopBackend({ pickPath: (req) => pickPath(mainWindow, req) });
  const { dispatcher } = backend;
  registerIpc({ dispatcher, appContents, isAppUrl });
  forwardEvents({ dispatcher, appContents });
  const runs = new RunWatch(dispatcher, () => mainWindow);
  runs.installQuitGuard();
  app.on('will-quit', () => void backend.close());

  /** Menu actions: the native dialog, then the library call; a failure is shown with its hint. */
  const addFromDialog = async (kind: 'model-folder' | 'dataset-file') => {
    const path = await pickPath(mainWindow, { kind });
    if (path === null) return;
    const r = kind === 'model-folder' ? await dispatcher.dispatch('addLocalModel', [{ path }]) : await dispatcher.dispatch('addDataset', [{ path }]);
    if (!r.ok) dialog.showErrorBox(kind === 'model-folder' ? 'Could not add the model' : 'Could not add the dataset', [r.error.message, r.error.hint].filter(Boolean).join('\n\n'));
  };
  installAppMenu({
    addModelFolder: () => void addFromDialog('model-folder'),
    addDatasetFile: () => void addFromDialog('dataset-file'),
    openDataFolder: () => void shell.openPath(finchHome()),
  });

  const openWindow = () => {
    mainWindow = createMainWindow({
      preload: join(here, 'preload.cjs'),
      stateFile: join(app.getPath('userData'), 'window-state.json'),
      icon: windowIcon(ASSETS_DIR),
      url: DEV_URL ?? APP_ENTRY,
    });
    runs.guardWindow(mainWindow);
    mainWindow.webContents.once('did-finish-load', () => console.log('finch: window ready'));
  };
  openWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) openWindow();
  });
}
