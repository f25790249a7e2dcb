// KV-cache generation equals full recomputation; the side-by-side batch equals separate runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Generator } from '../../src-main/infer/generate.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { type LoraSpec, LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

const cfg = tinyConfig({ numLayers: 2 });
const weights = randomWeights(cfg, 11);
const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
const rand = mulberry32(5);
const adapter = new Map(loraParams(cfg, spec).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * 0.5)]));
const eos = [cfg.vocabSize + 1]; // never produced: run the full length

async function generator(quantize: boolean) {
  const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, { quantize });
  return Generator.create(fw, invFreqOf(cfg), { maxPositions: 80, lora: spec, threads: 2 });
}

test('greedy with the KV cache equals full recomputation for 50 tokens', async () => {
  for (const quantize of [false, true]) {
    const gen = await generator(quantize);
    const prompts = [[1, 5, 9, 13], [1, 7]]; // different lengths: exercises left padding
    const cached = await gen.generate({ prompts, maxNewTokens: 50, eosIds: eos, loraScales: [1, 0], adapter });
    const full = await gen.generate({ prompts, maxNewTokens: 50, eosIds: eos, loraScales: [1, 0], adapter, noCache: true });
    assert.equal(cached[0]!.ids.length, 50);
    assert.deepEqual(cached.map((r) => r.ids), full.map((r) => r.ids));
    await gen.release();
  }
});

test('side-by-side batch of two (base, tuned) equals two separate runs, and the adapter changes the output', async () => {
  const gen = await generator(false);
  const prompt = [1, 4, 8, 15, 16, 23];
  const both = await gen.generate({ prompts: [prompt, prompt], maxNewTokens: 30, eosIds: eos, loraScales: [0, 1], adapter });
  const base = await gen.generate({ prompts: [prompt], maxNewTokens: 30, eosIds: eos, loraScales: [0], adapter });
  const tuned = await gen.generate({ prompts: [prompt], maxNewTokens: 30, eosIds: eos, loraScales: [1], adapter });
  assert.deepEqual(both[0]!.ids, base[0]!.ids);
  assert.deepEqual(both[1]!.ids, tuned[0]!.ids);
  assert.notDeepEqual(base[0]!.ids, tuned[0]!.ids, 'a non-zero adapter should change greedy output');
  await gen.release();
});

test('sampling is reproducible with a seed and stops on EOS', async () => {
  const gen = await generator(false);
  const sampling = { temperature: 0.8, topK: 20, topP: 0.9, repetitionPenalty: 1.1, seed: 42 };
  const a = await gen.generate({ prompts: [[1, 2, 3]], maxNewTokens: 20, eosIds: eos, sampling, loraScales: [0] });
  const b = await gen.generate({ prompts: [[1, 2, 3]], maxNewTokens: 20, eosIds: eos, sampling, loraScales: [0] });
  assert.deepEqual(a[0]!.ids, b[0]!.ids);
  const stopAt = a[0]!.ids[5]!;
  const c = await gen.generate({ prompts: [[1, 2, 3]], maxNewTokens: 20, eosIds: [stopAt], sampling, loraScales: [0] });
  assert.equal(c[0]!.finish, 'eos');
  assert.ok(c[0]!.ids.length <= 5);
  await gen.release();
});
