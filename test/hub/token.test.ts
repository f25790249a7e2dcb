// Which Hugging Face token a Hub call uses: the one given, else the app's stored token (the
// 'hfToken' setting of FINCH_HOME/finch.db until the token store lands), else HF_TOKEN.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { hubToken } from '../../src-main/hub/index.js';
import { appStoredToken } from '../../src-main/hub/token.js';
import { Store } from '../../src-main/store/store.js';
import { tempDir, useFinchHome } from '../helpers/fixtures.js';

const savedEnv = process.env.HF_TOKEN;
const restoreHome = useFinchHome(tempDir('finch-token-home-'));
after(() => {
  restoreHome();
  if (savedEnv === undefined) delete process.env.HF_TOKEN;
  else process.env.HF_TOKEN = savedEnv;
});

test('the given token, else the stored one, else HF_TOKEN; blank counts as none', () => {
  process.env.HF_TOKEN = 'hf_env';
  assert.equal(hubToken('hf_given', () => 'hf_stored'), 'hf_given');
  assert.equal(hubToken(undefined, () => 'hf_stored'), 'hf_stored');
  assert.equal(hubToken('  ', () => null), 'hf_env');
  delete process.env.HF_TOKEN;
  assert.equal(hubToken(undefined, () => undefined), undefined);
});

test('the app\'s stored token is read from FINCH_HOME/finch.db (none without a database)', () => {
  assert.equal(appStoredToken(), undefined, 'no database yet');
  const store = new Store(join(process.env.FINCH_HOME!, 'finch.db'));
  try {
    assert.equal(appStoredToken(), undefined, 'no setting yet');
    store.setSetting('hfToken', 'hf_from_the_app');
    assert.equal(appStoredToken(), 'hf_from_the_app');
    assert.equal(hubToken(), 'hf_from_the_app');
  } finally {
    store.close();
  }
});
