// A stand-in for the 'electron' module, for testing src-main/electron in plain Node (there is no
// Electron binary or display in CI). test/helpers/electron-loader.ts maps `import 'electron'` to
// this file. It models the parts Finch uses with Electron's observable behaviour where a test
// depends on it:
//  - IPC: ipcRenderer.invoke reaches the ipcMain handler with an event whose sender and
//    senderFrame are those of `fake.renderer` (set a subframe or a foreign page to test refusals);
//    arguments and results are structured-cloned both ways, as Electron's IPC does; a second
//    handler on one channel throws; webContents.send reaches ipcRenderer listeners of that page.
//  - app: quit() emits a cancellable 'before-quit', then 'will-quit' and 'quit'.
//  - windows: close() emits a cancellable 'close', then 'closed'; every web contents created is
//    announced by app's 'web-contents-created'.
//  - utilityProcess.fork runs the module in a real Node child process whose `process.parentPort`
//    speaks over the child's IPC channel (test/helpers/fake-parent-port.mjs), so a crash is a real
//    process exit.
//  - process.versions.electron is set, here and in those children, as in Electron's main and
//    utility processes (where process.execPath is Electron, not Node).
//  - safeStorage encrypts for real (AES-256-GCM under `fake.keychain.key`, with Chromium's "v11"
//    prefix), so the ciphertext hides the text and another keychain's key fails to decrypt it;
//    `fake.keychain` sets whether encryption is available and the Linux backend it reports.
// Everything a test needs to drive or inspect is on the `fake` export.

import { fork as forkChild, type ChildProcess } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';

/** What process.versions.electron reads under the fake (fake-parent-port.mjs sets the same). */
export const FAKE_ELECTRON_VERSION = '45.0.0-fake';

// ---- frames, web contents, windows --------------------------------------------------------------

export class WebFrameMain {
  constructor(public url: string, public readonly parent: WebFrameMain | null = null) {}
  get top(): WebFrameMain {
    return this.parent ? this.parent.top : this;
  }
}

type OpenHandler = (d: { url: string }) => { action: 'allow' | 'deny' };

/** A cancellable Electron event: listeners call preventDefault(). */
export function electronEvent<T extends object>(details: T): T & { defaultPrevented: boolean; preventDefault(): void } {
  const e = { ...details, defaultPrevented: false, preventDefault() { e.defaultPrevented = true; } };
  return e;
}

let nextContentsId = 1;

export class WebContents extends EventEmitter {
  readonly id = nextContentsId++;
  readonly mainFrame = new WebFrameMain('about:blank');
  readonly session = session.defaultSession;
  windowOpenHandler: OpenHandler | null = null;
  readonly sent: { channel: string; args: unknown[] }[] = [];
  private destroyed = false;

  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('destroyed');
  }
  getURL(): string {
    return this.mainFrame.url;
  }
  async loadURL(url: string): Promise<void> {
    this.mainFrame.url = url;
    await new Promise((r) => setImmediate(r)); // loading is asynchronous in Electron too
    this.emit('did-finish-load');
  }
  setWindowOpenHandler(h: OpenHandler): void {
    this.windowOpenHandler = h;
  }
  send(channel: string, ...args: unknown[]): void {
    if (this.destroyed) throw new Error('Object has been destroyed');
    const cloned = structuredClone(args);
    this.sent.push({ channel, args: cloned });
    if (fake.renderer.contents === this) rendererDeliver(channel, cloned);
  }
  /** Test helper: a page-initiated navigation of a frame; returns whether Finch allowed it. */
  tryNavigate(url: string, frame: WebFrameMain = this.mainFrame): boolean {
    const e = electronEvent({ url, isMainFrame: frame === this.mainFrame, frame });
    this.emit('will-frame-navigate', e);
    if (frame === this.mainFrame && !e.defaultPrevented) this.emit('will-navigate', e, url);
    return !e.defaultPrevented;
  }
  /** Test helper: window.open / target=_blank from the page. */
  tryOpenWindow(url: string): 'allow' | 'deny' {
    return this.windowOpenHandler ? this.windowOpenHandler({ url }).action : 'allow';
  }
}

export interface Rectangle { x: number; y: number; width: number; height: number }

export class BrowserWindow extends EventEmitter {
  static readonly all: BrowserWindow[] = [];
  readonly webContents = new WebContents();
  visible = false;
  maximized = false;
  minimized = false;
  focused = false;
  private destroyed = false;
  private bounds: Rectangle;

  constructor(readonly options: Record<string, unknown> & { webPreferences?: Record<string, unknown> } = {}) {
    super();
    this.bounds = {
      x: (options.x as number | undefined) ?? 100,
      y: (options.y as number | undefined) ?? 100,
      width: (options.width as number | undefined) ?? 800,
      height: (options.height as number | undefined) ?? 600,
    };
    BrowserWindow.all.push(this);
    app.emit('web-contents-created', electronEvent({}), this.webContents);
  }
  static getAllWindows(): BrowserWindow[] {
    return BrowserWindow.all.filter((w) => !w.destroyed);
  }
  static fromWebContents(wc: WebContents): BrowserWindow | null {
    return BrowserWindow.all.find((w) => w.webContents === wc && !w.destroyed) ?? null;
  }
  async loadURL(url: string): Promise<void> {
    await this.webContents.loadURL(url);
    setImmediate(() => this.emit('ready-to-show'));
  }
  show(): void { this.visible = true; this.emit('show'); }
  focus(): void { this.focused = true; }
  isVisible(): boolean { return this.visible; }
  maximize(): void { this.maximized = true; this.emit('maximize'); }
  unmaximize(): void { this.maximized = false; this.emit('unmaximize'); }
  isMaximized(): boolean { return this.maximized; }
  minimize(): void { this.minimized = true; }
  restore(): void { this.minimized = false; }
  isMinimized(): boolean { return this.minimized; }
  getBounds(): Rectangle { return { ...this.bounds }; }
  getNormalBounds(): Rectangle { return { ...this.bounds }; }
  setBounds(b: Partial<Rectangle>): void { this.bounds = { ...this.bounds, ...b }; this.emit('resize'); this.emit('move'); }
  isDestroyed(): boolean { return this.destroyed; }
  close(): void {
    if (this.destroyed) return;
    const e = electronEvent({});
    this.emit('close', e);
    if (!e.defaultPrevented) this.destroy();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.webContents.destroy();
    this.emit('closed');
    if (BrowserWindow.getAllWindows().length === 0) app.emit('window-all-closed');
  }
}

// ---- IPC --------------------------------------------------------------------------------------

type Handler = (event: unknown, ...args: unknown[]) => unknown;
const handlers = new Map<string, Handler>();
const rendererListeners = new Map<string, Set<(event: unknown, ...args: unknown[]) => void>>();

export const ipcMain = {
  handle(channel: string, fn: Handler): void {
    if (handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    handlers.set(channel, fn);
  },
  removeHandler(channel: string): void {
    handlers.delete(channel);
  },
};

function rendererDeliver(channel: string, args: unknown[]): void {
  for (const l of rendererListeners.get(channel) ?? []) l({ sender: ipcRenderer }, ...args);
}

type RendererListener = (event: unknown, ...args: unknown[]) => void;
interface FakeIpcRenderer {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, l: RendererListener): FakeIpcRenderer;
  off(channel: string, l: RendererListener): FakeIpcRenderer;
  listenerCount(channel: string): number;
}

export const ipcRenderer: FakeIpcRenderer = {
  async invoke(channel, ...args) {
    const { contents, frame } = fake.renderer;
    if (!contents) throw new Error('fake electron: no renderer page is set (fake.renderer.contents)');
    const handler = handlers.get(channel);
    if (!handler) throw new Error(`Error invoking remote method '${channel}': Error: No handler registered for '${channel}'`);
    const event = { sender: contents, senderFrame: frame ?? null, processId: 1, frameId: 1 };
    try {
      return structuredClone(await handler(event, ...structuredClone(args)));
    } catch (e) {
      // What Electron does to a handler's exception: only its message crosses, prefixed.
      throw new Error(`Error invoking remote method '${channel}': ${String(e)}`);
    }
  },
  on(channel, l) {
    let set = rendererListeners.get(channel);
    if (!set) rendererListeners.set(channel, (set = new Set()));
    set.add(l);
    return ipcRenderer;
  },
  off(channel, l) {
    rendererListeners.get(channel)?.delete(l);
    return ipcRenderer;
  },
  listenerCount(channel) {
    return rendererListeners.get(channel)?.size ?? 0;
  },
};

export const contextBridge = {
  exposeInMainWorld(key: string, api: unknown): void {
    if (key in fake.mainWorld) throw new Error(`Cannot bind an API on top of an existing property on the window object`);
    fake.mainWorld[key] = api;
  },
};

// ---- app, session, protocol, shell ---------------------------------------------------------------

class App extends EventEmitter {
  readonly isPackaged = false;
  name = 'Finch';
  private quitting = false;
  getVersion(): string { return '0.0.0-test'; }
  getName(): string { return this.name; }
  getPath(name: string): string {
    if (name !== 'userData') throw new Error(`fake electron: app.getPath('${name}') is not modelled`);
    if (!fake.userData) throw new Error('fake electron: set fake.userData first');
    return fake.userData;
  }
  requestSingleInstanceLock(): boolean { return fake.singleInstanceLock; }
  whenReady(): Promise<void> { return fake.ready; }
  isReady(): boolean { return true; }
  enableSandbox(): void { fake.sandboxEnabled = true; }
  setAppUserModelId(id: string): void { fake.appUserModelId = id; }
  quit(): void {
    if (this.quitting) return;
    const e = electronEvent({});
    this.emit('before-quit', e);
    if (e.defaultPrevented) return;
    this.quitting = true;
    this.emit('will-quit', electronEvent({}));
    fake.quitCount++;
    this.emit('quit');
    this.quitting = false; // the real process would be gone; the fake can quit again in the next test
  }
  exit(code = 0): void { fake.exitCode = code; this.emit('quit'); }
  focus(): void {}
}
export const app = new App();

type BeforeRequest = (d: { url: string; resourceType?: string }, cb: (r: { cancel?: boolean }) => void) => void;
type HeadersReceived = (d: { url: string; responseHeaders?: Record<string, string[]> }, cb: (r: { responseHeaders?: Record<string, string[] | string> }) => void) => void;

class Session {
  permissionRequestHandler: ((wc: unknown, permission: string, cb: (granted: boolean) => void, details?: unknown) => void) | null = null;
  permissionCheckHandler: ((wc: unknown, permission: string) => boolean) | null = null;
  beforeRequest: BeforeRequest | null = null;
  headersReceived: HeadersReceived | null = null;
  readonly webRequest = {
    onBeforeRequest: (fn: BeforeRequest) => { this.beforeRequest = fn; },
    onHeadersReceived: (fn: HeadersReceived) => { this.headersReceived = fn; },
  };
  setPermissionRequestHandler(fn: Session['permissionRequestHandler']): void { this.permissionRequestHandler = fn; }
  setPermissionCheckHandler(fn: Session['permissionCheckHandler']): void { this.permissionCheckHandler = fn; }
  /** Test helper: what the session answers to a page's permission request. */
  requestPermission(permission: string): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.permissionRequestHandler) return resolve(true); // Electron's default grants
      this.permissionRequestHandler(null, permission, resolve, {});
    });
  }
  /** Test helper: whether a request for `url` goes out. */
  allowsRequest(url: string): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.beforeRequest) return resolve(true);
      this.beforeRequest({ url }, (r) => resolve(!r.cancel));
    });
  }
}
export const session = { defaultSession: new Session() };

export const protocol = {
  privileged: [] as { scheme: string; privileges: Record<string, boolean> }[],
  handlers: new Map<string, (req: Request) => Promise<Response> | Response>(),
  registerSchemesAsPrivileged(schemes: { scheme: string; privileges: Record<string, boolean> }[]): void {
    protocol.privileged.push(...schemes);
  },
  handle(scheme: string, fn: (req: Request) => Promise<Response> | Response): void {
    if (protocol.handlers.has(scheme)) throw new Error(`The scheme ${scheme} is already handled`);
    protocol.handlers.set(scheme, fn);
  },
};

export const shell = {
  opened: [] as string[],
  openedPaths: [] as string[],
  async openExternal(url: string): Promise<void> { shell.opened.push(url); },
  async openPath(path: string): Promise<string> { shell.openedPaths.push(path); return ''; },
};

export const screen = {
  getAllDisplays: () => fake.displays.map((workArea, i) => ({ id: i + 1, workArea, bounds: workArea })),
};

// ---- dialogs, menu, notifications, power ----------------------------------------------------------

export const dialog = {
  async showOpenDialog(win: BrowserWindow | Record<string, unknown>, options?: Record<string, unknown>): Promise<{ canceled: boolean; filePaths: string[] }> {
    fake.openDialogs.push((options ?? win) as Record<string, unknown>);
    const picked = fake.dialogAnswers.shift();
    return picked === undefined || picked === null ? { canceled: true, filePaths: [] } : { canceled: false, filePaths: [picked] };
  },
  async showMessageBox(win: BrowserWindow | Record<string, unknown>, options?: Record<string, unknown>): Promise<{ response: number; checkboxChecked: boolean }> {
    fake.messageBoxes.push((options ?? win) as Record<string, unknown>);
    return { response: fake.messageBoxResponses.shift() ?? 0, checkboxChecked: false };
  },
  showErrorBox(title: string, content: string): void {
    fake.errorBoxes.push({ title, content });
  },
};

export interface MenuItemOptions { label?: string; role?: string; type?: string; accelerator?: string; submenu?: MenuItemOptions[]; click?: () => void }

export const Menu = {
  buildFromTemplate(template: MenuItemOptions[]): { items: MenuItemOptions[] } {
    return { items: template };
  },
  setApplicationMenu(menu: { items: MenuItemOptions[] } | null): void {
    fake.menu = menu;
  },
};

export class Notification {
  constructor(readonly options: { title: string; body?: string }) {}
  static isSupported(): boolean { return true; }
  show(): void { fake.notifications.push(this.options); }
}

let nextBlocker = 1;
export const powerSaveBlocker = {
  start(type: string): number {
    const id = nextBlocker++;
    fake.powerBlockers.set(id, type);
    return id;
  },
  stop(id: number): void { fake.powerBlockers.delete(id); },
  isStarted(id: number): boolean { return fake.powerBlockers.has(id); },
};

// ---- safeStorage -------------------------------------------------------------------------------------

const KEYCHAIN_PREFIX = Buffer.from('v11');

export const safeStorage = {
  async isAsyncEncryptionAvailable(): Promise<boolean> { return fake.keychain.available; },
  getSelectedStorageBackend(): 'basic_text' | 'gnome_libsecret' | 'kwallet' | 'kwallet5' | 'kwallet6' | 'unknown' { return fake.keychain.backend; },
  async encryptStringAsync(plainText: string): Promise<Buffer> {
    if (!fake.keychain.available) throw new Error('Error while encrypting the text provided to safeStorage.encryptStringAsync. Encryption is not available.');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', fake.keychain.key, iv);
    const body = Buffer.concat([cipher.update(plainText, 'utf8'), cipher.final()]);
    return Buffer.concat([KEYCHAIN_PREFIX, iv, cipher.getAuthTag(), body]);
  },
  async decryptStringAsync(encrypted: Buffer): Promise<{ shouldReEncrypt: boolean; result: string }> {
    const fail = () => new Error('Error while decrypting the ciphertext provided to safeStorage.decryptStringAsync.');
    if (!fake.keychain.available || !encrypted.subarray(0, 3).equals(KEYCHAIN_PREFIX)) throw fail();
    const decipher = createDecipheriv('aes-256-gcm', fake.keychain.key, encrypted.subarray(3, 15));
    decipher.setAuthTag(encrypted.subarray(15, 31));
    try {
      return { shouldReEncrypt: false, result: Buffer.concat([decipher.update(encrypted.subarray(31)), decipher.final()]).toString('utf8') };
    } catch {
      throw fail();
    }
  },
};

// ---- utility processes ----------------------------------------------------------------------------

const PARENT_PORT_SHIM = new URL('./fake-parent-port.mjs', import.meta.url).href;

/** Electron's UtilityProcess over a Node child process (the module sees `process.parentPort`). */
class UtilityProcess extends EventEmitter {
  private readonly child: ChildProcess;
  pid: number | undefined;
  constructor(modulePath: string, args: string[], options: { env?: NodeJS.ProcessEnv; execArgv?: string[]; serviceName?: string; stdio?: unknown }) {
    super();
    this.child = forkChild(modulePath, args, {
      env: options.env ?? process.env,
      execArgv: ['--import', PARENT_PORT_SHIM, ...(options.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.pid = this.child.pid;
    fake.utilityProcesses.push({ modulePath, serviceName: options.serviceName, execArgv: options.execArgv ?? [], process: this });
    this.child.on('spawn', () => this.emit('spawn'));
    this.child.on('message', (data) => this.emit('message', data));
    this.child.on('exit', (code, signal) => {
      this.pid = undefined;
      this.emit('exit', code ?? (signal ? 1 : 0));
    });
  }
  postMessage(message: unknown): void {
    if (this.child.connected) this.child.send(message as object);
  }
  kill(): boolean {
    return this.child.kill();
  }
}

export const utilityProcess = {
  fork(modulePath: string, args: string[] = [], options: Record<string, unknown> = {}): UtilityProcess {
    return new UtilityProcess(modulePath, args, options);
  },
};

// ---- test controls ----------------------------------------------------------------------------------

export const fake = {
  /** The page the preload runs in, and the frame its invoke() calls come from. */
  renderer: { contents: null as WebContents | null, frame: null as WebFrameMain | null },
  /** What contextBridge.exposeInMainWorld put on the page's window. */
  mainWorld: {} as Record<string, unknown>,
  ready: Promise.resolve(),
  singleInstanceLock: true,
  sandboxEnabled: false,
  appUserModelId: null as string | null,
  userData: '',
  displays: [{ x: 0, y: 0, width: 1920, height: 1080 }] as Rectangle[],
  /** Paths the next open dialogs answer (null: cancelled). */
  dialogAnswers: [] as (string | null)[],
  openDialogs: [] as Record<string, unknown>[],
  /** Button indexes the next message boxes answer. */
  messageBoxResponses: [] as number[],
  messageBoxes: [] as Record<string, unknown>[],
  errorBoxes: [] as { title: string; content: string }[],
  menu: null as { items: MenuItemOptions[] } | null,
  notifications: [] as { title: string; body?: string }[],
  powerBlockers: new Map<number, string>(),
  utilityProcesses: [] as { modulePath: string; serviceName: unknown; execArgv: string[]; process: UtilityProcess }[],
  quitCount: 0,
  exitCode: null as number | null,
  /** What safeStorage reports and encrypts with (a new key: another user's or machine's keychain). */
  keychain: {
    available: true,
    backend: 'gnome_libsecret' as ReturnType<typeof safeStorage.getSelectedStorageBackend>,
    key: randomBytes(32),
  },
  /** The page's top frame as the renderer's sender (the normal case). */
  useWindow(win: BrowserWindow): void {
    fake.renderer.contents = win.webContents;
    fake.renderer.frame = win.webContents.mainFrame;
  },
};

(process.versions as Record<string, string>).electron ??= FAKE_ELECTRON_VERSION;

export default { app, BrowserWindow, contextBridge, dialog, ipcMain, ipcRenderer, Menu, Notification, powerSaveBlocker, protocol, safeStorage, screen, session, shell, utilityProcess };
