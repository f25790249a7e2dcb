// `finch cache list|clear`: the 4-bit weight cache as the command line shows and removes it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../../src-main/model/load.js';
import { prepareInt4 } from '../../../src-main/model/quant-cache.js';
import { finch, tempDir, tinyCheckpoint, useFinchHome } from '../../helpers/fixtures.js';

test('list shows the entry with its checkpoint and size, clear removes it, a bad action is a usage error', async () => {
  const restoreHome = useFinchHome(join(tempDir(), 'home'));
  try {
    const dir = tinyCheckpoint();
    const model = loadModel(dir, { quantize: true });
    const made = await prepareInt4(dir, model.config, model.weights, { threads: 1 });
    model.close();
    const list = await finch(['cache', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as { entries: { file: string; checkpoint: string; bytes: number; block_size: number }[]; total_bytes: number };
    assert.deepEqual(listed.entries.map((e) => [e.file, e.checkpoint, e.bytes, e.block_size]), [[made.file, dir, made.bytes, 32]]);
    assert.equal(listed.total_bytes, made.bytes);
    const text = await finch(['cache']);
    assert.match(text.stdout, new RegExp(`block 32 .*${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const clear = await finch(['cache', 'clear', '--json']);
    assert.equal(JSON.parse(clear.stdout).freed_bytes, made.bytes);
    assert.deepEqual(JSON.parse((await finch(['cache', '--json'])).stdout).entries, []);
    const bad = await finch(['cache', 'purge']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown action "purge"/);
  } finally {
    restoreHome();
  }
});
