// The Llama-family training graph against an independent PyTorch implementation
// (test/oracle/oracle_llama.py): the logits at every position, the loss and every LoRA gradient, float and 4-bit bases, with
// padding and prompt masks. For the 4-bit bases the oracle gets weights dequantized by this file's
// own reference of the int4 scheme (symmetricInt4), not by model/quant.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { buildTrainForward } from '../../src-main/model/graphs.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { type LoraSpec, LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { maxDiffOverScale, runLlamaOracle } from '../helpers/llama-oracle.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

/**
 * What a symmetric blockwise int4 weight stands for, written from the scheme's definition: per
 * block of `block` inputs, scale = float32(absmax / 7), q = clamp(round(w / scale) + 8, 0, 15),
 * value = (q - 8) * scale.
 */
function symmetricInt4(w: Float32Array, N: number, K: number, block: number): Float32Array {
  const out = new Float32Array(N * K);
  for (let start = 0; start < N * K; start += block) {
    const vals = w.subarray(start, start + block);
    const scale = Math.fround(Math.max(...Array.from(vals, Math.abs)) / 7);
    vals.forEach((v, j) => {
      const q = scale > 0 ? Math.min(15, Math.max(0, Math.round(v / scale) + 8)) : 8;
      out[start + j] = (q - 8) * scale;
    });
  }
  return out;
}

interface Case { name: string; cfg: ModelConfig; quantize: boolean; checkpoint?: boolean; lossChunks?: number }

async function runCase(c: Case) {
  const { cfg } = c;
  const B = 2, T = 7;
  const weights = randomWeights(cfg, 7);
  const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, { quantize: c.quantize, blockSize: 32 });
  const g = new Graph('train');
  const tg = buildTrainForward(g, fw, invFreqOf(cfg), { batch: B, seq: T, lora: spec, checkpointLayers: c.checkpoint, lossChunks: c.lossChunks, dropout: false });
  const params = loraParams(cfg, spec);
  const grads = grad(tg.loss, params.map((p) => tg.loraInputs.get(p.name)!));
  g.output(tg.loss, 'loss');
  g.output(tg.logits(), 'logits'); // [B*T, V]
  params.forEach((p, i) => g.output(grads[i]!, `grad:${p.name}`));

  // Batch: row 1 is right-padded by 2; prompt tokens (first 2) are not trained.
  const rand = mulberry32(3);
  const ids = BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(rand() * cfg.vocabSize)));
  const valid = (b: number, t: number) => !(b === 1 && t >= T - 2);
  const pos = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T));
  const bias = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    bias[(b * T + i) * T + j] = j <= i && valid(b, j) ? 0 : -1e9;
  }
  const targets = Int32Array.from({ length: B * T }, (_, i) => {
    const b = Math.floor(i / T), t = i % T;
    return t < 2 || t === T - 1 || !valid(b, t + 1) ? -100 : Number(ids[i + 1]!);
  });
  const lora = new Map(params.map((p) => {
    const a = Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.3);
    return [p.name, a];
  }));

  const feeds: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [B, T], data: ids },
    position_ids: { dtype: 'int64', dims: [B, T], data: pos },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias },
    targets: { dtype: 'int32', dims: [B * T], data: targets },
  };
  for (const p of params) feeds[p.name] = { dtype: 'float32', dims: p.shape, data: lora.get(p.name)! };
  const session = await Session.create(serializeModel(g), { threads: 2 });
  const out = await session.run(feeds);

  // Oracle: the same tensors (dequantized weights for the 4-bit base).
  const refOf = runLlamaOracle({
    cfg, invFreq: invFreqOf(cfg), spec,
    weights: [...weights].map(([name, w]) => {
      const isProj = /_proj\.weight$|lm_head/.test(name) && w.shape.length === 2;
      return [name, { shape: w.shape, data: c.quantize && isProj ? symmetricInt4(w.data, w.shape[0]!, w.shape[1]!, 32) : w.data }];
    }),
    batch: { input_ids: feeds.input_ids!, position_ids: feeds.position_ids!, attn_bias: feeds.attn_bias!, targets: feeds.targets! },
    lora: params.map((p) => [p.name, { shape: p.shape, data: lora.get(p.name)! }]),
  });
  const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
    return Math.sqrt(num / Math.max(den, 1e-30));
  };
  const lossErr = relErr(out.loss!.data as Float32Array, refOf('loss'));
  assert.ok(lossErr <= 1e-4, `${c.name}: loss ${out.loss!.data[0]} vs ${refOf('loss')[0]} (rel ${lossErr})`);
  // Logits at every position, padded ones included (their queries still see the valid keys).
  const logitsErr = maxDiffOverScale(out.logits!.data as Float32Array, refOf('logits'));
  assert.ok(logitsErr <= 1e-5, `${c.name}: logits differ from PyTorch (max |diff| / max |logit| = ${logitsErr})`);
  let worst = 0;
  for (const p of params) {
    const e = relErr(out[`grad:${p.name}`]!.data as Float32Array, refOf(`grad:${p.name}`));
    worst = Math.max(worst, e);
    assert.ok(e <= 1e-4, `${c.name}: gradient of ${p.name} differs from PyTorch (rel ${e})`);
  }
  await session.release();
  return { lossErr, logitsErr, worst };
}

const cases: Case[] = [
  { name: 'llama (GQA)', cfg: tinyConfig({}), quantize: false },
  { name: 'llama 4-bit base', cfg: tinyConfig({}), quantize: true },
  { name: 'qwen2 (q/k/v bias, tied)', cfg: tinyConfig({ modelType: 'qwen2', attentionBias: true, tieWordEmbeddings: true, numKvHeads: 1 }), quantize: false },
  { name: 'mistral 4-bit, checkpointed layers, chunked loss', cfg: tinyConfig({ modelType: 'mistral', numKvHeads: 4 }), quantize: true, checkpoint: true, lossChunks: 3 },
];

for (const c of cases) {
  test(`training graph matches PyTorch: ${c.name}`, async () => {
    const r = await runCase(c);
    console.log(`# ${c.name}: loss rel err ${r.lossErr.toExponential(2)}, logits max diff / max |logit| ${r.logitsErr.toExponential(2)}, worst LoRA grad rel err ${r.worst.toExponential(2)}`);
  });
}
