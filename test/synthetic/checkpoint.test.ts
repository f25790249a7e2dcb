// Synthetic checkpoints: HF weight names and shapes per family, init statistics, dtypes, shards
// (read back by an independent python reader), determinism.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelConfig } from '../../src-main/model/config.js';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { loadTokenizer } from '../../src-main/model/tokenizer.js';
import { runPythonScript, tempDir } from '../model/model-helpers.js';

const root = tempDir();

function std(v: Float32Array, mean = 0): number {
  let s = 0;
  for (const x of v) s += (x - mean) ** 2;
  return Math.sqrt(s / v.length);
}

test('llama with GQA: exact HF names and [out, in] shapes; vocab = tokenizer size; init like HF', () => {
  const r = writeSyntheticCheckpoint(join(root, 'gqa'), {
    hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 48, vocabSize: 400, biasStd: 0,
  });
  const ck = Checkpoint.open(r.dir);
  const shapes = Object.fromEntries(ck.tensors().map((t) => [t.name, t.shape]));
  const V = r.tokenizer.vocabSize;
  const expected: Record<string, number[]> = {
    'model.embed_tokens.weight': [V, 32],
    'model.norm.weight': [32],
    'lm_head.weight': [V, 32],
  };
  for (const l of [0, 1]) {
    Object.assign(expected, {
      [`model.layers.${l}.self_attn.q_proj.weight`]: [32, 32],
      [`model.layers.${l}.self_attn.k_proj.weight`]: [16, 32],
      [`model.layers.${l}.self_attn.v_proj.weight`]: [16, 32],
      [`model.layers.${l}.self_attn.o_proj.weight`]: [32, 32],
      [`model.layers.${l}.mlp.gate_proj.weight`]: [48, 32],
      [`model.layers.${l}.mlp.up_proj.weight`]: [48, 32],
      [`model.layers.${l}.mlp.down_proj.weight`]: [32, 48],
      [`model.layers.${l}.input_layernorm.weight`]: [32],
      [`model.layers.${l}.post_attention_layernorm.weight`]: [32],
    });
  }
  assert.deepEqual(shapes, expected);
  assert.equal(r.numParams, Object.values(expected).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0));
  assert.equal(ck.info('lm_head.weight').dtype, 'F32');
  assert.deepEqual(ck.metadata, { format: 'pt' });

  const cfg = loadModelConfig(r.dir);
  assert.deepEqual(cfg, r.config);
  assert.equal(cfg.vocabSize, V);
  assert.equal(V, loadTokenizer(r.dir).vocabSize);
  assert.equal(V, 400);
  assert.deepEqual([cfg.numKvHeads, cfg.headDim, cfg.ropeTheta, cfg.ropeScaling, cfg.tieWordEmbeddings], [2, 8, 500000, null, false]);

  const emb = ck.readTensor('model.embed_tokens.weight');
  assert.ok(Math.abs(std(emb) - 0.02) < 0.002, `embedding std ${std(emb)}`);
  const q = ck.readTensor('model.layers.1.self_attn.q_proj.weight');
  assert.ok(Math.abs(std(q) - 0.02) < 0.003, `q_proj std ${std(q)}`);
  assert.ok(ck.readTensor('model.norm.weight').every((x) => x === 1), 'norms are 1');
  // Different tensors get different streams.
  assert.notDeepEqual(ck.readTensor('model.layers.0.mlp.up_proj.weight'), ck.readTensor('model.layers.0.mlp.gate_proj.weight'));
  ck.close();
});

test('qwen2: q/k/v biases, tied embeddings (no lm_head), bf16, sharded; python reads the same values', () => {
  const r = writeSyntheticCheckpoint(join(root, 'qwen'), {
    modelType: 'qwen2', hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 1, vocabSize: 400,
    tieWordEmbeddings: true, dtype: 'bfloat16', sharded: true,
  });
  assert.deepEqual(readdirSync(r.dir).filter((f) => f.includes('safetensors')).sort(), [
    'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json',
  ]);
  const ck = Checkpoint.open(r.dir);
  const names = ck.names();
  assert.ok(!names.includes('lm_head.weight'), 'tied: no lm_head');
  for (const p of ['q', 'k', 'v']) {
    assert.deepEqual(ck.info(`model.layers.0.self_attn.${p}_proj.bias`).shape, [p === 'q' ? 32 : 8]);
  }
  assert.ok(!names.includes('model.layers.0.self_attn.o_proj.bias'), 'qwen2 has no o_proj bias');
  assert.ok(ck.tensors().every((t) => t.dtype === 'BF16'), 'all bf16');
  const shards = new Set(ck.tensors().map((t) => t.file));
  assert.equal(shards.size, 2);
  const bias = ck.readTensor('model.layers.1.self_attn.k_proj.bias');
  assert.ok(bias.some((x) => x !== 0), 'biases are non-zero by default (biasStd 0.02)');

  const cfgJson = JSON.parse(readFileSync(join(r.dir, 'config.json'), 'utf8'));
  assert.deepEqual([cfgJson.torch_dtype, cfgJson.tie_word_embeddings, cfgJson.model_type, cfgJson.architectures[0]], ['bfloat16', true, 'qwen2', 'Qwen2ForCausalLM']);
  assert.deepEqual([r.config.attentionBias, r.config.attentionOutputBias, r.config.tieWordEmbeddings], [true, false, true]);

  runPythonScript('oracle_safetensors.py', ['stats', r.dir, join(r.dir, 'stats.json')]);
  const stats = JSON.parse(readFileSync(join(r.dir, 'stats.json'), 'utf8')) as Record<string, { dtype: string; shape: number[]; sum: number; sumsq: number }>;
  assert.deepEqual(Object.keys(stats).sort(), names);
  for (const n of names) {
    const v = ck.readTensor(n);
    let s = 0, s2 = 0;
    for (const x of v) { s += x; s2 += x * x; }
    assert.equal(stats[n]!.dtype, 'BF16');
    assert.deepEqual(stats[n]!.shape, ck.info(n).shape);
    assert.ok(Math.abs(s - stats[n]!.sum) <= 1e-9 * Math.max(1, Math.abs(s)), `${n}: sum ${s} vs python ${stats[n]!.sum}`);
    assert.ok(Math.abs(s2 - stats[n]!.sumsq) <= 1e-9 * Math.max(1, s2), `${n}: sumsq ${s2} vs python ${stats[n]!.sumsq}`);
  }
  ck.close();

  // Sharding does not change the values: each tensor has its own name-seeded stream.
  const single = writeSyntheticCheckpoint(join(root, 'qwen-single'), {
    modelType: 'qwen2', hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 1, vocabSize: 400, tieWordEmbeddings: true, dtype: 'bfloat16',
  });
  const a = Checkpoint.open(r.dir), b = Checkpoint.open(single.dir);
  for (const n of names) assert.deepEqual(a.readTensor(n), b.readTensor(n), n);
  a.close();
  b.close();
});

test('mistral + llama3 rope scaling + f16: config round-trips through loadModelConfig', () => {
  const r = writeSyntheticCheckpoint(join(root, 'mistral'), {
    modelType: 'mistral', hiddenSize: 32, numHeads: 2, numLayers: 1, slidingWindow: 8, ropeScaling: 'llama3', dtype: 'float16', vocabSize: 400,
  });
  assert.equal(r.config.slidingWindow, 8);
  assert.deepEqual(r.config.ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(r.config.ropeTheta, 10000);
  assert.equal(r.config.torchDtype, 'float16');
  assert.deepEqual([r.config.bosTokenId, r.config.eosTokenIds], [1, [2]]);
  const ck = Checkpoint.open(r.dir);
  assert.equal(ck.info('model.embed_tokens.weight').dtype, 'F16');
  ck.close();
  const gen = JSON.parse(readFileSync(join(r.dir, 'generation_config.json'), 'utf8'));
  assert.deepEqual(gen, { bos_token_id: 1, eos_token_id: [2] });
});

test('deterministic: same options give identical files; another seed changes weights only', () => {
  const opts = { hiddenSize: 16, numLayers: 1, numHeads: 2, vocabSize: 300, normJitter: 0.1 };
  const a = writeSyntheticCheckpoint(join(root, 'det-a'), opts);
  const b = writeSyntheticCheckpoint(join(root, 'det-b'), opts);
  const c = writeSyntheticCheckpoint(join(root, 'det-c'), { ...opts, seed: 1 });
  for (const f of readdirSync(a.dir)) {
    assert.deepEqual(readFileSync(join(b.dir, f)), readFileSync(join(a.dir, f)), `${f} differs between identical runs`);
  }
  assert.deepEqual(readFileSync(join(c.dir, 'tokenizer.json')), readFileSync(join(a.dir, 'tokenizer.json')));
  assert.notDeepEqual(readFileSync(join(c.dir, 'model.safetensors')), readFileSync(join(a.dir, 'model.safetensors')));
  const norm = Checkpoint.open(a.dir).readTensor('model.norm.weight');
  assert.ok(norm.some((x) => x !== 1) && Math.abs(std(norm, 1) - 0.1) < 0.05, `normJitter gives norms around 1 (std ${std(norm, 1)})`);
  // Rewriting a folder as unsharded removes stale shards.
  writeSyntheticCheckpoint(join(root, 'det-a'), { ...opts, sharded: true });
  writeSyntheticCheckpoint(join(root, 'det-a'), opts);
  assert.deepEqual(readdirSync(a.dir).filter((f) => f.includes('safetensors')), ['model.safetensors']);
});
