// The Hugging Face token's store (src-main/store/token-store.ts): a file only the user can read
// (0600 in a 0700 folder, written atomically) without a keychain; the keychain's ciphertext with
// one (here a test cipher: AES-GCM under a key of its own, as the desktop's keychain is); one saved
// token at a time; an encrypted token unreadable without the keychain, with what to do. The order
// every door asks for a token in is test/hub/token.test.ts's.
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TokenStore, TokenUnreadableError, type TokenCipher } from '../../src-main/store/token-store.js';

const TOKEN = 'hf_testTokenNotARealOne0123456789';
const home = () => mkdtempSync(join(tmpdir(), 'finch-tokens-'));
const mode = (p: string) => statSync(p).mode & 0o777;

/** A keychain: AES-256-GCM under its own key (another key is another user's keychain). */
function testCipher(key = randomBytes(32)): TokenCipher & { failNext: boolean } {
  const c = {
    failNext: false,
    async encrypt(plain: string) {
      if (c.failNext) throw new Error('the keychain is locked');
      const iv = randomBytes(12);
      const e = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([e.update(plain, 'utf8'), e.final()]);
      return Buffer.concat([iv, e.getAuthTag(), body]);
    },
    async decrypt(data: Buffer) {
      const d = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      d.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([d.update(data.subarray(28)), d.final()]).toString('utf8');
    },
  };
  return c;
}

test('without a keychain the token is a file only this user can read, replaced atomically', { skip: process.platform === 'win32' && 'POSIX modes' }, async () => {
  const tokens = new TokenStore(home());
  assert.equal(tokens.saveAs, 'file');
  assert.equal(tokens.storage(), null);
  assert.equal(await tokens.read(), null);

  assert.equal(await tokens.save(`  ${TOKEN}\n`), 'file');
  const file = join(tokens.dir, 'hf-token');
  assert.equal(readFileSync(file, 'utf8'), TOKEN, 'trimmed');
  assert.equal(mode(file).toString(8), '600');
  assert.equal(mode(tokens.dir).toString(8), '700');
  assert.equal(tokens.storage(), 'file');
  assert.equal(await tokens.read(), TOKEN);

  // A second save replaces it by a rename: the same mode, no temporary file left beside it.
  await tokens.save('hf_second');
  assert.equal(await tokens.read(), 'hf_second');
  assert.equal(mode(file).toString(8), '600');
  assert.deepEqual(readdirSync(tokens.dir), ['hf-token']);

  assert.equal(await tokens.save('   '), null, 'an empty token removes the saved one');
  assert.equal(tokens.storage(), null);
  assert.deepEqual(readdirSync(tokens.dir), []);
});

test('a folder another program left open to others is closed again on save', { skip: process.platform === 'win32' && 'POSIX modes' }, async () => {
  const tokens = new TokenStore(home());
  await tokens.save(TOKEN);
  chmodSync(tokens.dir, 0o755);
  await tokens.save(TOKEN);
  assert.equal(mode(tokens.dir).toString(8), '700');
});

test('with a keychain the token is stored encrypted, the plain file goes, and only that keychain reads it', async () => {
  const dir = home();
  await new TokenStore(dir).save('hf_plain_before');
  const key = randomBytes(32);
  const tokens = new TokenStore(dir, testCipher(key));
  assert.equal(tokens.saveAs, 'encrypted');
  assert.equal(await tokens.read(), 'hf_plain_before', 'a file saved without the keychain still reads');

  assert.equal(await tokens.save(TOKEN), 'encrypted');
  assert.deepEqual(readdirSync(tokens.dir), ['hf-token.enc'], 'one saved token at a time');
  const bytes = readFileSync(join(tokens.dir, 'hf-token.enc'));
  assert.ok(!bytes.includes(Buffer.from(TOKEN)) && !bytes.includes(Buffer.from(TOKEN.slice(3, 15))), 'the file does not hold the token in clear');
  if (process.platform !== 'win32') assert.equal(mode(join(tokens.dir, 'hf-token.enc')).toString(8), '600');
  assert.equal(tokens.storage(), 'encrypted');
  assert.equal(await tokens.read(), TOKEN);
  assert.equal(await new TokenStore(dir, testCipher(key)).read(), TOKEN, 'the same keychain in the next launch');

  // The CLI and `finch serve` have no keychain; another keychain cannot decrypt it.
  const noKeychain = new TokenStore(dir);
  await assert.rejects(noKeychain.read(), (e: Error) => e instanceof TokenUnreadableError
    && /hf-token\.enc\) is encrypted with the desktop app's keychain, which only the app can use: pass --token or set HF_TOKEN/.test(e.message));
  assert.equal(await noKeychain.readIfReadable(), null);
  assert.equal(noKeychain.storage(), 'encrypted', 'it still says a token is saved, and how');
  await assert.rejects(new TokenStore(dir, testCipher()).read(), /could not be decrypted by this system's keychain/);

  // Saving without the keychain replaces it with the private file.
  assert.equal(await noKeychain.save('hf_from_cli'), 'file');
  assert.deepEqual(readdirSync(tokens.dir), ['hf-token']);
  assert.equal(await tokens.read(), 'hf_from_cli');
});

test('a keychain that fails to encrypt leaves the saved token as it was', async () => {
  const cipher = testCipher();
  const tokens = new TokenStore(home(), cipher);
  await tokens.save(TOKEN);
  cipher.failNext = true;
  await assert.rejects(tokens.save('hf_new'), /the keychain is locked/);
  assert.equal(await tokens.read(), TOKEN);
  assert.deepEqual(readdirSync(tokens.dir), ['hf-token.enc']);
});

test('a token file edited by hand (trailing newline, spaces) reads as the token', async () => {
  const tokens = new TokenStore(home());
  await tokens.save('x');
  writeFileSync(join(tokens.dir, 'hf-token'), `${TOKEN}\n`);
  assert.equal(await tokens.read(), TOKEN);
});
