// Finch's own logits of a base model with a PEFT adapter, as the app computes them: the generation
// graph (model/graphs.ts), one token a step through the KV cache (with the sliding layers' mask
// where the model has one shorter than the sequence).
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { generationGraph, stepInputs } from '../../src-main/infer/generate.js';
import { loadPeftAdapter } from '../../src-main/model/adapter.js';
import { slidingWindowIn } from '../../src-main/model/llama.js';
import { loadModel } from '../../src-main/model/load.js';
import { loraParams } from '../../src-main/model/lora.js';

/** Logits [T, V] of base + adapter at every position of `ids`. */
export async function adapterLogits(baseDir: string, adapterDir: string, ids: readonly number[]): Promise<Float32Array> {
  const m = loadModel(baseDir);
  try {
    const adapter = loadPeftAdapter(adapterDir, m.config);
    const session = await Session.create(serializeModel(generationGraph(m.weights, m.invFreq, ids.length, adapter.spec, 1)), { threads: 2 });
    const lora: Record<string, HostTensor> = { lora_scale: { dtype: 'float32', dims: [1], data: Float32Array.of(1) } };
    for (const p of loraParams(m.config, adapter.spec)) lora[p.name] = { dtype: 'float32', dims: p.shape, data: adapter.tensors.get(p.name)! };
    const { numLayers: L, numKvHeads: KV, headDim, vocabSize: V } = m.config;
    const window = slidingWindowIn(m.config, ids.length);
    let cache: Record<string, HostTensor> = {};
    for (let l = 0; l < L; l++) for (const kv of ['k', 'v']) cache[`past_${kv}.${l}`] = { dtype: 'float32', dims: [1, KV, 0, headDim], data: new Float32Array(0) };
    const logits = new Float32Array(ids.length * V);
    for (let t = 0; t < ids.length; t++) {
      const o = await session.run({ ...stepInputs([[ids[t]!]], t, [0], window), ...cache, ...lora });
      logits.set(o.logits!.data as Float32Array, t * V);
      cache = {};
      for (let l = 0; l < L; l++) for (const kv of ['k', 'v']) cache[`past_${kv}.${l}`] = o[`present_${kv}.${l}`]!;
    }
    await session.release();
    return logits;
  } finally {
    m.close();
  }
}
