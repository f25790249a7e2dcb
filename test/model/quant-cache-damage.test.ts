// A 4-bit cache entry damaged in ways other than truncation is reported, deleted and rebuilt with
// the blocks a direct quantization gives: a garbage header, another checkpoint's entry under this
// key's name (a copied file), an entry of the right key that lacks tensors or has wrong shapes.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../../src-main/model/load.js';
import { quantizeInt4 } from '../../src-main/model/quant.js';
import { prepareInt4, quantCacheKey } from '../../src-main/model/quant-cache.js';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { quantCacheDir } from '../../src-main/store/paths.js';
import { tempDir, tinyCheckpoint, useFinchHome } from '../helpers/fixtures.js';

const NAME = 'model.layers.0.self_attn.q_proj.weight';
let dir: string, restoreHome: () => void, direct: { packed: Uint8Array; scales: Float32Array }, file: string;
before(() => {
  dir = tinyCheckpoint();
  restoreHome = useFinchHome(join(tempDir(), 'home'));
  const c = Checkpoint.open(dir);
  direct = quantizeInt4(c.readTensor(NAME), 64, 64, 32);
  file = join(quantCacheDir(), `${quantCacheKey(c, 32)}.safetensors`);
  c.close();
});
after(() => restoreHome());

/** A 4-bit load through the cache: where its blocks came from, its messages, and one weight's blocks. */
async function prepare(blockSize = 32) {
  const model = loadModel(dir, { quantize: true, blockSize });
  const messages: string[] = [];
  const r = await prepareInt4(dir, model.config, model.weights, { threads: 1, onMessage: (m) => messages.push(m) });
  const w = model.weights.q(NAME, 64, 64);
  model.close();
  return { r, messages, w };
}

async function assertRebuilt(why: RegExp): Promise<void> {
  const rebuilt = await prepare();
  assert.equal(rebuilt.r.source, 'quantized');
  assert.equal(rebuilt.r.file, file);
  assert.equal(rebuilt.messages.length, 1, rebuilt.messages.join('\n'));
  assert.match(rebuilt.messages[0]!, new RegExp(`4-bit cache ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is unreadable \\(${why.source}.*\\); deleting it and quantizing again`));
  assert.deepEqual(rebuilt.w.packed, direct.packed);
  assert.deepEqual(rebuilt.w.scales, direct.scales);
  const hit = await prepare();
  assert.equal(hit.r.source, 'cache');
  assert.deepEqual(hit.messages, []);
}

test('a garbage header is rebuilt', async () => {
  await prepare();
  writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), Buffer.from('{"not": json')]));
  await assertRebuilt(/.*header length 4294967295 is implausible/);
});

test('another checkpoint\'s entry copied under this key is rebuilt, not misread', async () => {
  const other = await prepare(64); // the same checkpoint at block 64: another key, valid on its own
  rmSync(file, { force: true });
  copyFileSync(other.r.file!, file);
  await assertRebuilt(/it belongs to another checkpoint or format/);
});

/** Rewrites the JSON header of the safetensors file in place (same length, blank-padded): offsets and data stay. */
function editHeader(f: string, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void): void {
  const bytes = readFileSync(f);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  const text = JSON.stringify(header);
  assert.ok(text.length <= n, 'the edited header fits in place');
  bytes.write(text.padEnd(n, ' '), 8, 'utf8');
  writeFileSync(f, bytes);
}

test('an entry of the right key with a missing tensor or a wrong shape is rebuilt', async () => {
  await prepare();
  editHeader(file, (h) => {
    h[`${NAME}.scalez`] = h[`${NAME}.scales`]!;
    delete h[`${NAME}.scales`];
  });
  await assertRebuilt(/.*no tensor named model\.layers\.0\.self_attn\.q_proj\.weight\.scales/);
  editHeader(file, (h) => { h[`${NAME}.q4`]!.shape = [32, 64]; }); // the same bytes, the wrong [N, K/2]
  await assertRebuilt(/model\.layers\.0\.self_attn\.q_proj\.weight has the wrong shape/);
});
