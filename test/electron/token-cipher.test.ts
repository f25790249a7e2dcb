// src-main/electron/token-cipher.ts: the desktop app encrypts the Hugging Face token with the
// system keychain (a faked safeStorage here) where there is one, and treats Linux's plain-text
// fallback ('basic_text') and a backend not yet known as none: the token then goes to a private
// file, and the app says which. Through the desktop back end: an earlier finch.db's token moves
// out encrypted; `finch serve` (no keychain) sees that one is saved but cannot read it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { SettingsView } from '../../src-shared/api.js';
import { installFakeElectron } from '../helpers/electron-loader.js';

const { fake, safeStorage } = await installFakeElectron();
const { keychainCipher } = await import('../../src-main/electron/token-cipher.js');
const { startDesktopBackend } = await import('../../src-main/electron/backend.js');
const { createServices } = await import('../../src-main/services/index.js');
const { Store } = await import('../../src-main/store/store.js');

const TOKEN = 'hf_desktopTokenNotARealOne0123456789';
const homes: string[] = [];
const newHome = () => {
  const h = mkdtempSync(join(tmpdir(), 'finch-keychain-'));
  homes.push(h);
  process.env.FINCH_HOME = h;
  return h;
};
after(() => { for (const h of homes) rmSync(h, { recursive: true, force: true }); });

const keychain = (available: boolean, backend: typeof fake.keychain.backend) => Object.assign(fake.keychain, { available, backend });

async function settings(d: { dispatch(n: string, a: unknown): Promise<{ ok: boolean; value?: unknown; error?: { message: string } }> }, patch?: object): Promise<SettingsView> {
  const r = patch ? await d.dispatch('setSettings', [patch]) : await d.dispatch('getSettings', []);
  assert.ok(r.ok, r.error?.message);
  return r.value as SettingsView;
}

test('safeStorage is the cipher where it has a keychain; Linux\'s basic_text and an unknown backend are none', async () => {
  keychain(true, 'gnome_libsecret');
  const c = await keychainCipher();
  assert.ok(c);
  const bytes = await c.encrypt(TOKEN);
  assert.ok(!bytes.includes(Buffer.from(TOKEN)));
  assert.equal(await c.decrypt(bytes), TOKEN);
  for (const backend of ['kwallet', 'kwallet5', 'kwallet6'] as const) {
    keychain(true, backend);
    assert.ok(await keychainCipher(safeStorage, 'linux'), backend);
  }

  keychain(true, 'basic_text');
  assert.equal(await keychainCipher(safeStorage, 'linux'), null, 'basic_text keeps the token as good as plain: a private file instead');
  assert.ok(await keychainCipher(safeStorage, 'darwin'), 'the backend is a Linux matter: macOS has its Keychain');
  keychain(true, 'unknown');
  assert.equal(await keychainCipher(safeStorage, 'linux'), null, 'asked before the app was ready');
  keychain(false, 'gnome_libsecret');
  assert.equal(await keychainCipher(safeStorage, 'linux'), null);
  assert.equal(await keychainCipher(safeStorage, 'win32'), null);
  keychain(true, 'gnome_libsecret');
});

test('the desktop app saves the token encrypted and says so; finch serve knows one is saved but cannot read it', async () => {
  const home = newHome();
  keychain(true, 'gnome_libsecret');
  const desktop = await startDesktopBackend({ pickPath: async () => null });
  const saved = process.env.HF_TOKEN;
  delete process.env.HF_TOKEN;
  try {
    assert.deepEqual(await settings(desktop.dispatcher), { hfTokenSet: false, hfTokenStorage: null, hfTokenSaveAs: 'encrypted', hfTokenFromEnv: false, hfEndpoint: null, cacheDir: null, defaultProvider: 'auto' });
    const s = await settings(desktop.dispatcher, { hfToken: TOKEN });
    assert.deepEqual([s.hfTokenSet, s.hfTokenStorage], [true, 'encrypted']);
    assert.deepEqual(readdirSync(join(home, 'secrets')), ['hf-token.enc']);
    assert.ok(!readFileSync(join(home, 'secrets', 'hf-token.enc')).includes(Buffer.from(TOKEN)));
    assert.equal(desktop.store.setting('hfToken'), null, 'nothing in finch.db');
    desktop.close();

    // `finch serve` on the same FINCH_HOME has no keychain.
    const serve = createServices({ browserMode: true });
    const v = await settings(serve.dispatcher);
    assert.deepEqual([v.hfTokenSet, v.hfTokenStorage, v.hfTokenSaveAs], [false, 'encrypted', 'file']);
    serve.close();
  } finally {
    if (saved !== undefined) process.env.HF_TOKEN = saved;
  }
});

test('on Linux with only basic_text the desktop app keeps the token in a private file and says so', async () => {
  const home = newHome();
  keychain(true, 'basic_text');
  const desktop = await startDesktopBackend({ pickPath: async () => null });
  try {
    const s = await settings(desktop.dispatcher, { hfToken: TOKEN });
    assert.deepEqual([s.hfTokenStorage, s.hfTokenSaveAs], ['file', 'file']);
    assert.equal(readFileSync(join(home, 'secrets', 'hf-token'), 'utf8'), TOKEN);
  } finally {
    desktop.close();
    keychain(true, 'gnome_libsecret');
  }
});

test('an earlier finch.db\'s plain-text token moves out encrypted when the desktop app starts', async () => {
  const home = newHome();
  const old = new Store(join(home, 'finch.db'));
  old.setSetting('hfToken', TOKEN); // as setSettings stored it before
  old.close();
  keychain(true, 'gnome_libsecret');
  const desktop = await startDesktopBackend({ pickPath: async () => null });
  try {
    const s = await settings(desktop.dispatcher);
    assert.deepEqual([s.hfTokenSet, s.hfTokenStorage], [true, 'encrypted']);
    assert.equal(desktop.store.setting('hfToken'), null);
    assert.deepEqual(readdirSync(join(home, 'secrets')), ['hf-token.enc']);
  } finally {
    desktop.close();
  }
});
