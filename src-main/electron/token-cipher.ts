// The desktop app's keychain for the Hugging Face token (store/token-store.ts): Electron's
// safeStorage, which encrypts with the macOS Keychain, Windows DPAPI, or a Linux Secret Service
// (GNOME libsecret, KWallet). Where none of those is there, safeStorage on Linux falls back to
// 'basic_text': a key written into Chromium itself, so the "encrypted" token could be read by
// anyone with the file. That is no better than a private file and would claim more than it gives,
// so it counts as unavailable, as does a backend that is still 'unknown' (before the app is ready).

import { safeStorage } from 'electron';
import type { TokenCipher } from '../store/token-store.js';

/** The parts of Electron's safeStorage used here. */
export type SafeStorage = Pick<typeof safeStorage,
  'isAsyncEncryptionAvailable' | 'encryptStringAsync' | 'decryptStringAsync' | 'getSelectedStorageBackend'>;

/** Linux backends that encrypt with no secret of the user's own. */
const NOT_A_KEYCHAIN = new Set(['basic_text', 'unknown']);

/**
 * safeStorage as a TokenCipher, or null where it would not protect the token (no keychain, or
 * Linux's plain-text fallback): the token then goes to a file only the user can read. Call after
 * the app's 'ready' event.
 */
export async function keychainCipher(ss: SafeStorage = safeStorage, platform: NodeJS.Platform = process.platform): Promise<TokenCipher | null> {
  if (!(await ss.isAsyncEncryptionAvailable())) return null;
  if (platform === 'linux' && NOT_A_KEYCHAIN.has(ss.getSelectedStorageBackend())) return null;
  return {
    encrypt: (plain) => ss.encryptStringAsync(plain),
    decrypt: async (data) => (await ss.decryptStringAsync(data)).result,
  };
}
