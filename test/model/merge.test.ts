// Merging an adapter into its base: the merged checkpoint equals W + scale * B @ A as computed by
// an independent PyTorch reader in float64 (test/oracle/merge_oracle.py), in bf16, f16 and f32,
// sharded and not; untouched tensors stay bit-identical; shards, dtypes, side files and progress
// are as the base had them; and failures leave no output and no temporary folder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { savePeftAdapter } from '../../src-main/model/adapter.js';
import { loadModelConfig } from '../../src-main/model/config.js';
import { loraParams, type LoraSpec } from '../../src-main/model/lora.js';
import { MergeError, addScaledProduct, mergeAdapter, type MergeProgress } from '../../src-main/model/merge.js';
import { writeSyntheticCheckpoint, type StorageDtype } from '../../src-main/synthetic/checkpoint.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { runPythonScript, tempDir } from './model-helpers.js';
import { adapterLogits } from '../helpers/finch-logits.js';
import { maxDiffOverScale } from '../helpers/llama-oracle.js';
import { need, VENV_PYTHON } from '../helpers/prerequisites.js';
import { Rng } from '../../src-main/util/random.js';

const root = tempDir('finch-merge-');

interface OracleRecord {
  missing?: boolean;
  adapted: boolean;
  dtype_ok: boolean;
  shape_ok: boolean;
  identical: boolean;
  excess?: number;
  exact_frac?: number;
  change?: number;
}
interface OracleReport {
  scale: number;
  tensors: Record<string, OracleRecord>;
  layout: { files: string[]; same_names: boolean; same_weight_map: boolean };
}

function makeBase(name: string, dtype: StorageDtype, sharded: boolean) {
  // GQA and a wider MLP so every projection has its own shape; biases (qwen2) must be copied too.
  return writeSyntheticCheckpoint(join(root, name), {
    modelType: 'qwen2', hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 48, numLayers: 2,
    vocabSize: 300, dtype, sharded, seed: 3,
  });
}

/** A trained-looking adapter: B non-zero, so the merge moves the weights well beyond rounding. */
function makeAdapter(name: string, cfg: ModelConfig, spec: LoraSpec, seed: number): string {
  const dir = join(root, name);
  const tensors = new Map<string, Float32Array>();
  for (const p of loraParams(cfg, spec)) {
    const r = Rng.forName(seed, p.name);
    tensors.set(p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => r.normal() * 0.05));
  }
  savePeftAdapter(dir, { spec, baseModel: 'synthetic', tensors, cfg });
  return dir;
}

const SPEC: LoraSpec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] };

for (const [dtype, sharded, rslora] of [
  ['bfloat16', true, false], ['bfloat16', false, true], ['float32', true, true], ['float32', false, false], ['float16', false, false],
] as const) {
  test(`merge equals base + scale * B @ A (torch, float64): ${dtype}, ${sharded ? 'sharded' : 'one file'}${rslora ? ', rsLoRA' : ''}`, () => {
    const tag = `${dtype}-${sharded ? 'sh' : 'one'}-${rslora ? 'rs' : 'plain'}`;
    const base = makeBase(`base-${tag}`, dtype, sharded);
    const spec = { ...SPEC, rslora };
    const adapter = makeAdapter(`adapter-${tag}`, base.config, spec, 11);
    const out = join(root, `merged-${tag}`);
    const progress: MergeProgress[] = [];
    const res = mergeAdapter(base.dir, adapter, out, { onProgress: (p) => progress.push(p) });

    const scale = rslora ? 8 / 2 : 8 / 4;
    assert.equal(res.scale, scale);
    assert.equal(res.mergedTensors, 2 * 4);
    assert.deepEqual(res.weightFiles, base.weightFiles);
    assert.deepEqual(res.copiedFiles, ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    for (const f of res.copiedFiles) assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(base.dir, f), 'utf8'), f);
    assert.deepEqual(loadModelConfig(out), base.config);
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('.')), [], 'no temporary folder left behind');

    // Progress: every tensor once, in order, adapted ones flagged.
    assert.equal(progress.length, res.tensors);
    assert.deepEqual(progress.map((p) => p.index), Array.from({ length: res.tensors }, (_, i) => i + 1));
    assert.ok(progress.every((p) => p.total === res.tensors));
    assert.equal(new Set(progress.map((p) => p.name)).size, res.tensors);
    assert.deepEqual(progress.filter((p) => p.merged).map((p) => p.name).sort(),
      [0, 1].flatMap((l) => [`model.layers.${l}.mlp.down_proj.weight`, `model.layers.${l}.self_attn.o_proj.weight`,
        `model.layers.${l}.self_attn.q_proj.weight`, `model.layers.${l}.self_attn.v_proj.weight`]).sort());

    const reportFile = join(root, `report-${tag}.json`);
    runPythonScript('merge_oracle.py', [base.dir, adapter, out, reportFile]);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as OracleReport;
    assert.equal(report.scale, scale);
    assert.ok(report.layout.same_names, 'same tensor names as the base');
    assert.ok(report.layout.same_weight_map, 'same shard for every tensor');
    const entries = Object.entries(report.tensors);
    assert.equal(entries.length, res.tensors);
    let adapted = 0;
    for (const [name, r] of entries) {
      assert.ok(!r.missing && r.dtype_ok && r.shape_ok, `${name}: present with the base's dtype and shape`);
      if (!r.adapted) {
        assert.ok(r.identical, `${name}: not adapted, so bit-identical to the base`);
        continue;
      }
      adapted++;
      assert.ok(r.change! > 0.2, `${name}: the adapter moved the weights (max change ${r.change} of max |W|)`);
      // Within half an ulp of the exact value plus float32 summation error (a few eps of the terms).
      assert.ok(r.excess! <= 4e-7, `${name}: error beyond rounding, excess ${r.excess}`);
      if (dtype !== 'float32') assert.ok(r.exact_frac! >= 0.99, `${name}: only ${r.exact_frac} of values round like torch`);
    }
    assert.equal(adapted, 8);
  });
}

test('addScaledProduct: w += scale * b @ a against a naive triple loop', () => {
  const [o, i, r] = [5, 7, 3];
  const rng = new Rng(5);
  const w = Float32Array.from({ length: o * i }, () => rng.normal());
  const b = Float32Array.from({ length: o * r }, () => rng.normal());
  const a = Float32Array.from({ length: r * i }, () => rng.normal());
  b[4] = 0; // the zero-skip path
  const want = Float64Array.from(w);
  for (let x = 0; x < o; x++) for (let y = 0; y < i; y++) for (let k = 0; k < r; k++) want[x * i + y]! += 1.5 * b[x * r + k]! * a[k * i + y]!;
  addScaledProduct(w, b, a, o, i, r, 1.5);
  for (let j = 0; j < w.length; j++) assert.ok(Math.abs(w[j]! - want[j]!) < 1e-5, `element ${j}`);
});

test('merge refuses to overwrite, fails cleanly mid-way, and checks the adapter against the base', () => {
  const base = makeBase('base-errors', 'bfloat16', true);
  const adapter = makeAdapter('adapter-errors', base.config, SPEC, 2);

  const existing = join(root, 'existing');
  mkdirSync(existing);
  writeFileSync(join(existing, 'keep.txt'), 'mine');
  assert.throws(() => mergeAdapter(base.dir, adapter, existing), (e: unknown) =>
    e instanceof MergeError && e.message.includes(existing) && e.message.includes('not empty'));
  assert.equal(readFileSync(join(existing, 'keep.txt'), 'utf8'), 'mine');
  mergeAdapter(base.dir, adapter, existing, { overwrite: true });
  assert.equal(existsSync(join(existing, 'keep.txt')), false);
  assert.ok(existsSync(join(existing, 'model.safetensors.index.json')));

  // A failure half way through (here: the progress callback throws) leaves nothing behind.
  const out = join(root, 'half');
  assert.throws(() => mergeAdapter(base.dir, adapter, out, {
    onProgress: (p) => {
      if (p.index === 5) throw new Error('disk pulled');
    },
  }), /disk pulled/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('.')), []);

  assert.throws(() => mergeAdapter(base.dir, adapter, base.dir), /must be a new folder/);
  assert.throws(() => mergeAdapter(adapter, adapter, join(root, 'x1')), /is an adapter folder; the first argument must be the base model/);

  // An adapter trained for another model: the loader names the tensor and its shape.
  const other = writeSyntheticCheckpoint(join(root, 'base-other'), { hiddenSize: 64, numLayers: 2, vocabSize: 300 });
  const otherAdapter = makeAdapter('adapter-other', other.config, SPEC, 3);
  assert.throws(() => mergeAdapter(base.dir, otherAdapter, join(root, 'x2')),
    /adapter_model\.safetensors: tensor base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has shape \[4, 64\]/);
  assert.equal(existsSync(join(root, 'x2')), false);
});

// The real thing (the Python venv of .ci/run): Hugging Face PEFT loads Finch's adapter without a
// warning, holds the same LoRA weights and scale, its merge_and_unload() and forward pass agree
// with Finch's merged checkpoint, and its logits agree with Finch's own forward of base + adapter
// (the app's generation graph) within 1e-4 of the largest |logit|.
test('Hugging Face PEFT loads the adapter and agrees with the merge and with Finch\'s base + adapter', { timeout: 600_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  for (const [dtype, sharded, weightTol, logitTol] of [['float32', false, 1e-6, 1e-5], ['bfloat16', true, 2e-3, 1e-2]] as const) {
    const tag = `peft-${dtype}`;
    const base = makeBase(`base-${tag}`, dtype, sharded);
    const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0.05, rslora: true, targets: ['q_proj', 'k_proj', 'gate_proj', 'down_proj'] };
    const adapter = makeAdapter(`adapter-${tag}`, base.config, spec, 5);
    const out = join(root, `merged-${tag}`);
    mergeAdapter(base.dir, adapter, out);
    const reportFile = join(root, `${tag}.json`);
    const r = spawnSync(VENV_PYTHON, [new URL('../oracle/peft_oracle.py', import.meta.url).pathname, 'check', base.dir, adapter, out, reportFile], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(readFileSync(reportFile, 'utf8')) as PeftReport;
    assert.deepEqual(rep.warnings, [], 'PEFT loads the adapter without warnings');
    assert.equal(rep.lora_tensors_loaded, 16);
    assert.equal(rep.lora_max_diff, 0);
    assert.equal(rep.scaling, 8 / 2);
    assert.ok(rep.merged_weight_max_diff <= weightTol, `${dtype}: merged weights differ by ${rep.merged_weight_max_diff}`);
    assert.ok(rep.logits_max_diff <= logitTol, `${dtype}: logits differ by ${rep.logits_max_diff} (scale ${rep.logits_scale})`);
    const finch = await adapterLogits(base.dir, adapter, rep.ids);
    const off = maxDiffOverScale(finch, rep.peft_logits);
    t.diagnostic(`${dtype}: PEFT vs Finch base + adapter logits: max |diff| / max |logit| = ${off.toExponential(2)}`);
    assert.ok(off <= 1e-4, `${dtype}: PEFT's logits differ from Finch's base + adapter by ${off} of the largest |logit|`);
  }
});

interface PeftReport {
  warnings: string[];
  scaling: number;
  lora_tensors_loaded: number;
  lora_max_diff: number;
  merged_weight_max_diff: number;
  logits_max_diff: number;
  logits_scale: number;
  ids: number[];
  /** [T, V] row-major. */
  peft_logits: number[];
}
