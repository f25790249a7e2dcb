// The Llama-family training graph against an independent PyTorch implementation
// (test/model/oracle_llama.py): logits, loss and every LoRA gradient, float and 4-bit bases,
// with padding and prompt masks.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { grad } from '../../src-main/engine/autodiff/grad.js';
import { Graph } from '../../src-main/engine/graph/graph.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { FrozenWeights, buildTrainForward } from '../../src-main/model/llama.js';
import { type LoraSpec, LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { dequantizeInt4, quantizeInt4 } from '../../src-main/model/quant.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

interface Case { name: string; cfg: ModelConfig; quantize: boolean; checkpoint?: boolean; lossChunks?: number }

async function runCase(c: Case) {
  const { cfg } = c;
  const B = 2, T = 7;
  const weights = randomWeights(cfg, 7);
  const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, c.quantize, 32);
  const g = new Graph('train');
  const tg = buildTrainForward(g, fw, invFreqOf(cfg), { batch: B, seq: T, lora: spec, checkpointLayers: c.checkpoint, lossChunks: c.lossChunks, dropout: false });
  const params = loraParams(cfg, spec);
  const grads = grad(tg.loss, params.map((p) => tg.loraInputs.get(p.name)!));
  g.output(tg.loss, 'loss');
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
  const targets = BigInt64Array.from({ length: B * T }, (_, i) => {
    const b = Math.floor(i / T), t = i % T;
    return t < 2 || t === T - 1 || !valid(b, t + 1) ? -100n : ids[i + 1]!;
  });
  const lora = new Map(params.map((p) => {
    const a = Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.3);
    return [p.name, a];
  }));

  const feeds: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [B, T], data: ids },
    position_ids: { dtype: 'int64', dims: [B, T], data: pos },
    attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: bias },
    targets: { dtype: 'int64', dims: [B * T], data: targets },
  };
  for (const p of params) feeds[p.name] = { dtype: 'float32', dims: p.shape, data: lora.get(p.name)! };
  const session = await Session.create(serializeModel(g), { threads: 2 });
  const out = await session.run(feeds);

  // Oracle: the same tensors (dequantized weights for the 4-bit base).
  const dir = mkdtempSync(join(tmpdir(), 'finch-llama-'));
  const index: Record<string, { dtype: string; shape: number[]; offset: number }> = {};
  const parts: Buffer[] = [];
  let off = 0;
  const put = (name: string, dtype: string, shape: number[], data: Float32Array | BigInt64Array) => {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    index[name] = { dtype, shape, offset: off };
    parts.push(b);
    off += b.byteLength;
  };
  for (const [name, w] of weights) {
    const isProj = /_proj\.weight$|lm_head/.test(name) && w.shape.length === 2;
    const data = c.quantize && isProj ? dequantizeInt4(quantizeInt4(w.data, w.shape[0]!, w.shape[1]!, 32)) : w.data;
    put(name, 'float32', w.shape, data);
  }
  for (const k of ['input_ids', 'position_ids', 'attn_bias', 'targets']) {
    const f = feeds[k]!;
    put(k, f.dtype, [...f.dims], f.data as Float32Array | BigInt64Array);
  }
  for (const p of params) put(p.name, 'float32', p.shape, lora.get(p.name)!);
  writeFileSync(join(dir, 'tensors.bin'), Buffer.concat(parts));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ config: cfg, tensors: index, lora: spec, invFreq: Array.from(invFreqOf(cfg)) }));
  execFileSync('/usr/bin/python3', [new URL('./oracle_llama.py', import.meta.url).pathname, dir], { stdio: 'inherit' });
  const ref = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as Record<string, { offset: number; shape: number[] }>;
  const refBin = readFileSync(join(dir, 'out.bin'));
  const refOf = (k: string) => {
    const e = ref[k]!;
    const n = e.shape.reduce((a, b) => a * b, 1);
    return new Float32Array(refBin.buffer.slice(refBin.byteOffset + e.offset, refBin.byteOffset + e.offset + n * 4));
  };
  const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
    return Math.sqrt(num / Math.max(den, 1e-30));
  };
  const lossErr = relErr(out.loss!.data as Float32Array, refOf('loss'));
  assert.ok(lossErr <= 1e-4, `${c.name}: loss ${out.loss!.data[0]} vs ${refOf('loss')[0]} (rel ${lossErr})`);
  let worst = 0;
  for (const p of params) {
    const e = relErr(out[`grad:${p.name}`]!.data as Float32Array, refOf(`grad:${p.name}`));
    worst = Math.max(worst, e);
    assert.ok(e <= 1e-4, `${c.name}: gradient of ${p.name} differs from PyTorch (rel ${e})`);
  }
  await session.release();
  return { lossErr, worst };
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
    console.log(`# ${c.name}: loss rel err ${r.lossErr.toExponential(2)}, worst LoRA grad rel err ${r.worst.toExponential(2)}`);
  });
}
