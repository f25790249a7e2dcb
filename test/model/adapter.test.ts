// PEFT adapter folders: Finch's save -> load round trip (names, shapes, values, every config key),
// folders written the way PEFT and tools on it write them (F16/BF16, target_modules as a list, a
// regex or "all-linear", `.default` names), and every way a folder can be unusable, each failing
// with a message that names the file and the tensor or field.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AdapterError, loadPeftAdapter, peftAdapterConfig, savePeftAdapter } from '../../src-main/model/adapter.js';
import { loraParams, type LoraSpec } from '../../src-main/model/lora.js';
import { Checkpoint, f16BitsToF32, f32ToF16Bits, writeSafetensors, type SafetensorsDtype } from '../../src-main/model/safetensors.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { tempDir } from './model-helpers.js';
import { Rng } from '../../src-main/util/random.js';

const root = tempDir('finch-adapter-');
// A small GQA model: q [32, 32], k/v [16, 32], gate/up [48, 32], down [32, 48]; 2 layers.
const cfg: ModelConfig = writeSyntheticCheckpoint(join(root, 'base'), {
  hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 48, numLayers: 2, vocabSize: 300,
}).config;

function randomTensors(spec: LoraSpec, seed: number, c: ModelConfig = cfg): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of loraParams(c, spec)) {
    const r = Rng.forName(seed, p.name);
    out.set(p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => r.normal() * 0.1));
  }
  return out;
}

let n = 0;
const fresh = (name: string) => join(root, `${name}-${++n}`);

/** Writes an adapter folder by hand, as another tool would. */
function writeFolder(dir: string, config: Record<string, unknown>, tensors: { name: string; dtype: SafetensorsDtype; shape: number[]; data: Float32Array | Int32Array }[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
}

/** adapter_config.json as PEFT 0.13 writes it for LoraConfig(r=4, lora_alpha=8, target_modules=[q_proj, v_proj]). */
function peftWrittenConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M', bias: 'none',
    exclude_modules: null, fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layer_replication: null,
    layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: 8, lora_bias: false, lora_dropout: 0.05,
    megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null, peft_type: 'LORA', r: 4,
    rank_pattern: {}, revision: null, target_modules: ['v_proj', 'q_proj'], task_type: 'CAUSAL_LM', use_dora: false,
    use_rslora: false, ...over,
  };
}

const QV: LoraSpec = { rank: 4, alpha: 8, dropout: 0.05, rslora: false, targets: ['q_proj', 'v_proj'] };

/** The tensors of `spec` as a hand-written folder would hold them. */
function folderTensors(spec: LoraSpec, dtype: SafetensorsDtype, rename: (n: string) => string = (x) => x, seed = 1) {
  const values = randomTensors(spec, seed);
  return {
    values,
    tensors: loraParams(cfg, spec).map((p) => ({ name: rename(p.name), dtype, shape: [...p.shape], data: values.get(p.name)! })),
  };
}

function assertAdapterError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AdapterError, `expected AdapterError, got ${String(e)}`);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should include ${JSON.stringify(p)}`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

test('save -> load round trip: PEFT config keys and values, tensor names, shapes, F32 values bit for bit', () => {
  const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0.1, rslora: true, targets: ['gate_proj', 'q_proj', 'k_proj'] };
  const tensors = randomTensors(spec, 7);
  const dir = fresh('rt');
  savePeftAdapter(dir, { spec, baseModel: 'meta-llama/Llama-3.2-1B', tensors, cfg });
  assert.deepEqual(readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('tmp')), [], 'no temporary folder left behind');

  const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.deepEqual(json, {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'meta-llama/Llama-3.2-1B', bias: 'none',
    fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layers_pattern: null, layers_to_transform: null,
    loftq_config: {}, lora_alpha: 8, lora_dropout: 0.1, megatron_config: null, megatron_core: 'megatron.core',
    modules_to_save: null, peft_type: 'LORA', r: 4, rank_pattern: {}, revision: null,
    target_modules: ['q_proj', 'k_proj', 'gate_proj'], task_type: 'CAUSAL_LM', use_rslora: true,
  });
  assert.deepEqual(Object.keys(json), Object.keys(json).sort(), 'keys sorted as PEFT writes them');

  const ck = Checkpoint.open(join(dir, 'adapter_model.safetensors'));
  assert.deepEqual(ck.metadata, { format: 'pt' });
  assert.deepEqual(ck.names(), [
    'base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight',
    'base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight',
    'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight',
    'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight',
    'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
    'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
    'base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight',
    'base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight',
    'base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight',
    'base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight',
    'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight',
    'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight',
  ]);
  const shape = (nm: string) => ck.info(`base_model.model.model.layers.1.${nm}`).shape;
  assert.deepEqual(shape('self_attn.q_proj.lora_A.weight'), [4, 32]); // [r, in]
  assert.deepEqual(shape('self_attn.q_proj.lora_B.weight'), [32, 4]); // [out, r]
  assert.deepEqual(shape('self_attn.k_proj.lora_B.weight'), [16, 4]); // GQA: 2 kv heads x 8
  assert.deepEqual(shape('mlp.gate_proj.lora_B.weight'), [48, 4]);
  assert.ok(ck.tensors().every((t) => t.dtype === 'F32'));
  ck.close();

  const back = loadPeftAdapter(dir, cfg);
  assert.deepEqual(back.spec, { rank: 4, alpha: 8, dropout: 0.1, rslora: true, targets: ['q_proj', 'k_proj', 'gate_proj'] });
  assert.equal(back.baseModel, 'meta-llama/Llama-3.2-1B');
  assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
  for (const [k, v] of tensors) assert.deepEqual(back.tensors.get(k), v, k);
});

test('saving into an existing run folder replaces the adapter and leaves the rest alone', () => {
  const dir = fresh('run');
  mkdirSync(join(dir, 'checkpoints', 'step-10'), { recursive: true });
  writeFileSync(join(dir, 'checkpoints', 'step-10', 'state.json'), '{}');
  savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: randomTensors(QV, 1), cfg });
  const second = randomTensors({ ...QV, rank: 2 }, 2);
  savePeftAdapter(dir, { spec: { ...QV, rank: 2 }, baseModel: 'b', tensors: second, cfg });
  assert.deepEqual(readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors', 'checkpoints']);
  assert.ok(existsSync(join(dir, 'checkpoints', 'step-10', 'state.json')));
  const back = loadPeftAdapter(dir, cfg);
  assert.equal(back.spec.rank, 2);
  for (const [k, v] of second) assert.deepEqual(back.tensors.get(k), v);
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('tmp')), []);
});

test('finch_adapter.json: written beside the PEFT files, read back, replaced or removed with the weights, checked', () => {
  const dir = fresh('finch-info');
  savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: randomTensors(QV, 1), cfg, finch: { template: 'fallback' } });
  assert.deepEqual(readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors', 'finch_adapter.json']);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')), peftAdapterConfig(QV, 'b'));
  assert.deepEqual(loadPeftAdapter(dir, cfg).finch, { template: 'fallback' });
  savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: randomTensors(QV, 2), cfg, finch: { template: 'model' } });
  assert.deepEqual(loadPeftAdapter(dir, cfg).finch, { template: 'model' });
  // New weights without a record must not inherit the old one.
  savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: randomTensors(QV, 3), cfg });
  assert.equal(loadPeftAdapter(dir, cfg).finch, null);
  writeFileSync(join(dir, 'finch_adapter.json'), JSON.stringify({ template: 'alpaca' }));
  assertAdapterError(() => loadPeftAdapter(dir, cfg), 'finch_adapter.json', '"template"', '"alpaca"');
});

test('save refuses tensors that do not match the spec, writing nothing', () => {
  const t = randomTensors(QV, 1);
  const first = [...t.keys()][0]!;
  const missing = new Map(t);
  missing.delete(first);
  const dir = fresh('bad-save');
  assert.throws(() => savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: missing, cfg }), new RegExp(`missing ${first.replace(/\./g, '\\.')}`));
  const extra = new Map(t).set('base_model.model.lm_head.lora_A.weight', new Float32Array(4));
  assert.throws(() => savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: extra, cfg }), /unexpected base_model\.model\.lm_head/);
  const short = new Map(t).set(first, new Float32Array(3));
  assert.throws(() => savePeftAdapter(dir, { spec: QV, baseModel: 'b', tensors: short, cfg }), /has 3 values, \[4, 32\] needs 128/);
  assert.equal(existsSync(dir), false);
});

test('a folder as PEFT writes it (F16 tensors, list target_modules, newer keys) loads', () => {
  const dir = fresh('peft-f16');
  const { values, tensors } = folderTensors(QV, 'F16');
  writeFolder(dir, peftWrittenConfig(), tensors);
  const a = loadPeftAdapter(dir, cfg);
  assert.deepEqual(a.spec, { rank: 4, alpha: 8, dropout: 0.05, rslora: false, targets: ['q_proj', 'v_proj'] });
  assert.equal(a.baseModel, 'HuggingFaceTB/SmolLM2-135M');
  assert.equal(a.tensors.size, 8);
  for (const [k, v] of values) {
    assert.deepEqual(a.tensors.get(k), v.map((x) => f16BitsToF32(f32ToF16Bits(x))), `${k} read back from F16`);
  }
});

// Made by Hugging Face PEFT 0.21 itself (test/oracle/peft_oracle.py make, on the synthetic base
// below): expected.json holds each tensor's shape, sum and first values as PEFT held them.
const FIXTURES = new URL('./fixtures/peft-0.21/', import.meta.url).pathname;
for (const [variant, spec] of [
  ['f32', { rank: 4, alpha: 16, dropout: 0.1, rslora: false, targets: ['q_proj', 'k_proj', 'up_proj'] }],
  ['bf16-all-linear', { rank: 2, alpha: 4, dropout: 0, rslora: true, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }],
] as const) {
  test(`an adapter saved by PEFT 0.21 loads: ${variant}`, () => {
    const a = loadPeftAdapter(join(FIXTURES, variant), cfg);
    assert.deepEqual(a.spec, spec);
    const expected = JSON.parse(readFileSync(join(FIXTURES, variant, 'expected.json'), 'utf8')) as Record<string, { shape: number[]; sum: number; first: number[] }>;
    assert.deepEqual([...a.tensors.keys()].sort(), Object.keys(expected).sort());
    for (const p of loraParams(cfg, a.spec)) {
      const e = expected[p.name]!;
      const v = a.tensors.get(p.name)!;
      assert.deepEqual(p.shape, e.shape, p.name);
      assert.deepEqual(Array.from(v.subarray(0, 4)), e.first, `${p.name} first values`);
      const sum = v.reduce((x, y) => x + y, 0);
      assert.ok(Math.abs(sum - e.sum) < 1e-5, `${p.name} sum ${sum} vs ${e.sum}`);
    }
  });
}

test('target_modules spellings: regex string, all-linear, qualified names, exclude_modules; BF16 and .default names', () => {
  const all: LoraSpec = { ...QV, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
  const cases: [unknown, Record<string, unknown>, LoraSpec['targets']][] = [
    ['.*\\.(q_proj|v_proj)', {}, ['q_proj', 'v_proj']],
    ['model\\.layers\\.\\d+\\.self_attn\\.(?P<p>[qv])_proj', {}, ['q_proj', 'v_proj']],
    ['all-linear', {}, all.targets],
    [['self_attn.q_proj', 'v_proj'], {}, ['q_proj', 'v_proj']],
    [['q_proj', 'v_proj', 'k_proj'], { exclude_modules: ['k_proj'] }, ['q_proj', 'v_proj']],
    [['q_proj', 'v_proj'], { layers_to_transform: [0, 1], rank_pattern: { q_proj: 4 } }, ['q_proj', 'v_proj']],
  ];
  for (const [targetModules, extra, targets] of cases) {
    const spec = { ...QV, targets };
    const dir = fresh('spelling');
    writeFolder(dir, peftWrittenConfig({ target_modules: targetModules, ...extra }), folderTensors(spec, 'BF16').tensors);
    assert.deepEqual(loadPeftAdapter(dir, cfg).spec.targets, targets, JSON.stringify(targetModules));
  }
  // Older PEFT paths kept the adapter name in the tensor names.
  const dir = fresh('default-names');
  const { values, tensors } = folderTensors(QV, 'F32', (nm) => nm.replace(/\.weight$/, '.default.weight'));
  assert.ok(tensors[0]!.name.endsWith('.lora_A.default.weight'));
  writeFolder(dir, peftWrittenConfig(), tensors);
  const a = loadPeftAdapter(dir, cfg);
  for (const [k, v] of values) assert.deepEqual(a.tensors.get(k), v);
  // Sparse configs get PEFT's defaults (r 8, lora_alpha 8, dropout 0).
  const sparse = fresh('sparse');
  writeFolder(sparse, { peft_type: 'LORA', target_modules: ['q_proj'] }, folderTensors({ ...QV, rank: 8, targets: ['q_proj'] }, 'F32').tensors);
  assert.deepEqual(loadPeftAdapter(sparse, cfg).spec, { rank: 8, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj'] });
});

test('peftAdapterConfig lists targets in model order whatever order the spec has', () => {
  const c = peftAdapterConfig({ ...QV, targets: ['down_proj', 'q_proj'] }, 'x');
  assert.deepEqual(c.target_modules, ['q_proj', 'down_proj']);
});

test('folder-level errors: missing folder, full model folder, pickle, no weights, bad JSON', () => {
  assertAdapterError(() => loadPeftAdapter(join(root, 'nope'), cfg), 'adapter folder not found', join(root, 'nope'));
  assertAdapterError(() => loadPeftAdapter(join(root, 'base'), cfg), 'no adapter_config.json', 'is it a full model rather than an adapter?');

  const pickle = fresh('pickle');
  mkdirSync(pickle);
  writeFileSync(join(pickle, 'adapter_config.json'), JSON.stringify(peftWrittenConfig()));
  writeFileSync(join(pickle, 'adapter_model.bin'), 'PK\x03\x04 not really');
  assertAdapterError(() => loadPeftAdapter(pickle, cfg), join(pickle, 'adapter_model.bin'), 'never loads pickle', 'safe_serialization=True', 'adapter_model.safetensors');

  const noWeights = fresh('no-weights');
  mkdirSync(noWeights);
  writeFileSync(join(noWeights, 'adapter_config.json'), JSON.stringify(peftWrittenConfig()));
  assertAdapterError(() => loadPeftAdapter(noWeights, cfg), 'no adapter_model.safetensors');

  const badJson = fresh('bad-json');
  writeFolder(badJson, {}, folderTensors(QV, 'F32').tensors);
  writeFileSync(join(badJson, 'adapter_config.json'), '{"r": 4,');
  assertAdapterError(() => loadPeftAdapter(badJson, cfg), join(badJson, 'adapter_config.json'), 'invalid JSON');

  const truncated = fresh('truncated');
  writeFolder(truncated, peftWrittenConfig(), folderTensors(QV, 'F32').tensors);
  const bytes = readFileSync(join(truncated, 'adapter_model.safetensors'));
  writeFileSync(join(truncated, 'adapter_model.safetensors'), bytes.subarray(0, bytes.length - 100));
  assertAdapterError(() => loadPeftAdapter(truncated, cfg), join(truncated, 'adapter_model.safetensors'), 'truncated');
});

test('config errors name adapter_config.json and the field', () => {
  const cases: [Record<string, unknown>, string[]][] = [
    [{ peft_type: 'IA3' }, ['peft_type is "IA3"', 'LoRA adapters only']],
    [{ use_dora: true }, ['use_dora', 'DoRA']],
    [{ lora_bias: true }, ['lora_bias']],
    [{ r: 0 }, ['"r" must be a positive integer']],
    [{ r: '4' }, ['"r" must be a positive integer']],
    [{ lora_alpha: 'x' }, ['"lora_alpha" must be a number']],
    [{ lora_dropout: 1.5 }, ['"lora_dropout" must be in [0, 1)']],
    [{ rank_pattern: { 'model.layers.0.self_attn.q_proj': 16 } }, ['"rank_pattern"', 'model.layers.0.self_attn.q_proj: 16', 'one rank and alpha']],
    [{ alpha_pattern: { q_proj: 32 } }, ['"alpha_pattern"']],
    [{ target_modules: null }, ['"target_modules" is missing']],
    [{ target_modules: ['c_attn', 'query_key_value'] }, ['matches none of the model', 'c_attn']],
    [{ target_modules: 42 }, ['"target_modules" must be a list']],
    [{ target_modules: '(unclosed' }, ['not a regular expression']],
    [{ layers_to_transform: [0] }, ['covers q_proj in layers 0 of 2 only']],
    [{ target_modules: 'model\\.layers\\.1\\.self_attn\\.(q|v)_proj' }, ['covers q_proj in layers 1 of 2 only']],
    [{ layers_to_transform: 'all' }, ['"layers_to_transform" must be an integer']],
    [{ modules_to_save: ['lm_head'] }, ['"modules_to_save" ["lm_head"]', 'not supported']],
    [{ alora_invocation_tokens: [5, 6] }, ['"alora_invocation_tokens"', 'aLoRA']],
    [{ use_bdlora: { nblocks: 2 } }, ['"use_bdlora"', 'block-diagonal']],
    [{ layer_replication: [[0, 2], [1, 2]] }, ['"layer_replication"']],
    [{ trainable_token_indices: [1, 2] }, ['"trainable_token_indices"']],
    [{ use_qalora: true }, ['"use_qalora"']],
    [{ init_lora_weights: 'pissa_niter_4' }, ['"init_lora_weights" is "pissa_niter_4"', 'path_initial_model_for_weight_conversion']],
    [{ init_lora_weights: 'olora' }, ['changes the base weights']],
  ];
  for (const [over, parts] of cases) {
    const dir = fresh('cfg-err');
    writeFolder(dir, peftWrittenConfig(over), folderTensors(QV, 'F32').tensors);
    assertAdapterError(() => loadPeftAdapter(dir, cfg), join(dir, 'adapter_config.json'), ...parts);
  }
});

test('tensor errors name adapter_model.safetensors and the tensor', () => {
  const file = (d: string) => join(d, 'adapter_model.safetensors');
  const qA0 = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
  const vB1 = 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight';

  let dir = fresh('missing');
  writeFolder(dir, peftWrittenConfig(), folderTensors(QV, 'F32').tensors.filter((t) => t.name !== vB1));
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), 'missing 1 tensor', vB1, 'r 4, targets q_proj, v_proj');

  // config says r 8, tensors have r 4
  dir = fresh('rank');
  writeFolder(dir, peftWrittenConfig({ r: 8 }), folderTensors(QV, 'F32').tensors);
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), qA0, 'shape [4, 32], expected [r, in] = [8, 32]');

  // trained for another base model (hidden 64)
  const other = writeSyntheticCheckpoint(join(root, 'other-base'), { hiddenSize: 64, numLayers: 2, vocabSize: 300 }).config;
  dir = fresh('other-model');
  savePeftAdapter(dir, { spec: QV, baseModel: 'other', tensors: randomTensors(QV, 3, other), cfg: other });
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), qA0, 'shape [4, 64]', 'different base model');

  dir = fresh('extra');
  const { tensors } = folderTensors(QV, 'F32');
  writeFolder(dir, peftWrittenConfig(), [
    ...tensors,
    { name: 'base_model.model.lm_head.weight', dtype: 'F32', shape: [300, 32], data: new Float32Array(9600) },
    { name: 'base_model.model.model.embed_tokens.lora_embedding_A', dtype: 'F32', shape: [4, 300], data: new Float32Array(1200) },
  ]);
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), 'tensors Finch cannot apply',
    'base_model.model.lm_head.weight', 'base_model.model.model.embed_tokens.lora_embedding_A', 'modules_to_save', 'LoRA on embeddings');

  dir = fresh('dora');
  writeFolder(dir, peftWrittenConfig(), [
    ...tensors,
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', dtype: 'F32', shape: [32], data: new Float32Array(32) },
  ]);
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), 'lora_magnitude_vector', 'DoRA');

  dir = fresh('dup');
  writeFolder(dir, peftWrittenConfig(), [...tensors, { ...tensors[0]!, name: tensors[0]!.name.replace(/\.weight$/, '.default.weight') }]);
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), `${qA0} is stored twice`);

  dir = fresh('int');
  writeFolder(dir, peftWrittenConfig(), tensors.map((t) => (t.name === qA0 ? { ...t, dtype: 'I32' as const, data: new Int32Array(t.data.length) } : t)));
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), qA0, 'dtype I32');

  dir = fresh('nan');
  const bad = Float32Array.from(tensors.find((t) => t.name === vB1)!.data);
  bad[5] = NaN;
  writeFolder(dir, peftWrittenConfig(), tensors.map((t) => (t.name === vB1 ? { ...t, data: bad } : t)));
  assertAdapterError(() => loadPeftAdapter(dir, cfg), file(dir), vB1, 'NaN at index 5');
});
