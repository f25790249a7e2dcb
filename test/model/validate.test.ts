// config.json against the weights, at load: each kind of mismatch names the tensor and the config
// field (the case: a wrong hidden_size used to surface as a byte count in graph building).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelConfig } from '../../src-main/model/config.js';
import { loadModel } from '../../src-main/model/load.js';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { writeSyntheticCheckpoint, type SyntheticCheckpointOptions } from '../../src-main/synthetic/checkpoint.js';
import { ConfigWeightsMismatchError, checkWeightsMatchConfig, expectedWeights } from '../../src-main/model/validate.js';
import { tempDir } from '../helpers/fixtures.js';

/** A synthetic checkpoint whose config.json is then edited by `edit`. */
function mismatched(opts: SyntheticCheckpointOptions, edit: Record<string, unknown>): string {
  const dir = writeSyntheticCheckpoint(join(tempDir('finch-validate-'), 'model'), { hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: 512, ...opts }).dir;
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...edit }));
  return dir;
}

function loadError(dir: string): string {
  try {
    loadModel(dir).close();
  } catch (e) {
    assert.ok(e instanceof ConfigWeightsMismatchError, String((e as Error).stack));
    assert.ok(e.message.startsWith(`${join(dir, 'config.json')} does not match the weights in ${dir}`), e.message);
    return e.message;
  }
  return assert.fail('the folder loaded');
}

test('a wrong hidden_size names model.embed_tokens.weight, both shapes, and hidden_size with the value the weights have', () => {
  const msg = loadError(mismatched({}, { hidden_size: 128 }));
  assert.match(msg, /tensor model\.embed_tokens\.weight is \[\d+, 64\], but the config gives \[\d+, 128\] \(vocab_size by hidden_size\): hidden_size does not match the weights \(they were made with hidden_size 64\)/);
});

test('layer count, key/value heads, intermediate size, an untied head and biases are each named', () => {
  assert.match(loadError(mismatched({}, { num_hidden_layers: 3 })), /num_hidden_layers is 3 but the weights hold 2 layers .*set num_hidden_layers to 2/);
  assert.match(loadError(mismatched({}, { num_key_value_heads: 2 })),
    /tensor model\.layers\.0\.self_attn\.k_proj\.weight is \[64, 64\], but the config gives \[32, 64\] \(num_key_value_heads × head_dim by hidden_size\): num_key_value_heads × head_dim does not match the weights \(they were made with num_key_value_heads × head_dim = 64\)/);
  assert.match(loadError(mismatched({}, { intermediate_size: 100 })), /tensor model\.layers\.0\.mlp\.gate_proj\.weight is \[128, 64\].*intermediate_size does not match the weights \(they were made with intermediate_size 128\)/);
  assert.match(loadError(mismatched({ tieWordEmbeddings: true }, { tie_word_embeddings: false })), /tensor lm_head\.weight is missing: tie_word_embeddings is false \(set it to true if the model shares its embedding matrix\)/);
  assert.match(loadError(mismatched({ attentionBias: true }, { attention_bias: false })), /tensor model\.layers\.0\.self_attn\.[kqvo]_proj\.bias is in the weights, but attention_bias is false/);
  assert.match(loadError(mismatched({}, { attention_bias: true })), /tensor model\.layers\.0\.self_attn\.q_proj\.bias is missing: attention_bias is true/);
});

test('matching folders pass for every family, GQA, tied, sharded and biased layouts', () => {
  const variants: SyntheticCheckpointOptions[] = [
    {}, { numKvHeads: 2 }, { tieWordEmbeddings: true }, { sharded: true }, { modelType: 'qwen2' }, { modelType: 'mistral' }, { headDim: 32 },
  ];
  for (const v of variants) {
    const dir = writeSyntheticCheckpoint(join(tempDir('finch-validate-'), 'model'), { hiddenSize: 64, numLayers: 2, numHeads: 4, vocabSize: 400, ...v }).dir;
    const ckpt = Checkpoint.open(dir);
    try {
      checkWeightsMatchConfig(loadModelConfig(dir), ckpt, 'config.json');
      assert.equal(ckpt.tensors().length, expectedWeights(loadModelConfig(dir)).length, JSON.stringify(v));
    } finally {
      ckpt.close();
    }
  }
});

test('a tokenizer with more ids than the embedding has rows is refused; fewer is fine (padded vocabularies)', () => {
  const dir = writeSyntheticCheckpoint(join(tempDir('finch-validate-'), 'model'), { hiddenSize: 32, numLayers: 1, numHeads: 2, vocabSize: 300 }).dir;
  const cfg = loadModelConfig(dir);
  const ckpt = Checkpoint.open(dir);
  try {
    checkWeightsMatchConfig(cfg, ckpt, 'config.json', cfg.vocabSize - 10);
    assert.throws(() => checkWeightsMatchConfig(cfg, ckpt, 'config.json', cfg.vocabSize + 1),
      new RegExp(`the tokenizer has ${cfg.vocabSize + 1} token ids but vocab_size is ${cfg.vocabSize}`));
  } finally {
    ckpt.close();
  }
});

test('a missing layer tensor says why the config needs it; pre-quantized (GPTQ/AWQ) weights are named as such', () => {
  const dir = writeSyntheticCheckpoint(join(tempDir('finch-validate-'), 'model'), { hiddenSize: 32, numLayers: 2, numHeads: 2, vocabSize: 300 }).dir;
  const cfg = loadModelConfig(dir);
  const all = expectedWeights(cfg).map((w) => ({ name: w.name, shape: w.shape }));
  const without = (name: string) => ({ source: 'w.safetensors', tensors: () => all.filter((t) => t.name !== name) });
  assert.throws(() => checkWeightsMatchConfig(cfg, without('model.layers.1.mlp.up_proj.weight'), 'config.json'),
    /tensor model\.layers\.1\.mlp\.up_proj\.weight is missing: num_hidden_layers is 2 and every layer has one/);
  assert.throws(() => checkWeightsMatchConfig(cfg, without('model.norm.weight'), 'config.json'), /model\.norm\.weight is missing: every llama checkpoint has one/);
  const gptq = all.map((t) => (t.name.endsWith('q_proj.weight') ? { name: t.name.replace(/weight$/, 'qweight'), shape: [4, 32] } : t));
  assert.throws(() => checkWeightsMatchConfig(cfg, { source: 'w.safetensors', tensors: () => gptq }, 'config.json'), /pre-quantized \(model\.layers\.0\.self_attn\.q_proj\.qweight: GPTQ\/AWQ/);
});
