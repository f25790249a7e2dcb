// A model's weights live in the ONNX Runtime session only: once the generation session exists, JS
// holds no copy of them (checked on the V8 side: bytes held in ArrayBuffers). Float weights come
// from the checkpoint file, 4-bit blocks from the quantized-weight cache's entry.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Generator } from '../../src-main/infer/generate.js';
import { loadModel } from '../../src-main/model/load.js';
import { int4Bytes } from '../../src-main/model/quant.js';
import { prepareInt4, quantizedWeights } from '../../src-main/model/quant-cache.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { useFinchHome } from '../helpers/fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** ArrayBuffer bytes after full collections; V8 frees buffers concurrently, so wait until the count settles. */
async function settledArrayBuffers(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
    const now = process.memoryUsage().arrayBuffers;
    if (now === last) return now;
    last = now;
  }
  return last;
}

let root: string, dir: string, floatBytes: number, restoreHome: () => void;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'finch-weights-memory-'));
  dir = join(root, 'model');
  // 8.5M parameters, 34 MB in float32: large next to everything else JS allocates here.
  const ck = writeSyntheticCheckpoint(dir, { hiddenSize: 256, numLayers: 4, intermediateSize: 704, modelVocabSize: 16000, tieWordEmbeddings: true, dtype: 'bfloat16' });
  floatBytes = ck.numParams * 4;
  restoreHome = useFinchHome(join(root, 'home'));
});
after(() => {
  restoreHome();
  rmSync(root, { recursive: true, force: true });
});

/** ArrayBuffer bytes JS holds while a generator built from the folder is alive (and its first token). */
async function heldWhileLoaded(streamFloats: boolean, int4: 'cache' | 'in JS' | null = null): Promise<{ held: number; token: number }> {
  const base = await settledArrayBuffers();
  const model = loadModel(dir, { quantize: int4 !== null, streamFloats });
  // 'in JS': the weights quantize each projection on first use and keep the blocks.
  if (int4 === 'cache') await prepareInt4(dir, model.config, model.weights, { threads: 2 });
  const gen = await Generator.create(model.weights, model.invFreq, { maxPositions: 16, threads: 2 });
  // The session is built by the first request (its batch size fixes the graph's).
  const [r] = await gen.generate({ prompts: [[1, 2, 3, 4]], maxNewTokens: 1, eosIds: [] });
  model.close();
  const held = (await settledArrayBuffers()) - base;
  await gen.release();
  return { held, token: r!.ids[0]! };
}

test('after session creation JS holds under 10% of the float weights (and the check sees a held copy)', async () => {
  const streamed = await heldWhileLoaded(true);
  assert.ok(streamed.held < 0.1 * floatBytes, `JS still holds ${(streamed.held / 2 ** 20).toFixed(1)} MB of ${(floatBytes / 2 ** 20).toFixed(1)} MB of weights`);
  // The same model built from weights kept in JS: the check must see them, and the token must agree.
  const kept = await heldWhileLoaded(false);
  assert.ok(kept.held > 0.9 * floatBytes, `a kept copy shows as ${(kept.held / 2 ** 20).toFixed(1)} MB`);
  assert.equal(streamed.token, kept.token);
  assert.deepEqual(readdirSync(join(root, 'home', 'tmp')), [], 'the staged model folder is removed');
});

test('after session creation JS holds under 10% of the 4-bit blocks, cold and warm (and the check sees blocks kept in JS)', async () => {
  const cfg = loadModel(dir).config;
  const blockBytes = quantizedWeights(cfg).reduce((a, j) => a + int4Bytes(j.N, j.K, 32), 0);
  const cold = await heldWhileLoaded(true, 'cache');
  const warm = await heldWhileLoaded(true, 'cache');
  for (const [what, r] of [['cold', cold], ['warm', warm]] as const) {
    assert.ok(r.held < 0.1 * blockBytes, `${what}: JS still holds ${(r.held / 2 ** 20).toFixed(1)} MB of ${(blockBytes / 2 ** 20).toFixed(1)} MB of 4-bit blocks`);
  }
  const kept = await heldWhileLoaded(true, 'in JS');
  assert.ok(kept.held > 0.9 * blockBytes, `blocks kept in JS show as ${(kept.held / 2 ** 20).toFixed(1)} MB of ${(blockBytes / 2 ** 20).toFixed(1)} MB`);
  assert.equal(warm.token, kept.token);
  assert.equal(cold.token, kept.token);
});
