// The 4-bit weight cache: a miss quantizes (on worker threads) and stores, a hit reads the same
// blocks back, a changed checkpoint misses, a corrupt entry is reported and rebuilt; list/clear.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sessionFromGraph } from '../../src-main/engine/onnx/staged.js';
import { loadModel } from '../../src-main/model/load.js';
import { stagingDir } from '../../src-main/store/paths.js';
import { buildLossGraph } from '../../src-main/train/step.js';
import { quantizeInt4 } from '../../src-main/model/quant.js';
import { cachedBlockSize, clearQuantCache, listQuantCache, prepareInt4, quantizedWeights } from '../../src-main/model/quant-cache.js';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { useFinchHome } from '../helpers/fixtures.js';

let root: string, dir: string, restoreHome: () => void;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'finch-quant-cache-'));
  dir = join(root, 'model');
  writeSyntheticCheckpoint(dir, { hiddenSize: 64, numLayers: 2, intermediateSize: 128, tieWordEmbeddings: true, dtype: 'bfloat16' });
  restoreHome = useFinchHome(join(root, 'home'));
});
after(() => {
  restoreHome();
  rmSync(root, { recursive: true, force: true });
});

/** Quantizes through the cache into a fresh model; returns the result, messages and one weight's blocks. */
async function prepare() {
  const model = loadModel(dir, { quantize: true, blockSize: 32 });
  const messages: string[] = [];
  const progress: number[] = [];
  const r = await prepareInt4(dir, model.config, model.weights, { threads: 2, onMessage: (m) => messages.push(m), onProgress: (d) => progress.push(d) });
  const name = 'model.layers.1.mlp.down_proj.weight';
  const w = model.weights.q(name, 64, 128);
  const inFile = model.weights.int4File(name);
  model.close();
  return { r, messages, progress, w, name, inFile };
}

test('miss quantizes on workers with progress, hit reads identical blocks, both equal direct quantization', async () => {
  const cold = await prepare();
  assert.equal(cold.r.source, 'quantized');
  const total = quantizedWeights(loadModel(dir).config).length;
  assert.equal(cold.progress.at(-1), total);
  assert.ok(cold.progress.length > total, 'progress after every weight');
  const c = Checkpoint.open(dir);
  const direct = quantizeInt4(c.readTensor(cold.name), 64, 128, 32);
  c.close();
  assert.deepEqual(cold.w.packed, direct.packed);
  assert.deepEqual(cold.w.scales, direct.scales);

  const warm = await prepare();
  assert.equal(warm.r.source, 'cache');
  assert.equal(warm.r.file, cold.r.file);
  assert.deepEqual(warm.w.packed, direct.packed);
  assert.deepEqual(warm.w.scales, direct.scales);
  assert.deepEqual(warm.messages, []);
  // Both hand the weights the blocks' places in the entry, each tensor 64 KiB-aligned (mappable).
  for (const p of [cold, warm]) {
    assert.equal(p.inFile?.path, cold.r.file);
    assert.equal(p.inFile!.packedOffset % 65536, 0);
    assert.equal(p.inFile!.scalesOffset % 65536, 0);
  }
});

/** The base model's loss on one fixed batch of 8 tokens, from a graph staged the way the trainer stages it. */
async function lossOf(fromCache: boolean, chunkBytes: number): Promise<number> {
  const model = loadModel(dir, { quantize: true, blockSize: 32 });
  if (fromCache) await prepareInt4(dir, model.config, model.weights, { threads: 2 });
  const T = 8, V = model.config.vocabSize;
  const session = await sessionFromGraph(buildLossGraph(model.weights, model.invFreq, { batch: 1, seq: T, lora: null, chunkBytes }), { threads: 2 }, stagingDir());
  const out = await session.run({
    input_ids: { dtype: 'int64', dims: [1, T], data: BigInt64Array.from({ length: T }, (_, i) => BigInt((i * 37 + 5) % V)) },
    position_ids: { dtype: 'int64', dims: [1, T], data: BigInt64Array.from({ length: T }, (_, i) => BigInt(i)) },
    attn_bias: { dtype: 'float32', dims: [1, 1, T, T], data: Float32Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 0 : -1e9)) },
    targets: { dtype: 'int32', dims: [T], data: Int32Array.from({ length: T }, (_, i) => (i * 37 + 42) % V) },
  });
  await session.release();
  model.close();
  return (out.loss!.data as Float32Array)[0]!;
}

test('training graphs read the blocks from the entry (whole and in row pieces) and compute what blocks held in JS compute', async () => {
  // Whole weights, then pieces small enough that the MLP and the head are split (rows and columns).
  for (const chunkBytes of [Infinity, 256]) {
    const inJs = await lossOf(false, chunkBytes), fromFile = await lossOf(true, chunkBytes);
    assert.ok(Number.isFinite(inJs));
    assert.ok(Math.abs(fromFile - inJs) <= 1e-6 * Math.abs(inJs), `chunks of ${chunkBytes} bytes: ${fromFile} from the entry vs ${inJs}`);
  }
});

test('a changed checkpoint (modification time) is a miss with a new entry', async () => {
  const first = await prepare();
  const f = join(dir, 'model.safetensors');
  const t = statSync(f).mtime;
  utimesSync(f, t, new Date(t.getTime() + 5000));
  const changed = await prepare();
  assert.equal(changed.r.source, 'quantized');
  assert.notEqual(changed.r.file, first.r.file);
  assert.equal((await prepare()).r.source, 'cache');
});

test('a corrupt entry is reported, deleted and rebuilt', async () => {
  const ok = await prepare();
  truncateSync(ok.r.file!, 1000);
  const rebuilt = await prepare();
  assert.equal(rebuilt.r.source, 'quantized');
  assert.equal(rebuilt.messages.length, 1);
  assert.match(rebuilt.messages[0]!, /4-bit cache .* is unreadable \(.*truncated.*\); deleting it and quantizing again/);
  assert.deepEqual(rebuilt.w.packed, ok.w.packed);
  assert.equal((await prepare()).r.source, 'cache');
});

test('list shows entries with their checkpoint and size; clear removes them', async () => {
  await prepare();
  const entries = listQuantCache();
  assert.ok(entries.length >= 1);
  const e = entries.find((x) => x.checkpoint === dir)!;
  assert.equal(e.blockSize, 32);
  assert.ok(e.bytes > 0);
  const freed = clearQuantCache();
  assert.ok(freed >= e.bytes);
  assert.deepEqual(listQuantCache(), []);
});

test('a cold quantization waits at `between` before each weight; one that throws stops the workers and writes no entry', async () => {
  clearQuantCache();
  const probe = loadModel(dir);
  const total = quantizedWeights(probe.config).length;
  probe.close();
  // One worker: `between` runs after a weight's blocks came back and before the next is handed out,
  // so while it holds, no weight is being quantized.
  let calls = 0;
  let release!: () => void;
  let heldAfter = -1;
  const held = new Promise<void>((reached) => {
    const model = loadModel(dir, { quantize: true, blockSize: 32 });
    const progress: number[] = [];
    void prepareInt4(dir, model.config, model.weights, {
      threads: 1, onProgress: (d) => progress.push(d),
      between: async () => {
        if (++calls !== 3) return;
        heldAfter = progress.at(-1)!;
        reached();
        await new Promise<void>((r) => { release = r; });
      },
    }).then((r) => { model.close(); finished(r.source); }, (e: unknown) => { model.close(); failed(e); });
  });
  let finished!: (source: string) => void, failed!: (e: unknown) => void;
  const done = new Promise<string>((res, rej) => { finished = res; failed = rej; });
  await held;
  assert.equal(heldAfter, 2, 'held before the third weight, the first two done');
  release();
  assert.equal(await done, 'quantized');
  assert.equal(calls, total + 1, 'once before each weight, and once to find the queue empty');

  // Stopped by throwing after 4 weights: the error comes through, and the cache holds nothing.
  clearQuantCache();
  const stopped = loadModel(dir, { quantize: true, blockSize: 32 });
  let n = 0;
  await assert.rejects(prepareInt4(dir, stopped.config, stopped.weights, {
    threads: 2, between: async () => { if (++n > 4) throw new Error('cancelled while quantizing'); },
  }), /cancelled while quantizing/);
  stopped.close();
  assert.deepEqual(listQuantCache(), []);
});

test('cachedBlockSize finds the block size a checkpoint is cached at, in the order asked', async () => {
  clearQuantCache();
  assert.equal(cachedBlockSize(dir, [32, 64]), null, 'nothing cached');
  const m = loadModel(dir, { quantize: true, blockSize: 64 });
  await prepareInt4(dir, m.config, m.weights, { threads: 2 });
  m.close();
  assert.equal(cachedBlockSize(dir, [32, 64]), 64);
  const n = loadModel(dir, { quantize: true, blockSize: 32 });
  await prepareInt4(dir, n.config, n.weights, { threads: 2 });
  n.close();
  assert.equal(cachedBlockSize(dir, [32, 64]), 32, 'both cached: the first asked');
  assert.equal(cachedBlockSize(dir, [64, 32]), 64);
  // A changed checkpoint is another key: its old entries no longer count.
  const later = new Date(Date.now() + 5000);
  utimesSync(join(dir, 'model.safetensors'), later, later);
  assert.equal(cachedBlockSize(dir, [32, 64]), null);
});
