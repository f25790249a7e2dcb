// GPU memory reported apart from host memory (train/memory.ts estimateDeviceMemory): the step's
// buffers move to the GPU, ONNX Runtime's session and the trainer's LoRA copies stay on the host,
// the CPU provider's repacked weights disappear, and float16 halves the frozen matrices.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ComputeDtype } from '../../src-main/model/weights/graph-weights.js';
import { LORA_TARGETS } from '../../src-main/model/lora.js';
import { estimateDeviceMemory, estimateTrainingMemory, formatBytes } from '../../src-main/train/memory.js';
import { CPU_DEVICE, leanQloraSettings, planGraph } from '../../src-main/train/plan.js';
import { tinyConfig } from '../helpers/tiny-llama.js';

const llama8b = tinyConfig({ vocabSize: 128_256, hiddenSize: 4096, intermediateSize: 14_336, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128 });
/** The plan of a checkpointed run with dropout (groups of 6 layers), float or 4-bit (embeddings gathered on the host), in a compute dtype. */
const planOf = (quantize: boolean, computeDtype: ComputeDtype = 'float32') => planGraph({
  batch: 2, seqLen: 256, lora: { rank: 16, alpha: 32, dropout: 0.05, rslora: false, targets: LORA_TARGETS }, quantize, blockSize: 32, checkpointLayers: true,
}, llama8b, { computeDtype, maxWeightBytes: Infinity });

test('every part of the host estimate lands on the GPU or the host, except the CPU provider\'s repacked weights', () => {
  for (const quantize of [false, true]) {
    const p = planOf(quantize);
    assert.equal(p.checkpointGroup, 6);
    const host = estimateTrainingMemory(llama8b, p);
    const dev = estimateDeviceMemory(llama8b, p);
    const repack = host.parts['float weights, repacked by ORT'] ?? 0;
    assert.equal(quantize, repack === 0);
    const ort = host.parts['ONNX Runtime session']!;
    // GPU + ONNX Runtime's host part = the host estimate without the repacked copies.
    assert.ok(Math.abs(dev.gpuBytes + ort - (host.totalBytes - repack)) < 1, `${dev.gpuBytes} + ${ort} vs ${host.totalBytes} - ${repack}`);
    assert.ok(dev.hostBytes > ort && dev.hostBytes < ort + 7 * host.parts['LoRA + AdamW state']!);
  }
});

test('float16 halves the frozen matrices on the GPU (4-bit: its scales), nothing else', () => {
  for (const quantize of [false, true]) {
    const f32 = estimateDeviceMemory(llama8b, planOf(quantize, 'float32')), f16 = estimateDeviceMemory(llama8b, planOf(quantize, 'float16'));
    const matrices = (e: typeof f32) => e.gpuParts['frozen weights (layers)']! + e.gpuParts['lm_head']! + e.gpuParts['embeddings']!;
    const norms = llama8b.numLayers * 2 * llama8b.hiddenSize * 4;
    if (!quantize) assert.ok(Math.abs(matrices(f16) - norms - (matrices(f32) - norms) / 2) < 1);
    else {
      // The float32 scales of the 4-bit codes (one per block of 32) halve; the embedding table is on the host.
      const { hiddenSize: D, intermediateSize: I, vocabSize: V, numLayers: L } = llama8b, kv = 1024;
      const weights = L * (2 * D * D + 2 * kv * D + 3 * I * D) + V * D; // 4-bit elements
      assert.equal(f32.gpuParts['embeddings'], 0);
      const saved = ((weights / 32) * 4) / 2;
      assert.ok(Math.abs(matrices(f32) - matrices(f16) - saved) < 1, `${matrices(f32) - matrices(f16)} vs ${saved}`);
    }
    assert.equal(f32.gpuBytes - matrices(f32), f16.gpuBytes - matrices(f16));
    assert.deepEqual(f32.hostParts, f16.hostParts);
  }
  const lean = planGraph(leanQloraSettings(1, 512), llama8b, { ...CPU_DEVICE, computeDtype: 'float16' });
  const e = estimateDeviceMemory(llama8b, lean);
  console.log(`Llama 3 8B lean QLoRA, 1 x 512, float16: ${formatBytes(e.gpuBytes)} GPU + ${formatBytes(e.hostBytes)} host; ` +
    `host-only estimate ${formatBytes(estimateTrainingMemory(llama8b, lean).totalBytes)}`);
});
