// buildTrainForward's head gradient (headGradient: the vocabulary-pieced loss forms dLoss/dh in the
// forward, model/llama.ts lmLossAndGradient): which models take it, and the LoRA gradients it leads
// to against autodiff through the recomputing loss.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { Session, type HostTensor } from '../../src-main/engine/runtime/session.js';
import { buildTrainForward } from '../../src-main/model/graphs.js';
import { DEFAULT_LORA, initLora, loraParams, resolveLora } from '../../src-main/model/lora.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { randomBatch } from '../helpers/demo-batch.js';
import { tinyModel } from '../helpers/family-graphs.js';
import { tinyConfig, tinyFamilyConfigs } from '../helpers/tiny-llama.js';

const B = 2, T = 8;
const CHUNK_BYTES = 256; // cuts the tiny vocabulary into pieces

function gradients(cfg: ModelConfig, headGradient: boolean) {
  const { fw, invFreq } = tinyModel(cfg, false);
  const g = new Graph(`head_${headGradient}`);
  const lora = { ...resolveLora(cfg, DEFAULT_LORA), dropout: 0 };
  const tg = buildTrainForward(g, fw, invFreq, { batch: B, seq: T, lora, chunkBytes: CHUNK_BYTES, headGradient });
  const params = loraParams(cfg, lora);
  const p = params.map((q) => tg.loraInputs.get(q.name)!);
  const grads = tg.headGrad ? grad(tg.headGrad.h, p, { seed: tg.headGrad.dh }) : grad(tg.loss, p);
  g.output(tg.loss, 'loss');
  grads.forEach((d, i) => g.output(d, `grad:${params[i]!.name}`));
  return { g, tg, params };
}

test('the head gradient is taken where the vocabulary is cut into pieces and the logits are not capped (not Gemma)', () => {
  for (const [name, cfg] of Object.entries({ llama: tinyConfig({}), ...tinyFamilyConfigs() })) {
    const { tg } = gradients(cfg, true);
    assert.ok(tg.chunks.vocabSizes.length > 1, `${name}: vocabulary pieces ${tg.chunks.vocabSizes}`);
    assert.equal(tg.headGrad !== null, cfg.finalLogitSoftcap === null, `${name}: head gradient ${tg.headGrad ? 'taken' : 'not taken'}`);
  }
});

for (const [name, cfg] of Object.entries({ llama: tinyConfig({}), qwen3: tinyFamilyConfigs().qwen3 })) {
  test(`${name}: LoRA gradients through the head gradient equal autodiff's through the recomputing loss (1e-5), same loss`, async () => {
    const runs: Record<string, HostTensor>[] = [];
    for (const headGradient of [true, false]) {
      const { g, params } = gradients(cfg, headGradient);
      const init = initLora(params, 3);
      // Non-zero B matrices, so that every LoRA gradient (A's too) is non-zero.
      for (const [k, v] of init) if (k.includes('lora_B')) v.forEach((_, i) => { v[i] = Math.sin(i * 0.37) * 0.02; });
      const feeds: Record<string, HostTensor> = { ...randomBatch(5, cfg.vocabSize, B, T) };
      for (const q of params) feeds[q.name] = { dtype: 'float32', dims: q.shape, data: init.get(q.name)! };
      for (const k of Object.keys(feeds)) if (!g.inputs.some((t) => t.name === k)) delete feeds[k];
      const s = await Session.create(serializeModel(g), { threads: 1 });
      runs.push(await s.run(feeds));
      await s.release();
    }
    const [fused, autodiff] = runs as [Record<string, HostTensor>, Record<string, HostTensor>];
    const loss = (o: Record<string, HostTensor>) => (o.loss!.data as Float32Array)[0]!;
    assert.ok(Math.abs(loss(fused) - loss(autodiff)) <= 1e-6 * Math.abs(loss(autodiff)), `loss ${loss(fused)} vs ${loss(autodiff)}`);
    for (const k of Object.keys(autodiff).filter((k) => k.startsWith('grad:'))) {
      const a = fused[k]!.data as Float32Array, b = autodiff[k]!.data as Float32Array;
      const scale = b.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      assert.ok(scale > 0, `${k}: zero gradient`);
      const diff = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
      assert.ok(diff <= 1e-5 * scale, `${k}: max |head gradient - autodiff| ${diff.toExponential(2)} vs max ${scale.toExponential(2)}`);
    }
  });
}
