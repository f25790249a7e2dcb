// Mixed precision (computeDtype float16, model/weights/graph-weights.ts): the frozen weights and their products in
// float16 on WebGPU, LoRA, gradients and AdamW state in float32. Twenty free-running optimizer
// steps from the same seed follow the float32 loss curve within 1e-2 relative, on Mesa's lavapipe
// with CPU fallback disabled; every graph opens there in float16 (no float16 kernel is missing).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Graph, Tensor } from '../../src-main/engine/graph/graph.js';
import { generationGraph } from '../../src-main/infer/generate.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import type { HostTensor } from '../../src-main/engine/runtime/session.js';
import type { ComputeDtype } from '../../src-main/model/weights/graph-weights.js';
import { loadModel } from '../../src-main/model/load.js';
import { DEFAULT_LORA, initLora } from '../../src-main/model/lora.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep, buildLossGraph } from '../../src-main/train/step.js';
import { randomBatch } from '../helpers/demo-batch.js';
import { webGpuSession } from '../helpers/webgpu.js';

const DEMO = 'assets/demo/model';
const B = 2, T = 32, STEPS = 20, BATCHES = 4;
const lora = DEFAULT_LORA;

test('a float16 step stores every frozen matrix in float16 and keeps norms, LoRA inputs and optimizer outputs float32', () => {
  for (const quantize of [false, true]) {
    const m = loadModel(DEMO, { quantize });
    const { step } = buildFusedStep(m.weights, m.invFreq, { batch: B, seq: T, lora, computeDtype: 'float16' }, DEFAULT_OPTIMIZER);
    // A frozen matrix reaches the device as float16: a float16 initializer, or a checkpoint's own
    // bytes cast to float16 in the graph (ONNX Runtime folds the cast when the session loads).
    const consumers = (t: Tensor) => step.nodes.filter((n) => n.inputs.includes(t));
    const asDevice = (t: Tensor) => { const c = consumers(t); return c.length === 1 && c[0]!.op === 'Cast' ? c[0]!.outputs[0]! : t; };
    const inits = [...step.initializers.values()].map((i) => i.tensor);
    const frozen = inits.filter((t) => /(_proj|embed_tokens|lm_head)\.weight/.test(t.name));
    assert.ok(frozen.length >= 4 * 7 + 2, `${frozen.length} frozen matrices`);
    for (const t of frozen) assert.ok(asDevice(t).dtype === 'float16' || (quantize && t.dtype === 'uint4'), `${t.name} reaches the device as ${asDevice(t).dtype}`);
    if (quantize) for (const t of inits.filter((i) => i.name.endsWith('.scales'))) assert.equal(t.dtype, 'float16', t.name);
    for (const t of inits.filter((i) => i.name.endsWith('norm.weight'))) assert.equal(asDevice(t).dtype, 'float32', t.name);
    for (const t of [...step.inputs, ...step.outputs]) assert.ok(t.dtype !== 'float16', `graph I/O ${t.name} is float16`);
    // Every product with a frozen float16 matrix is float16; LoRA's products stay float32.
    const products = step.nodes.filter((n) => n.op === 'Gemm' || n.op === 'MatMulNBits');
    assert.ok(products.some((n) => n.outputs[0]!.dtype === 'float16'), 'no float16 product');
    assert.ok(products.some((n) => n.outputs[0]!.dtype === 'float32'), 'no float32 (LoRA) product');
    m.close();
  }
});

test('every graph in float16, with weights split under a 200 KB limit, creates a WebGPU session with CPU fallback disabled (float and 4-bit)', async () => {
  const device = { computeDtype: 'float16' as const, maxWeightBytes: 200_000 };
  for (const quantize of [false, true]) {
    const m = loadModel(DEMO, { quantize });
    const shape = { batch: B, seq: T, lora, hostEmbeddings: quantize, ...device };
    const pair = buildAccumulatingStep(m.weights, m.invFreq, shape, DEFAULT_OPTIMIZER);
    const graphs: [string, Graph][] = [
      ['gradient graph', pair.grads],
      ['update graph', pair.update],
      ['checkpointed + chunked step', buildFusedStep(m.weights, m.invFreq, { ...shape, checkpointLayers: true, checkpointGroup: 2, chunkBytes: 16 * 1024 }, DEFAULT_OPTIMIZER).step],
      ['row-chunked loss step', buildFusedStep(m.weights, m.invFreq, { ...shape, lossChunks: 2 }, DEFAULT_OPTIMIZER).step],
      ['eval loss', buildLossGraph(m.weights, m.invFreq, shape)],
      ['prefill/decode', generationGraph(m.weights, m.invFreq, 96, lora, 2, device)],
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

/** Losses of STEPS free-running steps (AdamW, lr 1e-3) over BATCHES cycled batches, on WebGPU without CPU fallback. */
async function lossCurve(quantize: boolean, computeDtype: ComputeDtype): Promise<number[]> {
  const m = loadModel(DEMO, { quantize });
  const embed = quantize ? (ids: BigInt64Array) => m.weights.embedRows(ids) : undefined;
  const graphs = buildFusedStep(m.weights, m.invFreq, { batch: B, seq: T, lora, hostEmbeddings: quantize, computeDtype }, DEFAULT_OPTIMIZER);
  const session = await webGpuSession(serializeModel(graphs.step));
  const params: Map<string, Float32Array> = initLora(graphs.params, 5);
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>(graphs.params.map((p) => [p.name, { m: new Float32Array(p.shape[0] * p.shape[1]), v: new Float32Array(p.shape[0] * p.shape[1]) }]));
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const f: Record<string, HostTensor> = {
      ...randomBatch(200 + (step % BATCHES), m.config.vocabSize, B, T, embed),
      dropout_seeds: { dtype: 'float32', dims: [graphs.dropoutModules], data: Float32Array.from({ length: graphs.dropoutModules }, (_, i) => (step * 31 + i * 7.3) % 1000) },
      lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) },
      step: { dtype: 'float32', dims: [], data: Float32Array.of(step + 1) },
    };
    for (const p of graphs.params) {
      f[p.name] = { dtype: 'float32', dims: p.shape, data: params.get(p.name)! };
      f[`m:${p.name}`] = { dtype: 'float32', dims: p.shape, data: moments.get(p.name)!.m };
      f[`v:${p.name}`] = { dtype: 'float32', dims: p.shape, data: moments.get(p.name)!.v };
    }
    const out = await session.run(f);
    losses.push((out.loss!.data as Float32Array)[0]!);
    for (const p of graphs.params) {
      params.set(p.name, out[`new:${p.name}`]!.data as Float32Array);
      moments.set(p.name, { m: out[`new_m:${p.name}`]!.data as Float32Array, v: out[`new_v:${p.name}`]!.data as Float32Array });
    }
  }
  await session.release();
  m.close();
  return losses;
}

for (const quantize of [false, true]) {
  test(`${STEPS} ${quantize ? 'QLoRA (4-bit)' : 'LoRA'} steps with a float16 frozen path follow the float32 loss curve within 1e-2 relative (WebGPU, no CPU fallback)`, async () => {
    const f32 = await lossCurve(quantize, 'float32');
    const f16 = await lossCurve(quantize, 'float16');
    const rel = f16.map((l, i) => Math.abs(l - f32[i]!) / Math.abs(f32[i]!));
    console.log(`${quantize ? '4-bit' : 'float'}: float32 losses ${f32.map((l) => l.toFixed(4)).join(' ')}\n` +
      `  float16 losses ${f16.map((l) => l.toFixed(4)).join(' ')}\n  worst relative difference ${Math.max(...rel).toExponential(2)} (step ${rel.indexOf(Math.max(...rel)) + 1})`);
    rel.forEach((r, i) => assert.ok(r <= 1e-2, `step ${i + 1}: float16 loss ${f16[i]} vs float32 ${f32[i]} (relative ${r.toExponential(2)})`));
    // The curve must move, or agreement would say little: the cycled batches are learned.
    assert.ok(f32[STEPS - 1]! < f32[BATCHES - 1]! - 0.05, `the float32 loss did not fall (${f32[BATCHES - 1]} -> ${f32[STEPS - 1]})`);
    // And float16 must actually differ somewhere (the option changes the computation).
    assert.ok(rel.some((r) => r > 0), 'float16 losses equal float32 bit for bit: the option had no effect');
  });
}
