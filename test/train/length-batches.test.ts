// Batches shaped by their own rows: one step graph with a symbolic sequence length runs a batch
// padded only to its own longest row and gives the loss and gradients of the same rows padded to
// the dataset's length (float, 4-bit, checkpointed + chunked; LoRA dropout on); whole runs with
// and without length shaping match, a length-grouped run resumes exactly, and the symbolic graph
// opens on WebGPU with CPU fallback disabled.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Batch } from '../../src-main/data/batch.js';
import { shuffledIndices } from '../../src-main/data/random.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { loadModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, LORA_TARGETS, initLora } from '../../src-main/model/lora.js';
import { batchFeeds } from '../../src-main/train/feeds.js';
import { batchShaping, lengthGroupedOrder, paddedLength, tokenIndexFeed } from '../../src-main/train/length-batches.js';
import { DEFAULT_OPTIMIZER, type StepShape, buildAccumulatingStep, buildFusedStep } from '../../src-main/train/step.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { events, finch, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';
import { webGpuSession } from '../helpers/webgpu.js';

test('padded length: own longest row rounded up to 8, capped at the longest the graph takes; static mode pads to it', () => {
  const own = batchShaping(200, {}), fixed = batchShaping(200, { staticSeq: true });
  assert.deepEqual([paddedLength(own, 1), paddedLength(own, 8), paddedLength(own, 9), paddedLength(own, 197)], [8, 8, 16, 200]);
  assert.equal(paddedLength(fixed, 9), 200);
  assert.throws(() => paddedLength(own, 201), /201 tokens is longer than the graph's 200/);
});

test('length-grouped order: a seeded permutation whose steps hold rows of neighbouring lengths, a partial last step kept last', () => {
  const n = 1003, stepRows = 4, lengths = Array.from({ length: n }, (_, i) => 10 + ((i * 7919) % 500));
  const order = (seed: number) => lengthGroupedOrder(shuffledIndices(n, seed), (i) => lengths[i]!, stepRows, mulberry32(seed));
  const a = order(1);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i), 'a permutation');
  assert.deepEqual(order(1), a, 'the same for the same seed');
  assert.notDeepEqual(order(2), a, 'another seed, another order');
  let spread = 0; // 200 rows per sorted chunk over lengths 10..509: a few tokens per step
  for (let s = 0; s + stepRows <= 1000; s += stepRows) {
    const ls = a.slice(s, s + stepRows).map((i) => lengths[i]!);
    spread += Math.max(...ls) - Math.min(...ls);
  }
  assert.ok(spread / 250 < 20, `mean length spread within a step ${spread / 250}`);
  const firsts = Array.from({ length: 50 }, (_, s) => lengths[a[s * stepRows]!]!);
  assert.ok(firsts.some((l, s) => s > 0 && l > firsts[s - 1]!), 'steps are shuffled within a chunk');
  assert.equal(a.length - 1000, 3, 'the 3 rows of the partial step come last');
});

const cfg = tinyConfig({ vocabSize: 32, numLayers: 2 });
const weights = randomWeights(cfg, 7);
const lora = { rank: 4, alpha: 8, dropout: 0.1, rslora: false, targets: LORA_TARGETS };

/** Three rows of 5, 11 and 9 tokens (the last 4 of each trained), batch length 11, one padding row: B = 4. */
function rowsBatch(): Batch {
  const lens = [5, 11, 9], T = 11, B = lens.length;
  const ids = new BigInt64Array(B * T), labels = new BigInt64Array(B * T).fill(-100n), mask = new BigInt64Array(B * T), pos = new BigInt64Array(B * T);
  const seg = new Int32Array(B * T);
  let targets = 0;
  lens.forEach((n, b) => {
    for (let t = 0; t < n; t++) {
      const i = b * T + t, tok = BigInt((3 * b + 5 * t + 1) % cfg.vocabSize);
      ids[i] = tok; mask[i] = 1n; pos[i] = BigInt(t); seg[i] = 1;
      if (t >= n - 4) { labels[i] = tok; targets++; }
    }
  });
  return { inputIds: ids, labels, attentionMask: mask, positionIds: pos, segmentIds: seg, B, T, dtype: 'int64', tokens: 25, targets, pairs: 0 };
}

const maxAbs = (a: HostTensor) => (a.data as Float32Array).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxDiff = (a: HostTensor, b: HostTensor) => (a.data as Float32Array).reduce((m, x, i) => Math.max(m, Math.abs(x - (b.data as Float32Array)[i]!)), 0);

for (const variant of ['float', '4-bit', 'checkpointed + chunked'] as const) {
  test(`${variant}: one step of a symbolic-length graph on rows padded to their own longest (11) equals the static graph padded to 32 (loss, gradients, update)`, async () => {
    const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, { quantize: variant === '4-bit' });
    const batch = rowsBatch(), B = 4, S = 32;
    const extra: Partial<StepShape> = variant === 'checkpointed + chunked' ? { checkpointLayers: true, checkpointGroup: 2, chunkBytes: 6144 } : {};
    const run = async (dynamicSeq: boolean) => {
      const shape: StepShape = { batch: B, seq: S, lora, dynamicSeq, hostEmbeddings: variant === '4-bit', ...extra };
      const fused = buildFusedStep(fw, invFreqOf(cfg), shape, DEFAULT_OPTIMIZER);
      const split = buildAccumulatingStep(fw, invFreqOf(cfg), shape, DEFAULT_OPTIMIZER);
      const T = dynamicSeq ? batch.T : S;
      const embed = shape.hostEmbeddings ? (ids: BigInt64Array) => fw.embedRows(ids) : undefined;
      const data = { ...batchFeeds(batch, B, T, embed), ...(dynamicSeq ? tokenIndexFeed(T) : {}),
        dropout_seeds: { dtype: 'float32' as const, dims: [fused.dropoutModules], data: Float32Array.from({ length: fused.dropoutModules }, (_, i) => 17 + i * 3.1) } };
      const p = initLora(fused.params, 3);
      for (const q of fused.params) if (q.which === 'B') p.get(q.name)!.fill(0.02); // non-zero B: A gets a gradient too
      const params: Record<string, HostTensor> = {}, opt: Record<string, HostTensor> = { lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) }, step: { dtype: 'float32', dims: [], data: Float32Array.of(1) } };
      for (const q of fused.params) {
        params[q.name] = { dtype: 'float32', dims: q.shape, data: p.get(q.name)! };
        opt[`m:${q.name}`] = { dtype: 'float32', dims: q.shape, data: new Float32Array(q.shape[0] * q.shape[1]) };
        opt[`v:${q.name}`] = { dtype: 'float32', dims: q.shape, data: new Float32Array(q.shape[0] * q.shape[1]) };
      }
      const sf = await Session.create(serializeModel(fused.step), { threads: 1 });
      const sg = await Session.create(serializeModel(split.grads), { threads: 1 });
      const step = await sf.run({ ...data, ...params, ...opt });
      const grads = await sg.run({ ...data, ...params });
      await sf.release(); await sg.release();
      return { step, grads, names: fused.params.map((q) => q.name), dropout: fused.dropoutModules };
    };
    const padded = await run(false), own = await run(true);
    assert.ok(own.dropout > 0, 'dropout is part of both graphs');
    const loss = (o: Record<string, HostTensor>) => (o.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(loss(padded.step) - loss(own.step)) <= 1e-5 * loss(padded.step), `loss ${loss(own.step)} vs padded ${loss(padded.step)}`);
    let gradWorst = 0, gradScale = 0, paramWorst = 0;
    for (const n of padded.names) {
      gradWorst = Math.max(gradWorst, maxDiff(padded.grads[`grad:${n}`]!, own.grads[`grad:${n}`]!));
      gradScale = Math.max(gradScale, maxAbs(padded.grads[`grad:${n}`]!));
      paramWorst = Math.max(paramWorst, maxDiff(padded.step[`new:${n}`]!, own.step[`new:${n}`]!));
    }
    assert.ok(gradScale > 1e-4, `the gradients are not all ~0 (largest ${gradScale})`);
    assert.ok(gradWorst <= 1e-5 * gradScale, `gradients differ by ${gradWorst} (largest ${gradScale})`);
    assert.ok(paramWorst <= 1e-6, `updated parameters differ by ${paramWorst}`);
  });
}

test('the symbolic-length step (float; 4-bit checkpointed) opens on WebGPU with CPU fallback disabled', async () => {
  for (const quantize of [false, true]) {
    const m = loadModel('assets/demo/model', { quantize });
    const extra = quantize ? { checkpointLayers: true, checkpointGroup: 2 } : {};
    const g = buildFusedStep(m.weights, m.invFreq, { batch: 2, seq: 32, lora: DEFAULT_LORA, hostEmbeddings: quantize, dynamicSeq: true, ...extra }, DEFAULT_OPTIMIZER);
    assert.ok(g.step.inputs.some((t) => t.name === 'token_index'), 'dropout on: the graph slices its masks by token_index');
    const s = await webGpuSession(serializeModel(g.step)).catch((e: Error) => { throw new Error(`${quantize ? '4-bit' : 'float'}: ${e.message}`); });
    await s.release();
    m.close();
  }
});

// Rows of very different lengths (1- to 40-word answers), so micro-batches have very different lengths.
const model = tinyCheckpoint();
const work = tempDir();
const data = writeJsonl(join(work, 'spread.jsonl'), Array.from({ length: 24 }, (_, i) => ({
  query: `Tell me about ${i}.`,
  response: Array.from({ length: [1, 4, 12, 40][i % 4]! }, (_, k) => `word${(i + k) % 9}`).join(' '),
})));
const common = ['--model', model, '--data', data, '--map', 'prompt=query,completion=response', '--lr', '2e-3', '--dropout', '0.1',
  '--val-fraction', '0', '--seed', '2', '--threads', '1', '--json'];
const stepsOf = (stdout: string) => events(stdout).filter((e) => e.event === 'step') as { step: number; loss: number; grad_norm: number }[];

for (const [batch, accum] of [[2, 1], [1, 2]] as const) {
  test(`a run shaped by its own rows has the losses of the padded run (batch ${batch}, grad-accum ${accum})`, async () => {
    const run = async (name: string, extra: string[]) => {
      const r = await finch(['train', ...common, '--max-steps', '4', '--batch', String(batch), '--grad-accum', String(accum), '--out', join(work, `${name}-${batch}x${accum}`), ...extra]);
      assert.equal(r.code, 0, r.stderr);
      return { prepared: events(r.stdout).find((e) => e.event === 'prepared')!, steps: stepsOf(r.stdout) };
    };
    const padded = await run('padded', ['--static-seq']), own = await run('own', []);
    assert.equal(padded.prepared.batch_shape, 'dataset-longest');
    assert.equal(own.prepared.batch_shape, 'own-longest');
    assert.ok((own.prepared.padding_fraction as number) < (padded.prepared.padding_fraction as number),
      `padding ${own.prepared.padding_fraction} shaped vs ${padded.prepared.padding_fraction} padded`);
    assert.equal(own.steps.length, 4);
    own.steps.forEach((s, i) => {
      const p = padded.steps[i]!;
      assert.ok(Math.abs(s.loss - p.loss) <= 1e-5 * p.loss, `step ${i + 1}: loss ${s.loss} vs padded ${p.loss}`);
      assert.ok(Math.abs(s.grad_norm - p.grad_norm) <= 1e-4 * p.grad_norm, `step ${i + 1}: gradient norm ${s.grad_norm} vs padded ${p.grad_norm}`);
    });
  });
}

test('grouping by length: less padding, the rows of a step do not depend on the micro-batch split, and a killed run resumes exactly', async () => {
  const run = async (name: string, b: number, accum: number, extra: string[] = [], onLine?: Parameters<typeof finch>[1]) =>
    // Dropout off: its seeds are per micro-batch, so 4x1 and 2x2 would drop different elements.
    finch(['train', ...common, '--dropout', '0', '--max-steps', '6', '--batch', String(b), '--grad-accum', String(accum), '--out', join(work, name), ...extra], onLine);
  const prepared = (stdout: string) => events(stdout).find((e) => e.event === 'prepared')!;
  const plain = await run('plain-4x1', 4, 1), grouped = await run('grouped-4x1', 4, 1, ['--group-by-length']), split = await run('grouped-2x2', 2, 2, ['--group-by-length']);
  for (const r of [plain, grouped, split]) assert.equal(r.code, 0, r.stderr);
  assert.equal(prepared(grouped.stdout).group_by_length, true);
  assert.ok((prepared(grouped.stdout).padding_fraction as number) < (prepared(plain.stdout).padding_fraction as number),
    `padding ${prepared(grouped.stdout).padding_fraction} grouped vs ${prepared(plain.stdout).padding_fraction}`);
  const reference = stepsOf(grouped.stdout);
  stepsOf(split.stdout).forEach((o, i) => {
    const s = reference[i]!;
    assert.ok(Math.abs(s.loss - o.loss) <= 1e-5 * s.loss, `step ${i + 1}: 2x2 loss ${o.loss} vs 4x1 ${s.loss}`);
  });
  // Killed after its first checkpoint, resumed: the same losses as the uninterrupted grouped run.
  const out = join(work, 'grouped-killed');
  let killed = false;
  await run('grouped-killed', 4, 1, ['--group-by-length', '--checkpoint-every', '2'], (line, kill) => {
    if (!killed && line.includes('"event":"checkpoint"')) { killed = true; kill(); }
  });
  assert.ok(killed);
  const from = Number(readdirSync(join(out, 'checkpoints')).filter((n) => /^step-\d+$/.test(n)).sort().at(-1)!.slice('step-'.length));
  const again = await finch(['train', '--out', out, '--resume', out, '--json']);
  assert.equal(again.code, 0, again.stderr);
  const resumed = stepsOf(again.stdout);
  assert.equal(resumed[0]?.step, from + 1);
  for (const s of resumed) {
    const ref = reference[s.step - 1]!;
    assert.ok(Math.abs(s.loss - ref.loss) <= 1e-5 * ref.loss, `step ${s.step}: resumed loss ${s.loss} vs uninterrupted ${ref.loss}`);
  }
});
