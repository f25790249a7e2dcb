// The generation path's logits against the PyTorch oracle (test/oracle/oracle_llama.py): the
// generator's own graph and step inputs (generationGraph, stepInputs) run a left-padded prefill and
// three KV-cache decode steps for a batch of a base row and a LoRA row; each step's logits must equal
// the oracle's full-sequence forward of that row's tokens at the same position.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { generationGraph, stepInputs } from '../../src-main/infer/generate.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { type LoraSpec, LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { maxDiffOverScale, runLlamaOracle } from '../helpers/llama-oracle.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

test('prefill + KV-cache decode logits match the PyTorch full-sequence forward (base row and LoRA row)', async () => {
  const cfg = tinyConfig({});
  const weights = randomWeights(cfg, 11);
  const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const params = loraParams(cfg, spec);
  const rand = mulberry32(5);
  const adapter = new Map(params.map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.5)]));
  const zeros = new Map(params.map((p) => [p.name, new Float32Array(p.shape[0] * p.shape[1])]));

  // Row 0: base model (lora_scale 0), 5-token prompt. Row 1: tuned (lora_scale 1), 3-token prompt,
  // left-padded by 2. Each row then decodes 3 given tokens (teacher-forced: the logits are what is checked).
  const prompts = [[1, 5, 9, 13, 21], [1, 7, 30]];
  const decoded = [[40, 41, 42], [50, 51, 52]];
  const loraScales = [0, 1];
  const B = prompts.length, V = cfg.vocabSize, steps = decoded[0]!.length;
  const L = Math.max(...prompts.map((p) => p.length));
  const padStart = prompts.map((p) => L - p.length);

  const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data);
  const session = await Session.create(serializeModel(generationGraph(fw, invFreqOf(cfg), 16, spec, B)), { threads: 2 });
  const fixed: Record<string, HostTensor> = { lora_scale: { dtype: 'float32', dims: [B], data: Float32Array.from(loraScales) } };
  for (const p of params) fixed[p.name] = { dtype: 'float32', dims: p.shape, data: adapter.get(p.name)! };
  let cache: Record<string, HostTensor> = {};
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const kv of ['k', 'v']) cache[`past_${kv}.${l}`] = { dtype: 'float32', dims: [B, cfg.numKvHeads, 0, cfg.headDim], data: new Float32Array(0) };
  }
  // finch[b][k]: row b's logits [V] after step k (0 = prefill, then one per decoded token).
  const finch: Float32Array[][] = prompts.map(() => []);
  const run = async (tokens: number[][], P: number) => {
    const out = await session.run({ ...stepInputs(tokens, P, padStart), ...cache, ...fixed });
    const logits = out.logits!.data as Float32Array; // [B, V]
    for (let b = 0; b < B; b++) finch[b]!.push(logits.slice(b * V, (b + 1) * V));
    cache = {};
    for (let l = 0; l < cfg.numLayers; l++) {
      cache[`past_k.${l}`] = out[`present_k.${l}`]!;
      cache[`past_v.${l}`] = out[`present_v.${l}`]!;
    }
  };
  await run(prompts.map((p, b) => [...new Array<number>(padStart[b]!).fill(0), ...p]), 0);
  for (let k = 0; k < steps; k++) await run(decoded.map((d) => [d[k]!]), L + k);
  await session.release();

  for (let b = 0; b < B; b++) {
    // The oracle sees the row alone: no padding, positions 0..T-1, a plain causal mask.
    const seq = [...prompts[b]!, ...decoded[b]!], T = seq.length;
    const bias = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) bias[i * T + j] = -1e9;
    const ref = runLlamaOracle({
      cfg, invFreq: invFreqOf(cfg), spec, weights,
      batch: {
        input_ids: { dtype: 'int64', dims: [1, T], data: BigInt64Array.from(seq, BigInt) },
        position_ids: { dtype: 'int64', dims: [1, T], data: BigInt64Array.from({ length: T }, (_, i) => BigInt(i)) },
        attn_bias: { dtype: 'float32', dims: [1, 1, T, T], data: bias },
        targets: { dtype: 'int32', dims: [T], data: Int32Array.from({ length: T }, (_, i) => (i + 1 < T ? seq[i + 1]! : -100)) },
      },
      lora: params.map((p) => [p.name, { shape: p.shape, data: (loraScales[b] ? adapter : zeros).get(p.name)! }]),
    })('logits'); // [T, V]
    // Step k's logits belong to position (prompt length - 1 + k).
    const first = prompts[b]!.length - 1;
    const want = ref.slice(first * V, (first + steps + 1) * V);
    const got = new Float32Array((steps + 1) * V);
    finch[b]!.forEach((row, k) => got.set(row, k * V));
    const err = maxDiffOverScale(got, want);
    console.log(`# row ${b} (${loraScales[b] ? 'LoRA' : 'base'}): prefill + ${steps} decode steps, max |diff| / max |logit| ${err.toExponential(2)}`);
    assert.ok(err <= 1e-5, `row ${b}: generation logits differ from PyTorch (max |diff| / max |logit| = ${err})`);
  }
});
