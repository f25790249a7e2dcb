// Which Hugging Face token a Hub call uses (src-main/hub/token.ts): the one given, else HF_TOKEN,
// else the one saved in FINCH_HOME's token store; blank counts as none; a saved token this process
// cannot read (the desktop app's keychain ciphertext, read by the CLI) is skipped with why.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, beforeEach, test } from 'node:test';
import { hubToken } from '../../src-main/hub/index.js';
import { Store } from '../../src-main/store/store.js';
import { TokenStore } from '../../src-main/store/token-store.js';
import { tempDir, useFinchHome } from '../helpers/fixtures.js';

const savedEnv = process.env.HF_TOKEN;
const restoreHome = useFinchHome(tempDir('finch-token-home-'));
after(() => {
  restoreHome();
  if (savedEnv === undefined) delete process.env.HF_TOKEN;
  else process.env.HF_TOKEN = savedEnv;
});
beforeEach(() => {
  delete process.env.HF_TOKEN;
  new TokenStore(process.env.FINCH_HOME!).clear();
});

test('the given token, else HF_TOKEN, else the saved one; blank counts as none', async () => {
  const tokens = new TokenStore(tempDir('finch-tokens-'));
  assert.equal(await hubToken(undefined, tokens), undefined, 'nothing anywhere');
  await tokens.save('hf_saved');
  assert.equal(await hubToken(undefined, tokens), 'hf_saved');
  assert.equal(await hubToken('hf_given', tokens), 'hf_given');
  process.env.HF_TOKEN = 'hf_env';
  assert.equal(await hubToken(undefined, tokens), 'hf_env', 'HF_TOKEN overrides the saved token');
  assert.equal(await hubToken('  ', tokens), 'hf_env', 'a blank --token is none');
  assert.equal(await hubToken('hf_given', tokens), 'hf_given');
  process.env.HF_TOKEN = ' ';
  assert.equal(await hubToken(null, tokens), 'hf_saved', 'a blank HF_TOKEN is none');
});

test('by default the token store under FINCH_HOME, never a token left in finch.db', async () => {
  const home = process.env.FINCH_HOME!;
  const store = new Store(join(home, 'finch.db'));
  try {
    store.setSetting('hfToken', 'hf_left_in_the_database');
    assert.equal(await hubToken(), undefined, 'finch.db is not a token store (the services move such a token out)');
    await new TokenStore(home).save('hf_from_settings');
    assert.equal(await hubToken(), 'hf_from_settings');
    assert.equal(await hubToken('hf_flag'), 'hf_flag');
  } finally {
    store.close();
  }
});

test('a token encrypted by the desktop app\'s keychain is skipped by the CLI, which is told why', async () => {
  const tokens = new TokenStore(tempDir('finch-tokens-'));
  mkdirSync(tokens.dir, { recursive: true });
  writeFileSync(join(tokens.dir, 'hf-token.enc'), Buffer.from([1, 2, 3, 4]));
  const why: string[] = [];
  assert.equal(await hubToken(undefined, tokens, (w) => why.push(w)), undefined);
  assert.equal(why.length, 1);
  assert.match(why[0]!, /hf-token\.enc\) is encrypted with the desktop app's keychain.*: pass --token or set HF_TOKEN/);
  process.env.HF_TOKEN = 'hf_env';
  assert.equal(await hubToken(undefined, tokens, (w) => why.push(w)), 'hf_env', 'HF_TOKEN needs no keychain');
  assert.equal(why.length, 1, 'the saved token is not read when HF_TOKEN answers');
});
