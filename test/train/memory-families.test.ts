// The memory estimate (train/memory.ts) knows each family's layout: Qwen3's q/k norms, Gemma 3's
// four norms a layer, GELU, logit capping and sliding layers' mask and RoPE tables, Phi-3's fused
// projections. For each: the 4-bit step graph stores every frozen weight once and the estimate
// counts the frozen bytes exactly; its activations are within 10% of a simulated allocation plan
// of the written step, and its node count within 10% of the graph's (float and 4-bit, with and
// without checkpointing), as for the Llama layout in memory.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DTYPE_BITS, numel } from '../../src-main/engine/graph/dtype.js';
import { lowerForOrt } from '../../src-main/engine/onnx/lower.js';
import { ropeInvFreq } from '../../src-main/model/config.js';
import { DEFAULT_LORA, modelTargets } from '../../src-main/model/lora.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { expectedWeights } from '../../src-main/model/validate.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { estimateNodes, estimateTrainingMemory, formatBytes } from '../../src-main/train/memory.js';
import { CPU_DEVICE, planGraph } from '../../src-main/train/plan.js';
import { DEFAULT_OPTIMIZER, buildFusedStep } from '../../src-main/train/step.js';
import { simulatedActivationBytes } from '../helpers/allocation-plan.js';
import { tinyConfig, tinyFamilyConfigs } from '../helpers/tiny-llama.js';

const lora = { ...DEFAULT_LORA, dropout: 0 };

test('every family\'s 4-bit step stores each frozen weight once, and the estimate counts its frozen bytes exactly', () => {
  for (const [name, cfg] of Object.entries(tinyFamilyConfigs())) {
    const shapes = new Map(expectedWeights(cfg).map((w) => [w.name, w.shape]));
    const fw = new FrozenWeights(cfg, (n) => new Float32Array(numel(shapes.get(n)!)).fill(0.01), { quantize: true, blockSize: 32 });
    const plan = planGraph({ batch: 2, seqLen: 16, lora, quantize: true, blockSize: 32, checkpointLayers: true, staticSeq: true }, cfg, CPU_DEVICE);
    const graph = buildFusedStep(fw, ropeInvFreq(cfg), plan, DEFAULT_OPTIMIZER).step;
    const inits = [...graph.initializers.values()];
    const int4 = inits.filter((i) => i.tensor.dtype === 'uint4' && !i.tensor.name.startsWith('int4.zero_point'));
    assert.equal(int4.length, modelTargets(cfg).length * cfg.numLayers + 1, `${name}: ${int4.map((i) => i.tensor.name).join(', ')}`);
    const bytesOf = (dtype: keyof typeof DTYPE_BITS, shape: readonly number[]) => Math.ceil((numel(shape) * DTYPE_BITS[dtype]) / 8);
    const frozen = inits.filter((i) => /\.(int4|scales)$|norm\.weight$/.test(i.tensor.name)).reduce((s, i) => s + bytesOf(i.tensor.dtype, i.tensor.shape as number[]), 0);
    const est = estimateTrainingMemory(cfg, plan);
    assert.equal(frozen, est.parts['frozen weights (layers)']! + est.parts['lm_head']! + cfg.hiddenSize * 4, `${name}: frozen bytes`); // + the final norm
  }
});

test('every family\'s activations and node count are within 10% of the written step graph', () => {
  // The shapes of memory.test.ts's activation check (rows 1024, D 512, I 1376, 32k vocabulary).
  const base: Partial<ModelConfig> = { vocabSize: 32000, hiddenSize: 512, intermediateSize: 1376, numLayers: 4, numHeads: 8, numKvHeads: 4, headDim: 64 };
  const { qwen3, gemma3, phi3 } = tinyFamilyConfigs();
  const families: Record<string, ModelConfig> = {
    qwen3: tinyConfig({ ...qwen3, ...base, layerTypes: ['full', 'full', 'full', 'full'] }),
    gemma3: tinyConfig({ ...gemma3, ...base, slidingWindow: 128, layerTypes: ['sliding', 'full', 'sliding', 'full'], queryPreAttnScalar: 64 }),
    phi3: tinyConfig({ ...phi3, ...base, rotaryDim: 32, slidingWindow: null, layerTypes: ['full', 'full', 'full', 'full'], ropeScaling: null }),
  };
  for (const [name, cfg] of Object.entries(families)) {
    const shapes = new Map(expectedWeights(cfg).map((w) => [w.name, w.shape]));
    const fill = (n: string) => new Float32Array(numel(shapes.get(n)!)).fill(0.01);
    for (const quantize of [false, true]) {
      for (const checkpointLayers of [false, true]) {
        const fw = new FrozenWeights(cfg, fill, { quantize, blockSize: 32 });
        const plan = planGraph({ batch: 4, seqLen: 256, lora, quantize, blockSize: 32, checkpointLayers, staticSeq: true }, cfg, CPU_DEVICE);
        const written = lowerForOrt(buildFusedStep(fw, ropeInvFreq(cfg), plan, DEFAULT_OPTIMIZER).step);
        const simulated = simulatedActivationBytes(written);
        const est = estimateTrainingMemory(cfg, plan);
        const modeled = est.parts['layer backward (one chunk)']! + est.parts['checkpointed layer inputs']!;
        const label = `${name} ${quantize ? '4-bit' : 'float'}${checkpointLayers ? ', checkpointed' : ''}`;
        console.log(`# ${label}: activations modeled ${formatBytes(modeled)}, simulated plan ${formatBytes(simulated)}`);
        assert.ok(Math.abs(modeled - simulated) / simulated <= 0.1, `${label}: modeled ${formatBytes(modeled)} vs simulated ${formatBytes(simulated)}`);
        // The node model is fitted to checkpointed steps (the memory-saving runs it prices).
        if (checkpointLayers) {
          const nodes = estimateNodes(cfg, plan);
          assert.ok(Math.abs(nodes - written.nodes.length) / written.nodes.length <= 0.1, `${label}: estimated ${nodes} nodes, the graph has ${written.nodes.length}`);
        }
      }
    }
  }
});
