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
import { buildGeneration } from '../../src-main/model/llama.js';
import { loadModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, initLora, loraParams, mulberry32 } from '../../src-main/model/lora.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep, buildLossGraph } from '../../src-main/train/step.js';
import { webGpuSession } from '../helpers/webgpu.js';

const DEMO = 'assets/demo/model';
const B = 2, T = 32;
const lora = DEFAULT_LORA; // rank 16, dropout 0.05: dropout masks are part of the graph

/** A batch of random demo-vocabulary tokens, causal mask, int32 targets with ignored positions. */
function batch(seed: number, vocab: number, hostEmbed?: (ids: BigInt64Array) => Float32Array): Record<string, HostTensor> {
  const rand = mulberry32(seed);
  const ids = BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(rand() * vocab)));
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % T < 3 || i % T === T - 1 ? -100 : Number(ids[i + 1]!)));
  const bias = Float32Array.from({ length: B * T * T }, (_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -1e9));
  return {
    ...(hostEmbed
      ? { inputs_embeds: { dtype: 'float32', dims: [B * T, hostEmbed(ids).length / (B * T)], data: hostEmbed(ids) } }
      : { input_ids: { dtype: 'int64', dims: [B, T], data: ids } }),
    position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias },
    targets: { dtype: 'int32', dims: [B * T], data: targets },
  };
}

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

const STEPS = 10;
/**
 * The gradients agree to ~3e-6 of their largest element (measured; Adam's first moment m is
 * compared directly below). Adam divides each gradient by its own magnitude (+ eps 1e-8), so an
 * element whose gradient is within a few hundred times that rounding noise gets an update whose
 * size or even sign is set by rounding: on any two float32 devices, or thread counts. Elements whose
 * CPU gradient is below ILL_CONDITIONED * max|g| at some step are counted (they must stay rare)
 * and left out of the parameter comparison from that step on; every other element must agree to 1e-4.
 */
const ILL_CONDITIONED = 1e-3;

for (const quantize of [false, true]) {
  test(`${STEPS} ${quantize ? 'QLoRA (4-bit)' : 'LoRA (float)'} steps on WebGPU match the CPU: loss within 1e-4 relative, LoRA matrices within 1e-4`, async () => {
    const m = loadModel(DEMO, { quantize });
    const embed = quantize ? (ids: BigInt64Array) => m.weights.embedRows(ids) : undefined;
    const graphs = buildFusedStep(m.weights, m.invFreq, { batch: B, seq: T, lora, hostEmbeddings: quantize }, DEFAULT_OPTIMIZER);
    const model = serializeModel(graphs.step);
    const sides = [
      { name: 'cpu', session: await Session.create(model, { provider: 'cpu', threads: 2 }) },
      { name: 'webgpu', session: await webGpuSession(model) },
    ].map((s) => {
      const params: Map<string, Float32Array> = initLora(graphs.params, 3);
      const zeros = () => new Map<string, Float32Array>(graphs.params.map((p) => [p.name, new Float32Array(p.shape[0] * p.shape[1])]));
      return { ...s, params, m: zeros(), v: zeros(), losses: [] as number[] };
    });
    const [cpu, gpu] = sides as [typeof sides[0], typeof sides[0]];
    const noisy = new Map<string, Uint8Array>(graphs.params.map((p) => [p.name, new Uint8Array(p.shape[0] * p.shape[1])]));
    let worst = 0, worstM = 0;
    for (let step = 0; step < STEPS; step++) {
      const data = batch(100 + step, m.config.vocabSize, embed);
      const seeds = Float32Array.from({ length: graphs.dropoutModules }, (_, i) => (step * 31 + i * 7.3) % 1000);
      const mBefore = new Map(cpu.m);
      for (const side of sides) {
        const f: Record<string, HostTensor> = {
          ...data,
          dropout_seeds: { dtype: 'float32', dims: [graphs.dropoutModules], data: seeds },
          lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) },
          step: { dtype: 'float32', dims: [], data: Float32Array.of(step + 1) },
        };
        for (const p of graphs.params) {
          f[p.name] = { dtype: 'float32', dims: p.shape, data: side.params.get(p.name)! };
          f[`m:${p.name}`] = { dtype: 'float32', dims: p.shape, data: side.m.get(p.name)! };
          f[`v:${p.name}`] = { dtype: 'float32', dims: p.shape, data: side.v.get(p.name)! };
        }
        const out = await side.session.run(f);
        side.losses.push((out.loss!.data as Float32Array)[0]!);
        for (const p of graphs.params) {
          side.params.set(p.name, out[`new:${p.name}`]!.data as Float32Array);
          side.m.set(p.name, out[`new_m:${p.name}`]!.data as Float32Array);
          side.v.set(p.name, out[`new_v:${p.name}`]!.data as Float32Array);
        }
      }
      const rel = Math.abs(gpu.losses[step]! - cpu.losses[step]!) / Math.abs(cpu.losses[step]!);
      assert.ok(rel <= 1e-4, `step ${step + 1}: loss ${gpu.losses[step]} on WebGPU vs ${cpu.losses[step]} on CPU (relative ${rel.toExponential(2)})`);
      for (const p of graphs.params) {
        // The clipped gradient of this step, recovered from Adam's first moment: m' = b1 m + (1 - b1) g.
        const b1 = DEFAULT_OPTIMIZER.beta1, m0 = mBefore.get(p.name)!, m1 = cpu.m.get(p.name)!, mask = noisy.get(p.name)!;
        const gradOf = (i: number) => (m1[i]! - b1 * m0[i]!) / (1 - b1);
        let gmax = 0;
        for (let i = 0; i < m1.length; i++) gmax = Math.max(gmax, Math.abs(gradOf(i)));
        for (let i = 0; i < m1.length; i++) if (gmax > 0 && Math.abs(gradOf(i)) <= ILL_CONDITIONED * gmax && gradOf(i) !== 0) mask[i] = 1;
        const ma = cpu.m.get(p.name)!, mb = gpu.m.get(p.name)!;
        let mDiff = 0, mScale = 0;
        for (let i = 0; i < ma.length; i++) { mDiff = Math.max(mDiff, Math.abs(ma[i]! - mb[i]!)); mScale = Math.max(mScale, Math.abs(ma[i]!)); }
        assert.ok(mDiff <= 1e-4 * mScale, `step ${step + 1}, ${p.name}: Adam m (the gradients) max |WebGPU - CPU| ${mDiff.toExponential(2)} vs max |CPU| ${mScale.toExponential(2)}`);
        worstM = Math.max(worstM, mDiff / (mScale || 1));
        const a = cpu.params.get(p.name)!, b = gpu.params.get(p.name)!;
        let diff = 0, scale = 0;
        for (let i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(a[i]!));
          if (!mask[i]) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
        }
        worst = Math.max(worst, diff / (scale || 1));
        assert.ok(diff <= 1e-4 * scale, `step ${step + 1}, ${p.name}: max |WebGPU - CPU| ${diff.toExponential(2)} vs max |CPU| ${scale.toExponential(2)}`);
      }
    }
    const elements = [...noisy.values()].reduce((n, a) => n + a.length, 0);
    const left = [...noisy.values()].reduce((n, a) => n + a.reduce((x, y) => x + y, 0), 0);
    assert.ok(left <= elements * 0.02, `${left} of ${elements} LoRA elements had an ill-conditioned Adam update: more than 2% is not rounding`);
    assert.ok(cpu.losses.every(Number.isFinite), `losses ${cpu.losses}`);
    console.log(`${quantize ? '4-bit' : 'float'}: CPU losses ${cpu.losses.map((l) => l.toFixed(5)).join(' ')}; worst gradient (Adam m) difference ${worstM.toExponential(2)} of max, worst LoRA difference ${worst.toExponential(2)} of max; ${left} of ${elements} elements with ill-conditioned updates left out`);
    for (const s of sides) await s.session.release();
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
