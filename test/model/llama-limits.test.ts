// Frozen weights under a device buffer limit (maxWeightBytes: model/weights/graph-weights.ts,
// model/chunk-plan.ts): a WebGPU adapter binds at most maxStorageBufferBindingSize bytes per
// buffer (128 MiB on lavapipe; Llama 3 8B's float32 embedding and lm_head are 2.1 GB each).
// Weights above the limit are split: projections and the lm_head by output rows, MLP and
// vocabulary pieces by chunkPlan, the embedding by columns. Here a limit of 200 KB splits the
// demo model's weights, and the split step gives the unsplit step's loss and LoRA gradients on
// WebGPU with CPU fallback disabled; at real size, Llama 3 8B's graphs keep every initializer
// under 128 MiB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DTYPE_BITS, isStatic, numel } from '../../src-main/engine/graph/dtype.js';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import type { HostTensor } from '../../src-main/engine/runtime/session.js';
import { Generator, generationGraph } from '../../src-main/infer/generate.js';
import { ropeInvFreq } from '../../src-main/model/config.js';
import { chunkPlan } from '../../src-main/model/chunk-plan.js';
import { buildGeneration, buildTrainForward } from '../../src-main/model/graphs.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { loadModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, initLora, loraParams } from '../../src-main/model/lora.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep } from '../../src-main/train/step.js';
import { randomBatch } from '../helpers/demo-batch.js';
import { tinyConfig } from '../helpers/tiny-llama.js';
import { webGpuSession } from '../helpers/webgpu.js';

const DEMO = 'assets/demo/model';
const B = 2, T = 32;
const LIMIT = 200_000; // bytes: below the demo's embedding, lm_head, MLP and q/o weights
const lora = DEFAULT_LORA;

const bytesOf = (t: { dtype: keyof typeof DTYPE_BITS; shape: readonly (number | string)[] }) => (numel(t.shape) * DTYPE_BITS[t.dtype]) / 8;

/** The largest initializer and the largest static tensor a node computes, in bytes. */
function largest(g: Graph): { initializer: number; computed: number; name: string } {
  let initializer = 0, computed = 0, name = '';
  for (const { tensor } of g.initializers.values()) initializer = Math.max(initializer, bytesOf(tensor));
  for (const n of g.nodes) {
    for (const t of n.outputs) {
      if (isStatic(t.shape) && bytesOf(t) > computed) { computed = bytesOf(t); name = t.name; }
    }
  }
  return { initializer, computed, name };
}

for (const quantize of [false, true]) {
  test(`${quantize ? '4-bit' : 'float'} weights split under a ${LIMIT}-byte limit: same loss and LoRA gradients as unsplit (1e-5) on WebGPU, no tensor over the limit`, async () => {
    const m = loadModel(DEMO, { quantize });
    const shape = { batch: B, seq: T, lora, hostEmbeddings: false };
    const whole = buildAccumulatingStep(m.weights, m.invFreq, shape, DEFAULT_OPTIMIZER).grads;
    const split = buildAccumulatingStep(m.weights, m.invFreq, { ...shape, maxWeightBytes: LIMIT }, DEFAULT_OPTIMIZER).grads;
    const big = largest(split);
    console.log(`${quantize ? '4-bit' : 'float'}: largest initializer ${largest(whole).initializer} bytes unsplit, ${big.initializer} split; largest computed tensor ${big.computed} (${big.name})`);
    assert.ok(largest(whole).initializer > LIMIT, 'the limit must be below the unsplit weights');
    assert.ok(big.initializer <= LIMIT, `an initializer of ${big.initializer} bytes exceeds ${LIMIT}`);
    assert.ok(big.computed <= LIMIT, `${big.name} (${big.computed} bytes) exceeds ${LIMIT}`);
    // Pieces of each kind: embedding columns, lm_head rows (vocabulary pieces), q/o rows, MLP pieces.
    const names = [...split.initializers.keys()];
    for (const re of [/embed_tokens\.weight\.c\d/, /lm_head\.weight\.r\d/, /q_proj\.weight\.r\d/, /o_proj\.weight\.r\d/, /gate_proj\.weight\.r\d/, /down_proj\.weight\.c\d/]) {
      assert.ok(names.some((n) => re.test(n)), `no initializer matches ${re}`);
    }

    const params: Map<string, Float32Array> = initLora(loraParams(m.config, lora), 11);
    // Non-zero B matrices, so that every LoRA gradient (A's too) is non-zero.
    for (const [k, v] of params) if (k.includes('lora_B')) v.forEach((_, i) => { v[i] = Math.sin(i * 0.37) * 0.02; });
    const feeds: Record<string, HostTensor> = { ...randomBatch(7, m.config.vocabSize, B, T) };
    const seeds = whole.inputs.find((t) => t.name === 'dropout_seeds');
    if (seeds) feeds.dropout_seeds = { dtype: 'float32', dims: seeds.shape as number[], data: Float32Array.from({ length: seeds.shape[0] as number }, (_, i) => i * 3.7) };
    for (const t of whole.inputs) if (params.has(t.name)) feeds[t.name] = { dtype: 'float32', dims: t.shape as number[], data: params.get(t.name)! };
    const run = async (g: Graph) => {
      const s = await webGpuSession(serializeModel(g));
      const out = await s.run(feeds);
      await s.release();
      return out;
    };
    const a = await run(whole), b = await run(split);
    const la = (a.loss!.data as Float32Array)[0]!, lb = (b.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(la - lb) <= 1e-5 * Math.abs(la), `loss ${lb} split vs ${la} whole`);
    let worst = 0;
    for (const name of params.keys()) {
      const ga = a[`grad:${name}`]!.data as Float32Array, gb = b[`grad:${name}`]!.data as Float32Array;
      const scale = ga.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
      assert.ok(scale > 0, `${name}: zero gradient`);
      const diff = ga.reduce((s, x, i) => Math.max(s, Math.abs(x - gb[i]!)), 0);
      worst = Math.max(worst, diff / scale);
      assert.ok(diff <= 1e-5 * scale, `${name}: max |split - whole| ${diff.toExponential(2)} vs max |whole| ${scale.toExponential(2)}`);
    }
    console.log(`  loss ${la} whole, ${lb} split; worst gradient difference ${worst.toExponential(2)} of the max`);
    m.close();
  });
}

test('Llama 3 8B graphs keep every initializer under 128 MiB (graph only: no weight is read)', () => {
  const cfg = tinyConfig({
    vocabSize: 128_256, hiddenSize: 4096, intermediateSize: 14_336, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128,
    ropeTheta: 500_000, maxPositionEmbeddings: 8192,
  });
  const MiB128 = 128 * 2 ** 20;
  for (const computeDtype of ['float32', 'float16'] as const) {
    // Streamed: initializers are read when written, never here.
    const fw = new FrozenWeights(cfg, (name) => { throw new Error(`${name} was read while building`); }, { streamFloats: true });
    const g = new Graph('train');
    const tg = buildTrainForward(g, fw, ropeInvFreq(cfg), { batch: 1, seq: 512, lora, computeDtype, maxWeightBytes: MiB128 });
    g.output(tg.loss, 'loss');
    const gen = new Graph('generate');
    gen.output(buildGeneration(gen, fw, ropeInvFreq(cfg), 512, lora, 1, { computeDtype, maxWeightBytes: MiB128 }).logits, 'logits');
    for (const [what, graph] of [['training', g], ['generation', gen]] as const) {
      const big = largest(graph).initializer;
      const count = (re: RegExp) => [...graph.initializers.keys()].filter((n) => re.test(n)).length;
      console.log(`${computeDtype} ${what}: largest initializer ${(big / 2 ** 20).toFixed(1)} MiB; embedding in ${count(/embed_tokens\.weight\.c\d/)} column pieces, ` +
        `lm_head in ${count(/lm_head\.weight\.r\d/)} row pieces, down_proj of layer 0 in ${count(/layers\.0\.mlp\.down_proj\.weight\.[rc]\d/)} pieces`);
      assert.ok(big <= MiB128, `${computeDtype} ${what}: an initializer of ${big} bytes exceeds 128 MiB`);
      const whole = cfg.vocabSize * cfg.hiddenSize * (computeDtype === 'float16' ? 2 : 4);
      assert.ok(count(/embed_tokens\.weight\.c\d/) >= Math.ceil(whole / MiB128), 'the embedding is split');
      assert.ok(count(/lm_head\.weight\.r\d/) >= Math.ceil(whole / MiB128), 'the lm_head is split');
    }
  }
  // The training graph's vocabulary pieces (chunked loss) follow the limit even where the logits would not split them.
  assert.ok(chunkPlan(cfg, 1, 8, 32, Infinity, MiB128).vocabSizes.length >= 16);
});

test(`greedy generation with weights split under ${LIMIT} bytes gives the unsplit greedy tokens on WebGPU (no CPU fallback)`, async () => {
  const m = loadModel(DEMO);
  const prompt = m.tokenizer.encode('What is 12 plus 7?', { addSpecialTokens: true });
  const run = async (maxWeightBytes: number) => {
    const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: 64, lora: null, provider: 'webgpu', strictProvider: true, threads: 2, maxWeightBytes });
    const out = await gen.generate({ prompts: [prompt], maxNewTokens: 16, eosIds: [] });
    await gen.release();
    return out[0]!.ids;
  };
  const whole = await run(Infinity), split = await run(LIMIT);
  assert.equal(whole.length, 16);
  assert.deepEqual(split, whole);
  // The split graph really is split: lm_head rows, embedding columns, every initializer under the limit.
  const g = generationGraph(m.weights, m.invFreq, 64, null, 1, { maxWeightBytes: LIMIT });
  const names = [...g.initializers.keys()];
  assert.ok(names.some((n) => /lm_head\.weight\.r\d/.test(n)) && names.some((n) => /embed_tokens\.weight\.c\d/.test(n)), names.join(' '));
  assert.ok(largest(g).initializer <= LIMIT);
  m.close();
});
