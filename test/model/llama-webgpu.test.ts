// The Llama model Finch trains (model/llama.ts on the bundled demo model) on WebGPU with CPU
// fallback disabled: every graph it builds creates a session, ten optimizer steps give the CPU's
// losses and LoRA matrices, and greedy KV-cache generation gives the CPU's tokens.
// Without a GPU this runs on Mesa 25's lavapipe (CI installs it); a missing adapter fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { Generator } from '../../src-main/infer/generate.js';
import { buildGeneration } from '../../src-main/model/graphs.js';
import { loadModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, initLora, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep, buildLossGraph } from '../../src-main/train/step.js';
import { randomBatch, randomPairBatch } from '../helpers/demo-batch.js';
import { preferenceGraphs } from '../helpers/preference-graphs.js';
import { webGpuSession } from '../helpers/webgpu.js';

const DEMO = 'assets/demo/model';
const B = 2, T = 32;
const lora = DEFAULT_LORA; // rank 16, dropout 0.05: dropout masks are part of the graph

const batch = (seed: number, vocab: number, hostEmbed?: (ids: BigInt64Array) => Float32Array) => randomBatch(seed, vocab, B, T, hostEmbed);

test('every graph of the demo model (float and 4-bit) creates a WebGPU session with CPU fallback disabled', async () => {
  for (const quantize of [false, true]) {
    const m = loadModel(DEMO, { quantize });
    const shape = { batch: B, seq: T, lora, hostEmbeddings: quantize };
    const pair = buildAccumulatingStep(m.weights, m.invFreq, shape, DEFAULT_OPTIMIZER);
    const generation = new Graph('generate');
    const gen = buildGeneration(generation, m.weights, m.invFreq, 96, lora, 2);
    generation.output(gen.logits, 'logits');
    gen.presentK.forEach((t, l) => generation.output(t, `present_k.${l}`));
    gen.presentV.forEach((t, l) => generation.output(t, `present_v.${l}`));
    const graphs: [string, Graph][] = [
      ['fused step', buildFusedStep(m.weights, m.invFreq, shape, DEFAULT_OPTIMIZER).step],
      ['gradient graph', pair.grads],
      ['update graph', pair.update],
      // Small chunks: attention heads, MLP pieces and vocabulary pieces all split, in nested segments.
      ['checkpointed + chunked step', buildFusedStep(m.weights, m.invFreq, { ...shape, checkpointLayers: true, checkpointGroup: 2, chunkBytes: 16 * 1024 }, DEFAULT_OPTIMIZER).step],
      ['row-chunked loss step', buildFusedStep(m.weights, m.invFreq, { ...shape, lossChunks: 2 }, DEFAULT_OPTIMIZER).step],
      ['eval loss', buildLossGraph(m.weights, m.invFreq, shape)],
      ['prefill/decode', generation],
      ...preferenceGraphs(m, quantize, B, T),
    ];
    for (const [name, g] of graphs) {
      const s = await webGpuSession(serializeModel(g)).catch((e: Error) => {
        throw new Error(`${quantize ? '4-bit' : 'float'} ${name}: ${e.message}`);
      });
      await s.release();
    }
    m.close();
  }
});

for (const [name, objective, quantize] of [
  ['DPO (4-bit, reference adapter)', { method: 'dpo', beta: 0.1, labelSmoothing: 0.1, reference: 'adapter' }, true],
  ['ORPO (float)', { method: 'orpo', lambda: 0.2 }, false],
] as const) {
  test(`a ${name} gradient graph on WebGPU gives the CPU's loss, rewards and LoRA gradients within 1e-4`, async () => {
    const m = loadModel(DEMO, { quantize });
    const rand = mulberry32(21);
    const random = (scale: number) => new Map(loraParams(m.config, lora).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * scale)]));
    const reference = objective.method === 'dpo' ? random(0.02) : null;
    const graphs = buildAccumulatingStep(m.weights, m.invFreq, { batch: 2 * B, seq: T, lora, hostEmbeddings: quantize, dynamicSeq: true, objective }, DEFAULT_OPTIMIZER, reference);
    const model = serializeModel(graphs.grads);
    const cpu = await Session.create(model, { provider: 'cpu', threads: 2 });
    const gpu = await webGpuSession(model);
    const params = random(0.05);
    const f: Record<string, HostTensor> = {
      ...randomPairBatch(31, m.config.vocabSize, B, T, { hostEmbed: quantize ? (ids) => m.weights.embedRows(ids) : undefined, missing: true }),
      dropout_seeds: { dtype: 'float32', dims: [graphs.dropoutModules], data: Float32Array.from({ length: graphs.dropoutModules }, (_, i) => i * 7.3) },
      token_index: { dtype: 'int32', dims: [T], data: Int32Array.from({ length: T }, (_, i) => i) },
    };
    for (const p of graphs.params) f[p.name] = { dtype: 'float32', dims: p.shape, data: params.get(p.name)! };
    const a = await cpu.run(f), b = await gpu.run(f);
    const value = (o: Record<string, HostTensor>, k: string) => o[k]!.data as Float32Array;
    const la = value(a, 'loss')[0]!, lb = value(b, 'loss')[0]!;
    assert.ok(Number.isFinite(la) && Math.abs(lb - la) <= 1e-4 * Math.abs(la), `loss ${lb} on WebGPU vs ${la} on CPU`);
    for (const k of ['rewards_chosen', 'rewards_rejected']) {
      const ra = value(a, k), rb = value(b, k);
      assert.ok(maxDiff(ra, rb) <= 1e-4 * Math.max(maxAbs(ra), 1e-3), `${k}: ${[...rb]} on WebGPU vs ${[...ra]}`);
    }
    let worst = 0;
    for (const p of graphs.params) {
      const ga = value(a, `grad:${p.name}`), gb = value(b, `grad:${p.name}`);
      const d = maxDiff(ga, gb) / (maxAbs(ga) || 1);
      worst = Math.max(worst, d);
      assert.ok(d <= 1e-4, `${p.name}: gradients differ by ${d.toExponential(2)} of the largest`);
    }
    console.log(`${name}: loss ${la}; worst gradient difference ${worst.toExponential(2)} of the largest`);
    await cpu.release();
    await gpu.release();
    m.close();
  });
}

const STEPS = 10;
/**
 * The gradients agree to ~3e-6 of their largest element (measured). Adam divides each gradient by
 * its own magnitude (+ eps 1e-8), so for an element whose gradient is within a few thousand times
 * that rounding noise, rounding moves the update by more than 1e-4 (near the noise it flips its
 * sign), on any two float32 devices or thread counts; two free-running trajectories then drift
 * apart by up to 2 lr at such elements, and later gradients follow. So each step starts both providers from the CPU's state
 * (the same parameters and moments), and compares that step: the loss, Adam's first moment (the
 * clipped gradients) and the updated LoRA matrices, leaving out of the last comparison the elements
 * whose CPU gradient is below ILL_CONDITIONED * max|g| (counted; most elements must remain).
 */
const ILL_CONDITIONED = 1e-2;

const maxAbs = (a: Float32Array, mask?: Uint8Array) => a.reduce((m, x, i) => (mask?.[i] ? m : Math.max(m, Math.abs(x))), 0);
const maxDiff = (a: Float32Array, b: Float32Array, mask?: Uint8Array) => a.reduce((m, x, i) => (mask?.[i] ? m : Math.max(m, Math.abs(x - b[i]!))), 0);

for (const quantize of [false, true]) {
  test(`${STEPS} ${quantize ? 'QLoRA (4-bit)' : 'LoRA (float)'} steps on WebGPU match the CPU: loss within 1e-4 relative, gradients and LoRA matrices within 1e-4`, async () => {
    const m = loadModel(DEMO, { quantize });
    const embed = quantize ? (ids: BigInt64Array) => m.weights.embedRows(ids) : undefined;
    const graphs = buildFusedStep(m.weights, m.invFreq, { batch: B, seq: T, lora, hostEmbeddings: quantize }, DEFAULT_OPTIMIZER);
    const model = serializeModel(graphs.step);
    const cpu = await Session.create(model, { provider: 'cpu', threads: 2 });
    const gpu = await webGpuSession(model);
    const state = { params: initLora(graphs.params, 3) as Map<string, Float32Array>, m: new Map<string, Float32Array>(), v: new Map<string, Float32Array>() };
    for (const p of graphs.params) { state.m.set(p.name, new Float32Array(p.shape[0] * p.shape[1])); state.v.set(p.name, new Float32Array(p.shape[0] * p.shape[1])); }
    const losses: number[] = [];
    let worstM = 0, worstP = 0, left = 0, elements = 0;
    for (let step = 0; step < STEPS; step++) {
      const f: Record<string, HostTensor> = {
        ...batch(100 + step, m.config.vocabSize, embed),
        dropout_seeds: { dtype: 'float32', dims: [graphs.dropoutModules], data: Float32Array.from({ length: graphs.dropoutModules }, (_, i) => (step * 31 + i * 7.3) % 1000) },
        lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) },
        step: { dtype: 'float32', dims: [], data: Float32Array.of(step + 1) },
      };
      for (const p of graphs.params) {
        f[p.name] = { dtype: 'float32', dims: p.shape, data: state.params.get(p.name)! };
        f[`m:${p.name}`] = { dtype: 'float32', dims: p.shape, data: state.m.get(p.name)! };
        f[`v:${p.name}`] = { dtype: 'float32', dims: p.shape, data: state.v.get(p.name)! };
      }
      const a = await cpu.run(f), b = await gpu.run(f);
      const value = (o: Record<string, HostTensor>, k: string) => o[k]!.data as Float32Array;
      const la = value(a, 'loss')[0]!, lb = value(b, 'loss')[0]!;
      losses.push(la);
      assert.ok(Math.abs(lb - la) <= 1e-4 * Math.abs(la), `step ${step + 1}: loss ${lb} on WebGPU vs ${la} on CPU`);
      for (const p of graphs.params) {
        const ma = value(a, `new_m:${p.name}`), mb = value(b, `new_m:${p.name}`), m0 = state.m.get(p.name)!;
        const mScale = maxAbs(ma), mDiff = maxDiff(ma, mb);
        assert.ok(mDiff <= 1e-4 * mScale, `step ${step + 1}, ${p.name}: Adam m (the gradients) max |WebGPU - CPU| ${mDiff.toExponential(2)} vs max |CPU| ${mScale.toExponential(2)}`);
        worstM = Math.max(worstM, mDiff / (mScale || 1));
        // This step's clipped gradient, from m' = b1 m + (1 - b1) g; elements far below its maximum are ill-conditioned.
        const b1 = DEFAULT_OPTIMIZER.beta1;
        const g = ma.map((x, i) => (x - b1 * m0[i]!) / (1 - b1));
        const gmax = maxAbs(g);
        const mask = Uint8Array.from(g, (x) => (gmax > 0 && x !== 0 && Math.abs(x) < ILL_CONDITIONED * gmax ? 1 : 0));
        left += mask.reduce((n, x) => n + x, 0);
        elements += mask.length;
        const pa = value(a, `new:${p.name}`), pb = value(b, `new:${p.name}`);
        const pScale = maxAbs(pa), pDiff = maxDiff(pa, pb, mask);
        assert.ok(pDiff <= 1e-4 * pScale, `step ${step + 1}, ${p.name}: max |WebGPU - CPU| ${pDiff.toExponential(2)} vs max |CPU| ${pScale.toExponential(2)}`);
        worstP = Math.max(worstP, pDiff / (pScale || 1));
        state.params.set(p.name, pa);
        state.m.set(p.name, ma);
        state.v.set(p.name, value(a, `new_v:${p.name}`));
      }
    }
    // Most elements must be compared (measured on lavapipe: 14% left out, float and 4-bit alike).
    assert.ok(left <= elements * 0.25, `${left} of ${elements} LoRA element updates were ill-conditioned: too few left to compare`);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    console.log(`${quantize ? '4-bit' : 'float'}: CPU losses ${losses.map((l) => l.toFixed(4)).join(' ')}; worst gradient difference ${worstM.toExponential(2)}, ` +
      `worst LoRA difference ${worstP.toExponential(2)} (of the max); ${left} of ${elements} element updates ill-conditioned and left out`);
    await cpu.release();
    await gpu.release();
    m.close();
  });
}

test('greedy KV-cache generation on WebGPU gives the CPU\'s 32 ids for a base row and a tuned row in one batch', async () => {
  const m = loadModel(DEMO);
  const rand = mulberry32(9);
  // A strong enough adapter that the tuned row differs from the base row.
  const adapter = new Map(loraParams(m.config, lora).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.2)]));
  const prompt = m.tokenizer.encode('What is 12 plus 7?', { addSpecialTokens: true });
  const run = async (provider: 'cpu' | 'webgpu') => {
    const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: 96, lora, provider, strictProvider: provider === 'webgpu', threads: 2 });
    const out = await gen.generate({ prompts: [prompt, prompt], maxNewTokens: 32, eosIds: [], loraScales: [0, 1], adapter });
    await gen.release();
    return out.map((r) => r.ids);
  };
  const cpu = await run('cpu'), gpu = await run('webgpu');
  assert.equal(cpu[0]!.length, 32);
  assert.notDeepEqual(cpu[0], cpu[1], 'the adapter changes the tuned row');
  assert.deepEqual(gpu, cpu);
});
