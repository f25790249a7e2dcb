// config.json normalisation for each family (with the real models' values), EOS merging with
// generation_config.json, every error case, and RoPE inverse frequencies (Llama 3.1 scaling
// included) against an independent float32 PyTorch implementation of transformers' formula.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONFIG_LIMITS, DERIVED_LIMITS, ModelConfigError, loadModelConfig, parameterCount, parseModelConfig, ropeInvFreq } from '../../src-main/model/config.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { runPythonScript, tempDir } from './model-helpers.js';

const dir = tempDir();

function folder(name: string, config: unknown, generation?: unknown): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  if (generation !== undefined) writeFileSync(join(d, 'generation_config.json'), JSON.stringify(generation));
  return d;
}

const LLAMA31_8B = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0, bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009], hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02,
  intermediate_size: 14336, max_position_embeddings: 131072, mlp_bias: false, model_type: 'llama',
  num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 128256,
};
const LLAMA32_1B = {
  ...LLAMA31_8B, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, head_dim: 64, tie_word_embeddings: true,
  eos_token_id: 128001,
  rope_scaling: { factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, type: 'llama3' },
};
const LLAMA2_7B = {
  architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096,
  initializer_range: 0.02, intermediate_size: 11008, max_position_embeddings: 4096, model_type: 'llama',
  num_attention_heads: 32, num_hidden_layers: 32, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null,
  tie_word_embeddings: false, torch_dtype: 'float16', vocab_size: 32000,
};
const MISTRAL_7B_V01 = {
  architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096,
  initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 32768, model_type: 'mistral',
  num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0,
  sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32000,
};
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu',
  hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21,
  model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false,
  vocab_size: 151936,
};
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 576,
  intermediate_size: 1536, max_position_embeddings: 8192, model_type: 'llama', num_attention_heads: 9, num_hidden_layers: 30,
  num_key_value_heads: 3, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 49152,
};

test('Llama 3.1: llama3 rope scaling, GQA, eos union with generation_config (its order first)', () => {
  const d = folder('llama31', LLAMA31_8B, { bos_token_id: 128000, eos_token_id: [128009, 128001], do_sample: true });
  const c = loadModelConfig(d);
  const expected: ModelConfig = {
    modelType: 'llama', vocabSize: 128256, hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32,
    numKvHeads: 8, headDim: 128, rmsNormEps: 1e-5, ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    maxPositionEmbeddings: 131072, tieWordEmbeddings: false, attentionBias: false, attentionOutputBias: false, mlpBias: false,
    slidingWindow: null, bosTokenId: 128000, eosTokenIds: [128009, 128001, 128008], torchDtype: 'bfloat16',
    localRopeTheta: null, rotaryDim: 128, hiddenAct: 'silu', layerTypes: Array(32).fill('full'), queryPreAttnScalar: null,
    finalLogitSoftcap: null, textModelOf: null,
  };
  assert.deepEqual(c, expected);
});

test('Llama 3.2: tied embeddings, explicit head_dim, rope_scaling with "type", single eos int', () => {
  const c = parseModelConfig(LLAMA32_1B);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.headDim, 64);
  assert.equal(c.ropeScaling?.type === 'llama3' && c.ropeScaling.factor, 32);
  assert.deepEqual(c.eosTokenIds, [128001]);
});

test('Llama 2: defaults (kv heads = heads, head_dim, rope_theta 10000, no scaling)', () => {
  const c = parseModelConfig(LLAMA2_7B);
  assert.equal(c.numKvHeads, 32);
  assert.equal(c.headDim, 128);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeScaling, null);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.equal(c.bosTokenId, 1);
  assert.equal(c.torchDtype, 'float16');
  // A sparse config gets transformers' LlamaConfig defaults.
  const sparse = parseModelConfig({ model_type: 'llama', vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4 });
  assert.equal(sparse.rmsNormEps, 1e-6);
  assert.equal(sparse.maxPositionEmbeddings, 2048);
  assert.equal(sparse.tieWordEmbeddings, false);
  assert.equal(sparse.bosTokenId, null);
  assert.deepEqual(sparse.eosTokenIds, []);
  assert.equal(sparse.torchDtype, 'float32');
  // Llama's attention_bias covers o_proj too; mlp_bias is passed on.
  const biased = parseModelConfig({ ...LLAMA2_7B, attention_bias: true, mlp_bias: true });
  assert.deepEqual([biased.attentionBias, biased.attentionOutputBias, biased.mlpBias], [true, true, true]);
  // rope_scaling "default" means none.
  assert.equal(parseModelConfig({ ...LLAMA2_7B, rope_scaling: { rope_type: 'default' } }).ropeScaling, null);
});

test('SmolLM2 is a llama: tied, GQA 9/3', () => {
  const c = parseModelConfig(SMOLLM2_135M);
  assert.deepEqual([c.modelType, c.numHeads, c.numKvHeads, c.headDim, c.tieWordEmbeddings, c.ropeTheta], ['llama', 9, 3, 64, true, 100000]);
});

test('Mistral: sliding_window kept, null means full attention, absent means the 4096 default', () => {
  assert.equal(parseModelConfig(MISTRAL_7B_V01).slidingWindow, 4096);
  assert.equal(parseModelConfig({ ...MISTRAL_7B_V01, sliding_window: null }).slidingWindow, null);
  const { sliding_window: _sw, ...noWindow } = MISTRAL_7B_V01;
  assert.equal(parseModelConfig(noWindow).slidingWindow, 4096);
  // Mistral NeMo: head_dim 128 although hidden 5120 / 32 heads = 160.
  const nemo = parseModelConfig({ ...MISTRAL_7B_V01, hidden_size: 5120, head_dim: 128, sliding_window: null });
  assert.equal(nemo.headDim, 128);
  assert.equal(parseModelConfig(MISTRAL_7B_V01).attentionBias, false);
});

test('Qwen2: q/k/v bias by default, none on o_proj, no sliding window when use_sliding_window is false', () => {
  const c = parseModelConfig(QWEN25_05B);
  assert.deepEqual([c.attentionBias, c.attentionOutputBias, c.mlpBias], [true, false, false]);
  assert.equal(c.slidingWindow, null);
  assert.equal(c.headDim, 64);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.ropeTheta, 1000000);
});

test('Qwen2 with use_sliding_window: the layers from max_window_layers on slide', () => {
  const c = parseModelConfig({ ...QWEN25_05B, use_sliding_window: true });
  assert.equal(c.slidingWindow, 32768);
  assert.deepEqual(c.layerTypes, [...Array(21).fill('full'), ...Array(3).fill('sliding')]);
  assert.deepEqual(parseModelConfig(QWEN25_05B).layerTypes, Array(24).fill('full'));
});

test('transformers v5 rope_parameters are read (theta and llama3 scaling)', () => {
  const { rope_theta: _t, rope_scaling: _s, ...rest } = LLAMA31_8B;
  const c = parseModelConfig({
    ...rest,
    rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  });
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.ropeScaling?.type === 'llama3' && c.ropeScaling.originalMaxPositionEmbeddings, 8192);
  assert.equal(parseModelConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 12345 } }).ropeScaling, null);
  assert.equal(parseModelConfig({ ...rest, rope_parameters: { rope_type: 'default', rope_theta: 12345 } }).ropeTheta, 12345);
});

test('errors name config.json and say what is wrong', () => {
  const missing = join(dir, 'no-config');
  mkdirSync(missing);
  assert.throws(() => loadModelConfig(missing), (e: Error) => e instanceof ModelConfigError && e.message.includes(join(missing, 'config.json')) && /not found/.test(e.message));
  const bad = folder('bad-json', '{"model_type": "llama",');
  assert.throws(() => loadModelConfig(bad), new RegExp(`${join(bad, 'config.json')}: invalid JSON`));
  const gpt2 = folder('gpt2', { model_type: 'gpt2', n_embd: 768 });
  assert.throws(
    () => loadModelConfig(gpt2),
    (e: Error) => e.message.startsWith(join(gpt2, 'config.json')) && /model_type "gpt2" is not supported; Finch supports llama, mistral, qwen2, qwen3, gemma3_text, phi3 and gemma3 \(.*Qwen3, Gemma 3, Phi-3\/3.5, Phi-4-mini\)/.test(e.message),
  );
  assert.throws(() => parseModelConfig({ ...LLAMA2_7B, model_type: undefined }), /model_type undefined is not supported/);
  assert.throws(() => parseModelConfig({ ...LLAMA2_7B, rope_scaling: { type: 'yarn', factor: 4 } }), /config.json: rope_scaling type "yarn" is not supported/);
  assert.throws(() => parseModelConfig({ ...LLAMA31_8B, rope_scaling: { rope_type: 'llama3', factor: 8 } }), /rope_scaling.low_freq_factor must be a positive number/);
  const { hidden_size: _h, ...noHidden } = LLAMA2_7B;
  assert.throws(() => parseModelConfig(noHidden), /missing required field "hidden_size"/);
  assert.throws(() => parseModelConfig({ ...LLAMA2_7B, num_key_value_heads: 5 }), /multiple of num_key_value_heads \(5\)/);
  assert.throws(() => parseModelConfig({ ...LLAMA2_7B, hidden_act: 'gelu' }), /hidden_act "gelu" is not supported/);
  assert.throws(() => parseModelConfig({ ...LLAMA2_7B, vocab_size: '32000' }), /"vocab_size" must be a positive integer/);
  const badGen = folder('bad-gen', LLAMA2_7B);
  writeFileSync(join(badGen, 'generation_config.json'), '{');
  assert.throws(() => loadModelConfig(badGen), /generation_config.json: invalid JSON/);
});

test('ropeInvFreq matches transformers\' formula computed in float32 PyTorch', () => {
  const cases = [
    { head_dim: 128, rope_theta: 500000, rope_scaling: LLAMA31_8B.rope_scaling }, // Llama 3.1 8B
    { head_dim: 64, rope_theta: 500000, rope_scaling: LLAMA32_1B.rope_scaling }, // Llama 3.2 1B (factor 32)
    { head_dim: 128, rope_theta: 10000, rope_scaling: null }, // Llama 2
    { head_dim: 64, rope_theta: 1000000, rope_scaling: null }, // Qwen2.5
    { head_dim: 16, rope_theta: 500000, rope_scaling: { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } },
  ];
  const inPath = join(dir, 'rope-in.json'), outPath = join(dir, 'rope-out.json');
  writeFileSync(inPath, JSON.stringify(cases));
  runPythonScript('oracle_rope.py', [inPath, outPath]);
  const expected = JSON.parse(readFileSync(outPath, 'utf8')) as number[][];
  cases.forEach((c, k) => {
    const rs = c.rope_scaling;
    const ours = ropeInvFreq({
      headDim: c.head_dim,
      ropeTheta: c.rope_theta,
      ropeScaling: rs && { type: 'llama3', factor: rs.factor, lowFreqFactor: rs.low_freq_factor, highFreqFactor: rs.high_freq_factor, originalMaxPositionEmbeddings: rs.original_max_position_embeddings },
    });
    const want = expected[k]!;
    assert.equal(ours.length, c.head_dim / 2);
    for (let i = 0; i < want.length; i++) {
      // float32 ulp is 6e-8 relative; powf may differ from fround(pow) by an ulp or two.
      const rel = Math.abs(ours[i]! - want[i]!) / want[i]!;
      assert.ok(rel <= 3e-7, `case ${k} (${JSON.stringify(c)}) inv_freq[${i}]: ${ours[i]} vs torch ${want[i]} (rel ${rel.toExponential(2)})`);
    }
  });
  // The Llama 3.1 case covers all three bands: kept, interpolated, divided by the factor.
  const base = ropeInvFreq({ headDim: 128, ropeTheta: 500000, ropeScaling: null });
  const scaled = ropeInvFreq({ headDim: 128, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } });
  const ratios = [...scaled].map((v, i) => base[i]! / v);
  assert.equal(ratios[0], 1);
  assert.ok(Math.abs(ratios[63]! - 8) < 1e-5, `lowest frequency divided by ${ratios[63]}, expected 8`);
  assert.ok(ratios.some((r) => r > 1.01 && r < 7.99), 'some frequencies are interpolated');
});

// The new families, with their released models' config.json values.
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
  hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28,
  model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
  rope_theta: 1000000, sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: 151936,
};
const GEMMA3_1B = {
  architectures: ['Gemma3ForCausalLM'], attention_bias: false, attention_dropout: 0, attn_logit_softcapping: null, bos_token_id: 2,
  cache_implementation: 'hybrid', eos_token_id: [1, 106], final_logit_softcapping: null, head_dim: 256, hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 1152, initializer_range: 0.02, intermediate_size: 6912, max_position_embeddings: 32768, model_type: 'gemma3_text',
  num_attention_heads: 4, num_hidden_layers: 26, num_key_value_heads: 1, pad_token_id: 0, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000, rope_scaling: null, rope_theta: 1000000, sliding_window: 512, sliding_window_pattern: 6, torch_dtype: 'bfloat16', vocab_size: 262144,
};
const GEMMA3_4B_MULTIMODAL = {
  architectures: ['Gemma3ForConditionalGeneration'], boi_token_index: 255999, eoi_token_index: 256000, eos_token_id: [1, 106], image_token_index: 262144,
  initializer_range: 0.02, mm_tokens_per_image: 256, model_type: 'gemma3', torch_dtype: 'bfloat16',
  text_config: { hidden_size: 2560, intermediate_size: 10240, model_type: 'gemma3_text', num_hidden_layers: 34, rope_scaling: { factor: 8.0, rope_type: 'linear' }, sliding_window: 1024 },
  vision_config: { hidden_size: 1152, image_size: 896, intermediate_size: 4304, model_type: 'siglip_vision_model', num_attention_heads: 16, num_hidden_layers: 27, patch_size: 14, vision_use_head: false },
};
const PHI3_MINI_4K = {
  architectures: ['Phi3ForCausalLM'], attention_bias: false, attention_dropout: 0, bos_token_id: 1, embd_pdrop: 0, eos_token_id: 32000, hidden_act: 'silu',
  hidden_size: 3072, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 4096, model_type: 'phi3', num_attention_heads: 32,
  num_hidden_layers: 32, num_key_value_heads: 32, original_max_position_embeddings: 4096, pad_token_id: 32000, resid_pdrop: 0, rms_norm_eps: 1e-5,
  rope_scaling: null, rope_theta: 10000, sliding_window: 2047, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32064,
};
const longFactors = (n: number, base: number) => Array.from({ length: n }, (_, i) => base + i / 10);
const PHI4_MINI = {
  architectures: ['Phi3ForCausalLM'], bos_token_id: 199999, eos_token_id: 199999, full_attn_mod: 1, hidden_act: 'silu', hidden_size: 3072,
  intermediate_size: 8192, interpolate_factor: 1, lm_head_bias: false, max_position_embeddings: 131072, mlp_bias: false, model_type: 'phi3',
  num_attention_heads: 24, num_hidden_layers: 32, num_key_value_heads: 8, original_max_position_embeddings: 4096, pad_token_id: 199999,
  partial_rotary_factor: 0.75, resid_pdrop: 0, rms_norm_eps: 1e-5,
  rope_scaling: { long_factor: longFactors(48, 1.5), short_factor: longFactors(48, 1), type: 'longrope' },
  rope_theta: 10000, sliding_window: 262144, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 200064,
};

test('Qwen3: explicit head_dim (128 > 1024/16), no biases by default, tied, full attention', () => {
  const c = parseModelConfig(QWEN3_06B);
  assert.deepEqual([c.modelType, c.headDim, c.rotaryDim, c.numKvHeads, c.tieWordEmbeddings, c.ropeTheta], ['qwen3', 128, 128, 8, true, 1000000]);
  assert.deepEqual([c.attentionBias, c.attentionOutputBias, c.slidingWindow, c.hiddenAct], [false, false, null, 'silu']);
  assert.deepEqual(c.layerTypes, Array(28).fill('full'));
  // attention_bias puts a bias on all four projections (Qwen3Attention), unlike Qwen2's q/k/v only.
  const biased = parseModelConfig({ ...QWEN3_06B, attention_bias: true });
  assert.deepEqual([biased.attentionBias, biased.attentionOutputBias], [true, true]);
});

test('Gemma 3 1B: GELU, every 6th layer full, local RoPE base, query_pre_attn_scalar, eos list', () => {
  const c = parseModelConfig(GEMMA3_1B);
  assert.deepEqual([c.modelType, c.hiddenAct, c.headDim, c.numHeads, c.numKvHeads, c.tieWordEmbeddings], ['gemma3_text', 'gelu_tanh', 256, 4, 1, true]);
  assert.deepEqual([c.slidingWindow, c.ropeTheta, c.localRopeTheta, c.ropeScaling, c.queryPreAttnScalar, c.finalLogitSoftcap], [512, 1000000, 10000, null, 256, null]);
  assert.deepEqual(c.layerTypes.map((t, i) => (t === 'full' ? i : -1)).filter((i) => i >= 0), [5, 11, 17, 23]);
  assert.deepEqual(c.eosTokenIds, [1, 106]);
  // transformers v5's spelling: layer_types and rope_parameters per layer type.
  const { rope_theta: _t, rope_local_base_freq: _l, rope_scaling: _s, sliding_window_pattern: _p, ...rest } = GEMMA3_1B;
  const v5 = parseModelConfig({
    ...rest, layer_types: Array.from({ length: 26 }, (_, i) => ((i + 1) % 6 ? 'sliding_attention' : 'full_attention')),
    rope_parameters: { full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1000000 }, sliding_attention: { rope_type: 'default', rope_theta: 10000 } },
  });
  assert.deepEqual(v5.layerTypes, c.layerTypes);
  assert.deepEqual([v5.ropeTheta, v5.localRopeTheta, v5.ropeScaling], [1000000, 10000, { type: 'linear', factor: 8 }]);
  assert.throws(() => parseModelConfig({ ...GEMMA3_1B, hidden_activation: 'gelu' }), /hidden_activation "gelu" is not supported \(Gemma 3 uses "gelu_pytorch_tanh"\)/);
  assert.throws(() => parseModelConfig({ ...GEMMA3_1B, use_bidirectional_attention: true }), /use_bidirectional_attention: true \(an embedding model\) is not supported/);
  assert.throws(() => parseModelConfig({ ...GEMMA3_1B, layer_types: ['sliding_attention'] }), /"layer_types" must list 26 layers/);
});

test('Gemma 3 4B (multimodal): the text model with Gemma3TextConfig\'s defaults, linear scaling on the full layers', () => {
  const c = parseModelConfig(GEMMA3_4B_MULTIMODAL);
  assert.equal(c.modelType, 'gemma3_text');
  assert.equal(c.textModelOf, 'gemma3');
  assert.deepEqual([c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.vocabSize], [2560, 10240, 34, 8, 4, 256, 262208]);
  assert.deepEqual([c.slidingWindow, c.ropeScaling, c.localRopeTheta, c.tieWordEmbeddings, c.torchDtype], [1024, { type: 'linear', factor: 8 }, 10000, true, 'bfloat16']);
  assert.deepEqual(c.eosTokenIds, [1, 106]);
});

test('Phi-3 mini 4k: no biases, a sliding window of 2047 in every layer; Phi-4-mini: partial rotary, LongRoPE, tied', () => {
  const p3 = parseModelConfig(PHI3_MINI_4K);
  assert.deepEqual([p3.modelType, p3.headDim, p3.rotaryDim, p3.attentionBias, p3.slidingWindow, p3.ropeScaling, p3.rmsNormEps], ['phi3', 96, 96, false, 2047, null, 1e-5]);
  assert.deepEqual(p3.layerTypes, Array(32).fill('sliding'));
  const p4 = parseModelConfig(PHI4_MINI);
  assert.deepEqual([p4.headDim, p4.rotaryDim, p4.numKvHeads, p4.tieWordEmbeddings], [128, 96, 8, true]);
  const rs = p4.ropeScaling;
  assert.ok(rs?.type === 'longrope');
  assert.equal(rs.originalMaxPositionEmbeddings, 4096);
  assert.equal(rs.longFactor.length, 48);
  // transformers' attention factor: sqrt(1 + ln(131072 / 4096) / ln(4096)).
  assert.ok(Math.abs(rs.attentionFactor - Math.sqrt(1 + Math.log(32) / Math.log(4096))) < 1e-12);
  // "su" is LongRoPE's older name; factor lists must cover half the rotated dimensions.
  assert.equal(parseModelConfig({ ...PHI4_MINI, rope_scaling: { ...PHI4_MINI.rope_scaling, type: 'su' } }).ropeScaling?.type, 'longrope');
  assert.throws(() => parseModelConfig({ ...PHI4_MINI, rope_scaling: { ...PHI4_MINI.rope_scaling, short_factor: [1, 2] } }), /rope_scaling.short_factor must list 48 positive numbers/);
  assert.throws(() => parseModelConfig({ ...PHI4_MINI, partial_rotary_factor: 0.7 }), /partial_rotary_factor 0.7 rotates 89 of head_dim 128: the rotated part must be even/);
});

test('LongRoPE: the short factors within the original context, the long ones beyond (as llama.cpp decides by its context)', () => {
  const cfg = parseModelConfig(PHI4_MINI);
  const rs = cfg.ropeScaling!;
  assert.ok(rs.type === 'longrope');
  const plain = ropeInvFreq({ ...cfg, ropeScaling: null });
  const short = ropeInvFreq(cfg, { maxPositions: 4096 }), long = ropeInvFreq(cfg, { maxPositions: 4097 });
  assert.equal(short.length, 48);
  for (let i = 0; i < 48; i++) {
    assert.ok(Math.abs(short[i]! * rs.shortFactor[i]! / plain[i]! - 1) < 1e-6, `short ${i}`);
    assert.ok(Math.abs(long[i]! * rs.longFactor[i]! / plain[i]! - 1) < 1e-6, `long ${i}`);
  }
});

test('sizes are bounded: each field by CONFIG_LIMITS, the embedding and the parameter count by DERIVED_LIMITS; the limits themselves pass', () => {
  const tiny = { model_type: 'llama', vocab_size: 512, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };
  for (const [field, limit] of Object.entries(CONFIG_LIMITS)) {
    if (field === 'sliding_window' || field === 'num_key_value_heads' || field === 'head_dim' || field === 'num_attention_heads') continue; // need consistent head layouts: below
    assert.throws(() => parseModelConfig({ ...tiny, [field]: limit + 1 }), new RegExp(`"${field}" is ${limit + 1}, beyond Finch's limit of ${limit}`));
  }
  assert.throws(() => parseModelConfig({ ...tiny, num_attention_heads: 1025, num_key_value_heads: 1 }), /"num_attention_heads" is 1025/);
  assert.throws(() => parseModelConfig({ ...tiny, head_dim: 2048 }), /"head_dim" is 2048/);
  assert.throws(() => parseModelConfig({ ...MISTRAL_7B_V01, sliding_window: 2 ** 24 + 1 }), /"sliding_window" is 16777217/);
  assert.equal(parseModelConfig({ ...tiny, max_position_embeddings: CONFIG_LIMITS.max_position_embeddings }).maxPositionEmbeddings, 2 ** 24);
  // Within every field's limit, too large together.
  assert.throws(() => parseModelConfig({ ...tiny, vocab_size: 2 ** 21, hidden_size: 2 ** 16 }), /vocab_size × hidden_size = 137438953472 elements is beyond Finch's limit of 4294967296/);
  assert.throws(() => parseModelConfig({ ...tiny, num_attention_heads: 1024, num_key_value_heads: 1024, head_dim: 1024 }), /num_attention_heads × head_dim = 1048576/);
  assert.throws(() => parseModelConfig({ ...tiny, hidden_size: 2 ** 16, intermediate_size: 2 ** 18, num_hidden_layers: 1024, num_attention_heads: 512, num_key_value_heads: 512 }), /trillion parameters, beyond Finch's limit of 2\.2 trillion/);
  // The largest released Llama passes, and the count matches its card (405B).
  const l405 = parseModelConfig({ ...LLAMA31_8B, hidden_size: 16384, intermediate_size: 53248, num_hidden_layers: 126, num_attention_heads: 128 });
  assert.ok(Math.abs(parameterCount(l405) / 1e9 - 405.9) < 0.5, `${parameterCount(l405) / 1e9} B`);
  assert.ok(DERIVED_LIMITS.parameters > parameterCount(l405));
  // Values that are no size say what they are (1e400 parses as Infinity).
  assert.throws(() => parseModelConfig(JSON.parse(JSON.stringify(tiny).replace('"hidden_size":64', '"hidden_size":1e400'))), /"hidden_size" must be a positive integer, got Infinity/);
});

test('config.json that is no regular file, too large or nested too deep is refused naming it', { skip: process.platform === 'win32' }, () => {
  const fifo = join(dir, 'fifo-config');
  mkdirSync(fifo);
  execFileSync('mkfifo', [join(fifo, 'config.json')]);
  assert.throws(() => loadModelConfig(fifo), (e: Error) => e instanceof ModelConfigError && e.message.includes(`${join(fifo, 'config.json')} is a FIFO (named pipe)`));
  const big = folder('big-config', `{"model_type": "llama"${' '.repeat(17 * 2 ** 20)}}`);
  assert.throws(() => loadModelConfig(big), /config\.json is 17\.0 MiB; Finch reads at most 16\.0 MiB of a model config/);
  const deep = folder('deep-config', `{"x": ${'['.repeat(1000)}${']'.repeat(1000)}}`);
  assert.throws(() => loadModelConfig(deep), /config\.json: JSON nested deeper than 64 levels/);
});
