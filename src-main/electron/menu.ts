// The application menu: Finch's own items (add a model folder or a dataset file through the
// native dialog, straight into the library) and the platform's standard roles.

import { app, Menu, shell, type MenuItemConstructorOptions } from 'electron';

export interface MenuActions {
  addModelFolder(): void;
  addDatasetFile(): void;
  /** Finch's data folder (runs, adapters, downloads) in the system's file manager. */
  openDataFolder(): void;
}

export function appMenuTemplate(a: MenuActions, platform: NodeJS.Platform = process.platform, packaged = app.isPackaged): MenuItemConstructorOptions[] {
  const mac = platform === 'darwin';
  const file: MenuItemConstructorOptions = {
    label: '&File',
    submenu: [
      { label: 'Add Model Folder…', accelerator: 'CmdOrCtrl+O', click: () => a.addModelFolder() },
      { label: 'Add Dataset File…', accelerator: 'CmdOrCtrl+Shift+O', click: () => a.addDatasetFile() },
      { type: 'separator' },
      { label: 'Open Finch\'s Data Folder', click: () => a.openDataFolder() },
      { type: 'separator' },
      mac ? { role: 'close' } : { role: 'quit' },
    ],
  };
  const view: MenuItemConstructorOptions = {
    label: '&View',
    submenu: [
      { role: 'reload' },
      // DevTools in development only: a packaged Finch has nothing to debug in its pages.
      ...(packaged ? [] : [{ role: 'toggleDevTools' } as const]),
      { type: 'separator' },
      { role: 'resetZoom' },
      { role: 'zoomIn' },
      { role: 'zoomOut' },
      { type: 'separator' },
      { role: 'togglefullscreen' },
    ],
  };
  return [
    ...(mac ? [{ role: 'appMenu' } as const] : []),
    file,
    { role: 'editMenu' },
    view,
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: 'ONNX Runtime Execution Providers', click: () => void shell.openExternal('https://onnxruntime.ai/docs/execution-providers/') }],
    },
  ];
}

export function installAppMenu(a: MenuActions): void {
  Menu.setApplicationMenu(Menu.buildFromTemplate(appMenuTemplate(a)));
}
