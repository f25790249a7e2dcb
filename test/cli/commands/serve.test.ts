// `finch serve` on the command line: a bad --port is a usage error naming it, --help lists the
// options. (The server it starts is tested in test/server/.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finch } from '../../helpers/fixtures.js';

test('finch serve: --help lists the options; a bad --port is a usage error', async () => {
  const help = await finch(['serve', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--port N[\s\S]*--open/);
  const bad = await finch(['serve', '--port', 'eighty']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--port must be a port number \(0-65535\), got "eighty"/);
});
