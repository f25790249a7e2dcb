// The graph plan (train/plan.ts): what it decides for representative runs (float or 4-bit,
// checkpointing, a WebGPU buffer limit, float16, a static or symbolic length), and that the graphs
// built from a plan (train/step.ts, as the trainer builds them) and the memory estimate of the same
// plan (train/memory.ts) agree on every one of those decisions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GpuAdapter } from '../../src-main/engine/runtime/providers.js';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { chunkPlan } from '../../src-main/model/chunk-plan.js';
import { buildTrainForward } from '../../src-main/model/graphs.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { DEFAULT_LORA, LORA_TARGETS } from '../../src-main/model/lora.js';
import { estimateDeviceMemory, estimateTrainingMemory } from '../../src-main/train/memory.js';
import { CPU_DEVICE, type GraphSettings, leanQloraSettings, planGraph } from '../../src-main/train/plan.js';
import { graphDevice } from '../../src-main/train/precision.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep, buildFusedStep, buildLossGraph } from '../../src-main/train/step.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

const llama8b = tinyConfig({ vocabSize: 128_256, hiddenSize: 4096, intermediateSize: 14_336, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128 });
const settings = (o: Partial<GraphSettings> = {}): GraphSettings => ({ batch: 1, seqLen: 512, lora: DEFAULT_LORA, quantize: false, blockSize: 32, checkpointLayers: false, ...o });
const adapter = (o: Partial<GpuAdapter>): GpuAdapter => ({
  vendor: 'amd', architecture: 'rdna-3', device: '', description: 'AMD Radeon RX 7900 XTX', software: false, fallback: false,
  maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, shaderF16: true, backend: 'Vulkan', ...o,
});

test('a float run: the embedding table in the graph, no checkpoint groups, a symbolic length, float32 and no buffer limit on the CPU', () => {
  const p = planGraph(settings(), llama8b, CPU_DEVICE);
  assert.deepEqual({ ...p, chunks: undefined }, {
    batch: 1, seq: 512, dynamicSeq: true, lora: DEFAULT_LORA, quantize: false, blockSize: 32, checkpointLayers: false, checkpointGroup: 1,
    hostEmbeddings: false, chunks: undefined, computeDtype: 'float32', maxWeightBytes: Infinity, objective: { method: 'sft' },
  });
  assert.deepEqual(p.chunks, chunkPlan(llama8b, 1, 512, 32));
});

test('QLoRA: embeddings gathered on the host; checkpointing in groups of about sqrt(layers)', () => {
  const p = planGraph(settings({ quantize: true, blockSize: 64, checkpointLayers: true }), llama8b, CPU_DEVICE);
  assert.equal(p.hostEmbeddings, true);
  assert.equal(p.blockSize, 64);
  assert.deepEqual(p.chunks.mlpSizes.slice(0, -1).filter((w) => w % 64), [], 'MLP pieces stay aligned to the 4-bit block');
  for (const [layers, group] of [[1, 1], [2, 1], [3, 2], [4, 2], [16, 4], [28, 5], [32, 6], [80, 9]] as const) {
    assert.equal(planGraph(settings({ checkpointLayers: true }), tinyConfig({ numLayers: layers }), CPU_DEVICE).checkpointGroup, group, `${layers} layers`);
    assert.equal(planGraph(settings({ checkpointLayers: false }), tinyConfig({ numLayers: layers }), CPU_DEVICE).checkpointGroup, 1);
  }
  // The lean recipe of `finch bench train --estimate` is such a plan.
  const lean = planGraph(leanQloraSettings(1, 2048), llama8b, CPU_DEVICE);
  assert.deepEqual([lean.quantize, lean.blockSize, lean.hostEmbeddings, lean.checkpointGroup, lean.lora.rank, lean.lora.targets.length, lean.dynamicSeq], [true, 64, true, 6, 8, 7, false]);
});

test('a WebGPU buffer limit: every MLP and vocabulary weight piece fits it, where the CPU plan has larger ones', () => {
  const limit = 16 * 2 ** 20;
  const device = graphDevice({ provider: 'webgpu', adapter: adapter({ maxStorageBufferBindingSize: limit }) }, 'float32');
  assert.equal(device.maxWeightBytes, limit);
  const onGpu = planGraph(settings({ quantize: true }), llama8b, device), onCpu = planGraph(settings({ quantize: true }), llama8b, CPU_DEVICE);
  const rowBytes = llama8b.hiddenSize * 4; // a float32 row of gate/up/lm_head (a column of down_proj)
  assert.ok(Math.max(...onCpu.chunks.mlpSizes, ...onCpu.chunks.vocabSizes) * rowBytes > limit, 'the CPU plan has pieces over the limit');
  assert.ok(Math.max(...onGpu.chunks.mlpSizes, ...onGpu.chunks.vocabSizes) * rowBytes <= limit);
  assert.equal(onGpu.chunks.mlpSizes.reduce((a, b) => a + b), llama8b.intermediateSize);
  assert.equal(onGpu.chunks.vocabSizes.reduce((a, b) => a + b), llama8b.vocabSize);
  assert.equal(onGpu.maxWeightBytes, limit);
  // No adapter listed: the WebGPU spec's default binding size; other providers have no limit.
  assert.equal(graphDevice({ provider: 'webgpu', adapter: null }, 'float32').maxWeightBytes, 128 * 2 ** 20);
  assert.equal(graphDevice({ provider: 'cuda', adapter: null }, 'float32').maxWeightBytes, Infinity);
});

test('float16 is the device\'s decision: auto on a hardware adapter with shader-f16, refused on the CPU', () => {
  const f16 = graphDevice({ provider: 'webgpu', adapter: adapter({}) }, 'auto');
  assert.equal(f16.computeDtype, 'float16');
  assert.match(f16.computeDtypeReason, /shader-f16/);
  assert.equal(planGraph(settings(), llama8b, f16).computeDtype, 'float16');
  assert.equal(graphDevice({ provider: 'webgpu', adapter: adapter({ shaderF16: false }) }, 'auto').computeDtype, 'float32');
  assert.equal(graphDevice({ provider: 'cpu', adapter: null }, 'auto').computeDtype, 'float32');
  assert.throws(() => graphDevice({ provider: 'cpu', adapter: null }, 'float16'), /no float16 kernels/);
  // The GPU estimate reads the plan's dtype: float16 frozen matrices take half the bytes.
  const e32 = estimateDeviceMemory(llama8b, planGraph(settings(), llama8b, CPU_DEVICE)), e16 = estimateDeviceMemory(llama8b, planGraph(settings(), llama8b, f16));
  assert.ok(e16.gpuParts['frozen weights (layers)']! < 0.51 * e32.gpuParts['frozen weights (layers)']!);
});

test('the length: symbolic unless --static-seq, planned for the longest row', () => {
  assert.equal(planGraph(settings(), llama8b, CPU_DEVICE).dynamicSeq, true);
  assert.equal(planGraph(settings({ staticSeq: false }), llama8b, CPU_DEVICE).dynamicSeq, true);
  const fixed = planGraph(settings({ staticSeq: true, seqLen: 96 }), llama8b, CPU_DEVICE);
  assert.equal(fixed.dynamicSeq, false);
  assert.equal(fixed.seq, 96);
  assert.deepEqual(fixed.chunks, chunkPlan(llama8b, 1, 96, 32));
});

test('the graphs built from a plan and the estimate of that plan agree: chunks, checkpoint groups, host embeddings, length', () => {
  const cfg = tinyConfig({ numLayers: 5, numHeads: 4, numKvHeads: 2 });
  const weights = randomWeights(cfg, 3);
  const lora = { rank: 4, alpha: 8, dropout: 0.1, rslora: false, targets: LORA_TARGETS };
  for (const quantize of [false, true]) {
    for (const staticSeq of [false, true]) {
      // Small chunks: attention, MLP and vocabulary are all cut.
      const plan = planGraph({ batch: 2, seqLen: 16, lora, quantize, blockSize: 32, checkpointLayers: true, staticSeq }, cfg, CPU_DEVICE, { chunkBytes: 1024 });
      const label = `${quantize ? '4-bit' : 'float'}, ${staticSeq ? 'static' : 'symbolic'} length`;
      assert.ok(plan.chunks.attentionHeads < cfg.numHeads && plan.chunks.mlpSizes.length > 1 && plan.chunks.vocabSizes.length > 1, `${label}: ${JSON.stringify(plan.chunks)}`);
      const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, { quantize, blockSize: plan.blockSize });
      const forward = buildTrainForward(new Graph('forward'), fw, invFreqOf(cfg), { ...plan, dropout: true });
      assert.deepEqual(forward.chunks, plan.chunks, `${label}: the graph's chunks`);
      assert.deepEqual(estimateTrainingMemory(cfg, plan).chunks, plan.chunks, `${label}: the estimate's chunks`);

      const est = estimateTrainingMemory(cfg, plan);
      for (const step of [buildFusedStep(fw, invFreqOf(cfg), plan, DEFAULT_OPTIMIZER).step, buildAccumulatingStep(fw, invFreqOf(cfg), plan, DEFAULT_OPTIMIZER).grads, buildLossGraph(fw, invFreqOf(cfg), plan)]) {
        const where = `${label}, ${step.name}`;
        // The backward recomputes outer segments of plan.checkpointGroup layers: 0-1, 2-3, 4-4 (evaluation has none).
        const groups = new Set(step.nodes.flatMap((n) => n.name.match(/group\.\d+-\d+/) ?? []));
        assert.equal(plan.checkpointGroup, 2);
        assert.deepEqual([...groups].sort(), step.name === 'eval_loss' ? [] : ['group.0-1', 'group.2-3', 'group.4-4'], where);
        // Host embeddings: the rows come in, the table is not in the graph; the estimate counts the same.
        const inputs = new Map(step.inputs.map((t) => [t.name, t.shape]));
        assert.equal(inputs.has('inputs_embeds'), plan.hostEmbeddings, where);
        assert.equal(inputs.has('input_ids'), !plan.hostEmbeddings, where);
        assert.equal(step.initializers.has('model.embed_tokens.weight'), !plan.hostEmbeddings && !cfg.tieWordEmbeddings, where);
        assert.equal(est.parts['embeddings (host rows)'] !== undefined, plan.hostEmbeddings, where);
        // The length: a symbol, or the plan's.
        assert.deepEqual(inputs.get('position_ids'), [plan.batch, plan.dynamicSeq ? 'seq' : plan.seq], where);
      }
    }
  }
});
