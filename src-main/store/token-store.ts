// The Hugging Face access token, kept out of the library database: one store under FINCH_HOME that
// the desktop app, `finch serve` and the CLI all read. Where the desktop app runs and the system
// keychain works, the token is encrypted with it (Electron's safeStorage, handed in as a
// TokenCipher by src-main/electron/token-cipher.ts: only electron/ imports electron); everywhere
// else it is a file only this user can read (mode 0600 in a 0700 folder), written atomically.
//
//   FINCH_HOME/secrets/hf-token       the token as text (storage 'file')
//   FINCH_HOME/secrets/hf-token.enc   the keychain's ciphertext (storage 'encrypted')
//
// At most one of the two exists: saving removes the other. The CLI and `finch serve` have no
// keychain (it belongs to Electron), so they cannot read an encrypted token: they say so and go on
// without it (--token or HF_TOKEN still work).
//
// Which token a Hub request uses is decided once, by src-main/hub/token.ts hubToken(): the one
// passed explicitly (--token, a request's own token), else HF_TOKEN, else the one read here.
//
//   const saved = await new TokenStore(finchHome()).read();   // null when none is saved

import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from './store.js';

/** Encrypts and decrypts with the system keychain (Electron safeStorage in the desktop app). */
export interface TokenCipher {
  encrypt(plain: string): Promise<Buffer>;
  /** Rejects when the bytes were not encrypted by this keychain (another user, another machine). */
  decrypt(data: Buffer): Promise<string>;
}

/** How a saved token is kept: encrypted by the keychain, or a file only this user can read. */
export type TokenStorage = 'encrypted' | 'file';

const FILES: Record<TokenStorage, string> = { file: 'hf-token', encrypted: 'hf-token.enc' };

/** The settings key an earlier Finch kept the token under, in plain text in finch.db. */
export const LEGACY_TOKEN_SETTING = 'hfToken';

export class TokenUnreadableError extends Error {
  constructor(readonly file: string, why: string) {
    super(`the saved Hugging Face token (${file}) ${why}: pass --token or set HF_TOKEN, or save the token again in Finch's Settings`);
    this.name = 'TokenUnreadableError';
  }
}

export class TokenStore {
  readonly dir: string;

  /**
   * `home`: FINCH_HOME. `cipher`: the keychain, where the desktop app runs and it is usable; null
   * (the CLI, `finch serve`, a Linux desktop without a Secret Service) saves to a private file.
   */
  constructor(home: string, private readonly cipher: TokenCipher | null = null) {
    this.dir = join(home, 'secrets');
  }

  /** How save() keeps a token in this process. */
  get saveAs(): TokenStorage {
    return this.cipher ? 'encrypted' : 'file';
  }

  /** How the saved token is kept, or null when none is saved. */
  storage(): TokenStorage | null {
    return (['encrypted', 'file'] as const).find((s) => existsSync(this.path(s))) ?? null;
  }

  /**
   * The saved token, or null when none is saved. Throws TokenUnreadableError when it is encrypted
   * and this process has no keychain (the CLI reading the desktop app's token), or the keychain
   * cannot decrypt it.
   */
  async read(): Promise<string | null> {
    const storage = this.storage();
    if (!storage) return null;
    const file = this.path(storage);
    const bytes = readFileSync(file);
    if (storage === 'file') return bytes.toString('utf8').trim() || null;
    if (!this.cipher) throw new TokenUnreadableError(file, 'is encrypted with the desktop app\'s keychain, which only the app can use');
    try {
      return (await this.cipher.decrypt(bytes)).trim() || null;
    } catch (e) {
      throw new TokenUnreadableError(file, `could not be decrypted by this system's keychain (${(e as Error).message})`);
    }
  }

  /** The saved token, or null when none is saved or this process cannot read it. */
  async readIfReadable(): Promise<string | null> {
    try {
      return await this.read();
    } catch (e) {
      if (e instanceof TokenUnreadableError) return null;
      throw e;
    }
  }

  /** Saves `token` (replacing any saved one) and says how; an empty token clears it. */
  async save(token: string): Promise<TokenStorage | null> {
    const t = token.trim();
    if (!t) {
      this.clear();
      return null;
    }
    const storage = this.saveAs;
    writePrivateFile(this.dir, FILES[storage], storage === 'encrypted' ? await this.cipher!.encrypt(t) : Buffer.from(t, 'utf8'));
    rmSync(this.path(storage === 'file' ? 'encrypted' : 'file'), { force: true });
    return storage;
  }

  clear(): void {
    for (const s of ['encrypted', 'file'] as const) rmSync(this.path(s), { force: true });
  }

  private path(s: TokenStorage): string {
    return join(this.dir, FILES[s]);
  }
}

/**
 * Writes `dir/name` readable and writable by this user only: the folder is made 0700, the bytes go
 * to a 0600 temporary file that is flushed and renamed over the old one, so a reader sees the old
 * token or the new one, never a part, and no other user ever can.
 */
function writePrivateFile(dir: string, name: string, bytes: Buffer): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform !== 'win32') chmodSync(dir, 0o700); // mkdir's mode does not change an existing folder
  const tmp = join(dir, `.${name}.tmp-${process.pid}-${Date.now()}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
}

/**
 * Moves a token an earlier Finch kept in finch.db (the `hfToken` setting, in plain text) into the
 * token store, then deletes it from the database. Run when the services open; a no-op once done.
 * The database's token replaces a saved one: a newer Finch always moves it out at start, so a token
 * found there was saved since (by an older Finch) and is the user's latest.
 */
export async function migrateTokenOutOfDb(store: Store, tokens: TokenStore): Promise<TokenStorage | null> {
  const legacy = store.setting<unknown>(LEGACY_TOKEN_SETTING);
  if (legacy === null) return null;
  // Saved first, deleted after: a crash in between leaves the token in both places, never in neither.
  const storage = typeof legacy === 'string' && legacy.trim() ? await tokens.save(legacy) : null;
  store.eraseSetting(LEGACY_TOKEN_SETTING);
  return storage;
}
