// LoRA bookkeeping (model/lora.ts): PEFT tensor names and shapes per projection (Phi-3's fused
// ones included), the default initialization PEFT uses (A uniform in +-1/sqrt(in), B zero), scales,
// target parsing, and a run's targets resolved against each family's projections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LORA, LORA_TARGETS, initLora, loraParams, loraScale, modulePath, parseTargets, projectionShape, resolveLora, resolveTargets } from '../../src-main/model/lora.js';
import { tinyConfig, tinyFamilyConfigs } from '../helpers/tiny-llama.js';

const cfg = tinyConfig({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, intermediateSize: 96 });

test('names and shapes follow PEFT and the [out, in] projections of a GQA Llama', () => {
  assert.equal(modulePath(1, 'k_proj'), 'model.layers.1.self_attn.k_proj');
  assert.equal(modulePath(0, 'down_proj'), 'model.layers.0.mlp.down_proj');
  const hd = cfg.headDim;
  assert.deepEqual(projectionShape(cfg, 'q_proj'), [4 * hd, 64]);
  assert.deepEqual(projectionShape(cfg, 'v_proj'), [2 * hd, 64]);
  assert.deepEqual(projectionShape(cfg, 'o_proj'), [64, 4 * hd]);
  assert.deepEqual(projectionShape(cfg, 'up_proj'), [96, 64]);
  assert.deepEqual(projectionShape(cfg, 'down_proj'), [64, 96]);
  const ps = loraParams(cfg, { ...DEFAULT_LORA, rank: 3, targets: ['v_proj', 'q_proj'] });
  assert.deepEqual(ps.map((p) => p.name), [0, 1].flatMap((l) => ['q_proj', 'v_proj'].flatMap((t) =>
    ['A', 'B'].map((w) => `base_model.model.model.layers.${l}.self_attn.${t}.lora_${w}.weight`))));
  assert.deepEqual(ps[0]!.shape, [3, 64]); // A [r, in]
  assert.deepEqual(ps[3]!.shape, [2 * hd, 3]); // v_proj B [out, r]
});

test('initialization: A uniform within +-1/sqrt(in) with the right spread, B zero, reproducible by seed', () => {
  const ps = loraParams(cfg, { ...DEFAULT_LORA, rank: 8 });
  const a = initLora(ps, 1), b = initLora(ps, 1), c = initLora(ps, 2);
  for (const p of ps) {
    const v = a.get(p.name)!;
    assert.equal(v.length, p.shape[0] * p.shape[1]);
    assert.deepEqual(v, b.get(p.name));
    if (p.which === 'B') { assert.ok(v.every((x) => x === 0)); continue; }
    const bound = 1 / Math.sqrt(p.shape[1]);
    assert.ok(v.every((x) => Math.abs(x) <= bound));
    // U(-b, b) has variance b^2 / 3; 512+ samples keep the estimate within 25% by a wide margin.
    const variance = v.reduce((s, x) => s + x * x, 0) / v.length;
    assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.25, `${p.name}: variance ${variance}`);
    assert.notDeepEqual(v, c.get(p.name));
  }
});

test('scale alpha/r, or alpha/sqrt(r) with rsLoRA; targets parse and refuse unknown names', () => {
  assert.equal(loraScale({ ...DEFAULT_LORA, rank: 16, alpha: 32 }), 2);
  assert.equal(loraScale({ ...DEFAULT_LORA, rank: 16, alpha: 32, rslora: true }), 8);
  assert.deepEqual(parseTargets('all'), [...LORA_TARGETS]);
  assert.deepEqual(parseTargets('q_proj, v_proj'), ['q_proj', 'v_proj']);
  assert.throws(() => parseTargets('q_proj,qkv'), /qkv/);
});

test('a run\'s targets in each family\'s projections: the default adapts all of them, a fused projection any of its parts', () => {
  const { qwen3, gemma3, phi3 } = tinyFamilyConfigs();
  for (const c of [cfg, qwen3, gemma3]) assert.deepEqual(resolveTargets(c, LORA_TARGETS), [...LORA_TARGETS], c.modelType);
  assert.deepEqual(resolveTargets(phi3, LORA_TARGETS), ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj']);
  assert.deepEqual(resolveTargets(phi3, ['qkv_proj', 'down_proj']), ['qkv_proj', 'down_proj']);
  assert.deepEqual(resolveTargets(phi3, ['v_proj', 'k_proj', 'q_proj', 'o_proj']), ['qkv_proj', 'o_proj']);
  // The wizard's Quick preset (q_proj, v_proj) adapts Phi-3's whole qkv_proj, as one matrix.
  assert.deepEqual(resolveTargets(phi3, ['q_proj', 'v_proj']), ['qkv_proj']);
  assert.deepEqual(resolveTargets(phi3, ['gate_proj', 'down_proj']), ['gate_up_proj', 'down_proj']);
  assert.throws(() => resolveTargets(phi3, []), /no LoRA targets; Phi-3's projections are qkv_proj, o_proj, gate_up_proj, down_proj/);
  // On separate projections a fused name stands for its parts; the model's order wins over the list's.
  assert.deepEqual(resolveTargets(cfg, ['gate_up_proj', 'qkv_proj']), ['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj']);
  assert.deepEqual(resolveTargets(cfg, ['v_proj', 'q_proj']), ['q_proj', 'v_proj']);
  // Resolving an already resolved spec changes nothing (the same object).
  const spec = resolveLora(phi3, DEFAULT_LORA);
  assert.equal(resolveLora(phi3, spec), spec);
  assert.deepEqual(parseTargets('qkv_proj,gate_up_proj'), ['qkv_proj', 'gate_up_proj']);
});

test('Phi-3\'s fused projections: PEFT names and [out, in] shapes; unresolved targets are refused', () => {
  const { phi3 } = tinyFamilyConfigs();
  const hd = phi3.headDim;
  assert.equal(modulePath(0, 'qkv_proj'), 'model.layers.0.self_attn.qkv_proj');
  assert.equal(modulePath(1, 'gate_up_proj'), 'model.layers.1.mlp.gate_up_proj');
  assert.deepEqual(projectionShape(phi3, 'qkv_proj'), [(4 + 2 * 2) * hd, 64]);
  assert.deepEqual(projectionShape(phi3, 'gate_up_proj'), [2 * 96, 64]);
  const names = loraParams(phi3, resolveLora(phi3, { ...DEFAULT_LORA, rank: 2 })).filter((p) => p.layer === 0).map((p) => `${p.target}.${p.which}`);
  assert.deepEqual(names, ['qkv_proj.A', 'qkv_proj.B', 'o_proj.A', 'o_proj.B', 'gate_up_proj.A', 'gate_up_proj.B', 'down_proj.A', 'down_proj.B']);
  assert.throws(() => loraParams(phi3, DEFAULT_LORA), /LoRA targets q_proj, k_proj, v_proj, gate_proj, up_proj are not projections of Phi-3/);
});
