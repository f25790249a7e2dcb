// Qwen3, Gemma 3 and Phi-3 (tiny models with each family's additions switched on:
// test/helpers/tiny-llama.ts) on WebGPU with CPU fallback disabled: every graph the trainer and the
// generator build creates a session, float and 4-bit; one LoRA step gives the CPU's loss and
// gradients; greedy KV-cache generation past the sliding window gives the CPU's ids.
// Without a GPU this runs on Mesa 25's lavapipe (CI installs it); a missing adapter fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { Generator } from '../../src-main/infer/generate.js';
import { slidingWindowIn, windowedBias } from '../../src-main/model/llama.js';
import { DEFAULT_LORA, initLora, loraParams, resolveLora } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { DEFAULT_OPTIMIZER, buildFusedStep } from '../../src-main/train/step.js';
import { randomBatch } from '../helpers/demo-batch.js';
import { allGraphs, tinyModel } from '../helpers/family-graphs.js';
import { tinyFamilyConfigs } from '../helpers/tiny-llama.js';
import { webGpuSession } from '../helpers/webgpu.js';

const FAMILIES = Object.entries(tinyFamilyConfigs());
const B = 2, T = 12; // longer than the sliding windows (4 and 5): the windowed mask is an input

for (const [name, cfg] of FAMILIES) {
  test(`${name}: every graph (float and 4-bit) creates a WebGPU session with CPU fallback disabled`, async () => {
    for (const quantize of [false, true]) {
      const { fw, invFreq } = tinyModel(cfg, quantize);
      // Chunks of 4 KiB cut the MLP (Phi-3's fused gate_up_proj included) and the vocabulary; the
      // attention stays whole: head chunks of these tiny shapes put layout Transposes on the CPU,
      // for the Llama layout as much (an engine matter, not a family's).
      for (const [what, g] of allGraphs(fw, invFreq, T, 4096)) {
        const s = await webGpuSession(serializeModel(g)).catch((e: Error) => {
          throw new Error(`${name} ${quantize ? '4-bit' : 'float'} ${what}: ${e.message}`);
        });
        await s.release();
      }
    }
  });

  test(`${name}: a LoRA step on WebGPU gives the CPU's loss and gradients (within 1e-4)`, async () => {
    const { fw, invFreq } = tinyModel(cfg, false);
    const lora = { ...resolveLora(cfg, DEFAULT_LORA), dropout: 0 };
    const graphs = buildFusedStep(fw, invFreq, { batch: B, seq: T, lora }, DEFAULT_OPTIMIZER);
    const model = serializeModel(graphs.step);
    const cpu = await Session.create(model, { provider: 'cpu', threads: 2 });
    const gpu = await webGpuSession(model);
    const f: Record<string, HostTensor> = {
      ...randomBatch(5, cfg.vocabSize, B, T),
      lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-3) },
      step: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
    };
    const window = slidingWindowIn(cfg, T);
    if (window !== null) f.attn_bias_local = { ...f.attn_bias!, data: windowedBias(f.attn_bias!.data as Float32Array, B, T, T, window) };
    // B non-zero, so every gradient flows.
    const rand = mulberry32(7);
    const params = initLora(graphs.params, 3);
    for (const p of graphs.params) {
      const data = p.which === 'B' ? Float32Array.from(params.get(p.name)!, () => (rand() * 2 - 1) * 0.1) : params.get(p.name)!;
      f[p.name] = { dtype: 'float32', dims: p.shape, data };
      f[`m:${p.name}`] = { dtype: 'float32', dims: p.shape, data: new Float32Array(data.length) };
      f[`v:${p.name}`] = { dtype: 'float32', dims: p.shape, data: new Float32Array(data.length) };
    }
    const a = await cpu.run(f), b = await gpu.run(f);
    const value = (o: Record<string, HostTensor>, k: string) => o[k]!.data as Float32Array;
    const la = value(a, 'loss')[0]!, lb = value(b, 'loss')[0]!;
    assert.ok(Math.abs(lb - la) <= 1e-4 * Math.abs(la), `loss ${lb} on WebGPU vs ${la} on CPU`);
    let worst = 0;
    for (const p of graphs.params) {
      const ma = value(a, `new_m:${p.name}`), mb = value(b, `new_m:${p.name}`); // (1 - beta1) * the clipped gradient
      const scale = ma.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const diff = ma.reduce((m, x, i) => Math.max(m, Math.abs(x - mb[i]!)), 0);
      assert.ok(diff <= 1e-4 * scale, `${p.name}: gradient max |WebGPU - CPU| ${diff.toExponential(2)} vs max |CPU| ${scale.toExponential(2)}`);
      worst = Math.max(worst, diff / (scale || 1));
    }
    console.log(`# ${name}: loss ${la.toFixed(5)} (WebGPU ${lb.toFixed(5)}), worst gradient difference ${worst.toExponential(2)} of the max`);
    await cpu.release();
    await gpu.release();
  });

  test(`${name}: greedy KV-cache generation past the sliding window on WebGPU gives the CPU's ids`, async () => {
    const { fw, invFreq } = tinyModel(cfg, false);
    const lora = resolveLora(cfg, DEFAULT_LORA);
    const rand = mulberry32(9);
    const adapter = new Map(loraParams(cfg, lora).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.2)]));
    const prompts = [[3, 17, 40, 22, 9, 11], [5, 8, 13]];
    const run = async (provider: 'cpu' | 'webgpu') => {
      const gen = await Generator.create(fw, invFreq, { maxPositions: 32, lora, provider, strictProvider: provider === 'webgpu', threads: 2 });
      const out = await gen.generate({ prompts, maxNewTokens: 12, eosIds: [], loraScales: [0, 1], adapter });
      await gen.release();
      return out.map((r) => r.ids);
    };
    const cpu = await run('cpu'), gpu = await run('webgpu');
    assert.equal(cpu[0]!.length, 12);
    assert.deepEqual(gpu, cpu);
  });
}
