// LoRA adapters of Qwen3, Gemma 3 and Phi-3 both ways between Finch and Hugging Face PEFT, on tiny
// checkpoints transformers writes (test/helpers/hf-checkpoints.ts), with each family's real chat
// template rendering the chat dataset:
//   - `finch train` (a few steps, dropout on, the default targets: all of Phi-3's fused projections)
//     writes an adapter that PEFT loads without a warning, with the same LoRA weights and scale;
//     PEFT's logits equal Finch's own base + adapter within 1e-4 of the largest, and PEFT's
//     merge_and_unload() equals `finch merge`;
//   - an adapter PEFT makes ("all-linear", random B) loads in Finch on the family's projections and
//     gives PEFT's logits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ADAPTER_CONFIG, loadPeftAdapter } from '../../src-main/model/adapter.js';
import { loadModelConfig } from '../../src-main/model/config.js';
import { modelTargets } from '../../src-main/model/lora.js';
import { mergeAdapter } from '../../src-main/model/merge.js';
import { adapterLogits } from '../helpers/finch-logits.js';
import { finch } from '../helpers/fixtures.js';
import { type HfCheckpointSpec, hfCheckpoints } from '../helpers/hf-checkpoints.js';
import { maxDiffOverScale } from '../helpers/llama-oracle.js';
import { need, problem, VENV_PYTHON } from '../helpers/prerequisites.js';
import { tempDir } from './model-helpers.js';

const PEFT_ORACLE = new URL('../oracle/peft_oracle.py', import.meta.url).pathname;
const DATA = 'test/fixtures/data/messages.jsonl';
const root = tempDir('finch-families-peft-');

const shape = { hidden_size: 64, intermediate_size: 96, num_attention_heads: 4, num_key_value_heads: 2, initializer_range: 0.1, num_hidden_layers: 2 };
const CHECKPOINTS = {
  qwen3: { family: 'qwen3', config: { ...shape, head_dim: 16 } },
  gemma3: { family: 'gemma3_text', seed: 1, config: { ...shape, head_dim: 16, sliding_window: 8, sliding_window_pattern: 2, query_pre_attn_scalar: 16 } },
  phi3: { family: 'phi3', seed: 2, config: { ...shape, partial_rotary_factor: 0.5 } },
} satisfies Record<string, HfCheckpointSpec>;
type Name = keyof typeof CHECKPOINTS;
let dirs: Record<Name, string>;

before(() => {
  if (!problem('venv')) dirs = hfCheckpoints(root, CHECKPOINTS);
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
  peft_logits: number[];
}

const python = (args: string[]) => {
  const r = spawnSync(VENV_PYTHON, [PEFT_ORACLE, ...args], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
};

for (const name of Object.keys(CHECKPOINTS) as Name[]) {
  test(`${name}: an adapter \`finch train\` writes loads in PEFT with the same weights and logits, and merges as PEFT merges`, { timeout: 900_000 }, async (t) => {
    if (!need(t, 'venv')) return;
    const base = dirs[name];
    const out = join(root, `${name}-run`);
    const r = await finch(['train', '--model', base, '--data', DATA, '--seq-len', '64', '--batch', '2', '--rank', '4', '--alpha', '8', '--dropout', '0.1',
      '--lr', '2e-2', '--max-steps', '3', '--val-fraction', '0', '--threads', '1', '--gradient-checkpointing', '--json', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = loadModelConfig(base);
    const written = JSON.parse(readFileSync(join(out, ADAPTER_CONFIG), 'utf8')) as { target_modules: string[] };
    assert.deepEqual(written.target_modules, [...modelTargets(cfg)], 'PEFT\'s module names of the family, all of them by default');
    const merged = join(root, `${name}-merged`);
    mergeAdapter(base, out, merged);
    const reportFile = join(root, `${name}-peft.json`);
    python(['check', base, out, merged, reportFile]);
    const rep = JSON.parse(readFileSync(reportFile, 'utf8')) as PeftReport;
    assert.deepEqual(rep.warnings, [], 'PEFT loads the adapter without warnings');
    assert.equal(rep.lora_tensors_loaded, 2 * cfg.numLayers * modelTargets(cfg).length);
    assert.equal(rep.lora_max_diff, 0);
    assert.equal(rep.scaling, 2);
    assert.ok(rep.merged_weight_max_diff <= 1e-6, `merged weights differ from PEFT's merge_and_unload() by ${rep.merged_weight_max_diff}`);
    assert.ok(rep.logits_max_diff <= 1e-4 * rep.logits_scale, `PEFT and transformers on Finch's merge differ by ${rep.logits_max_diff}`);
    const off = maxDiffOverScale(await adapterLogits(base, out, rep.ids), rep.peft_logits);
    t.diagnostic(`${name}: PEFT vs Finch base + trained adapter logits: max |diff| / max |logit| = ${off.toExponential(2)}`);
    assert.ok(off <= 1e-4, `PEFT's logits differ from Finch's base + adapter by ${off} of the largest |logit|`);
  });

  test(`${name}: an adapter PEFT makes ("all-linear") loads in Finch on the family's projections and gives PEFT's logits`, { timeout: 600_000 }, async (t) => {
    if (!need(t, 'venv')) return;
    const base = dirs[name];
    const adapter = join(root, `${name}-peft-made`);
    python(['make', base, adapter, 'all-linear-f32']);
    const cfg = loadModelConfig(base);
    const loaded = loadPeftAdapter(adapter, cfg);
    assert.deepEqual(loaded.spec.targets, [...modelTargets(cfg)]);
    const expected = JSON.parse(readFileSync(join(adapter, 'logits.json'), 'utf8')) as { ids: number[]; logits: number[] };
    const off = maxDiffOverScale(await adapterLogits(base, adapter, expected.ids), expected.logits);
    t.diagnostic(`${name}: Finch vs PEFT logits with PEFT's adapter: max |diff| / max |logit| = ${off.toExponential(2)}`);
    assert.ok(off <= 1e-4, `Finch's logits with PEFT's adapter differ by ${off} of the largest |logit|`);
  });
}
