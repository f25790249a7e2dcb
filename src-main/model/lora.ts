// LoRA as a rewrite of linear layers: y = base(x) + scale * (dropout(x) @ A^T) @ B^T, with
// A [r, in] Kaiming-uniform and B [out, r] zero, as Hugging Face PEFT initialises them, so a fresh
// adapter changes nothing. Tensor names are PEFT's, so adapters round-trip with PEFT and vLLM:
// each family's own projection names (model/family.ts), Phi-3's fused qkv_proj and gate_up_proj
// included. A run's target list is resolved against the model's projections once (resolveLora).

import { LORA_TARGET_NAMES, LORA_TARGETS } from '../../src-shared/choices.js';
import { LoraSettings } from '../../src-shared/run-config.js';
import { mulberry32 } from '../util/random.js';
import { FUSED_PARTS, type ProjectionName, familyOf } from './family.js';
import type { ModelConfig } from './types.js';

export { LORA_TARGETS };
export type LoraTarget = ProjectionName;

export interface LoraSpec {
  rank: number;
  alpha: number;
  dropout: number;
  /** rsLoRA: scale = alpha / sqrt(r) instead of alpha / r. */
  rslora: boolean;
  targets: readonly LoraTarget[];
}

/** The run configuration's LoRA defaults (src-shared/run-config.ts). */
export const DEFAULT_LORA: LoraSpec = LoraSettings.parse({});

/**
 * Every projection name in the order projections occur in a layer: the order of LoRA parameters,
 * dropout seeds and target_modules (for the Llama family exactly LORA_TARGETS', which runs saved
 * before the fused names existed rely on). Never reorder.
 */
export const LORA_TARGET_ORDER: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'qkv_proj', 'o_proj', 'gate_proj', 'up_proj', 'gate_up_proj', 'down_proj'];

export const loraScale = (s: LoraSpec): number => (s.rslora ? s.alpha / Math.sqrt(s.rank) : s.alpha / s.rank);

export function parseTargets(list: string): LoraTarget[] {
  const names = list.split(/[\s,]+/).filter(Boolean);
  if (names.length === 1 && names[0] === 'all') return [...LORA_TARGETS];
  for (const n of names) {
    if (!(LORA_TARGET_NAMES as readonly string[]).includes(n)) {
      throw new Error(`unknown LoRA target "${n}"; choose from ${LORA_TARGET_NAMES.join(', ')} (or "all")`);
    }
  }
  return names as LoraTarget[];
}

/** The projections of a layer of this model that can carry LoRA, in the model's order. */
export const modelTargets = (cfg: Pick<ModelConfig, 'modelType'>): readonly LoraTarget[] => familyOf(cfg).projections;

/**
 * A run's target list in this model's projections, in the model's order. A fused projection
 * (Phi-3's qkv_proj, gate_up_proj) is adapted when it or any of its parts is listed: one adapter
 * covers the whole fused matrix, as PEFT's does (so the default, the seven Llama names, adapts all
 * four of Phi-3's, and "q_proj,v_proj" adapts qkv_proj). On a model with separate projections a
 * fused name stands for its parts.
 */
export function resolveTargets(cfg: Pick<ModelConfig, 'modelType'>, targets: readonly LoraTarget[]): LoraTarget[] {
  const fam = familyOf(cfg);
  const listed = (t: LoraTarget) => targets.includes(t);
  const fusedOf = (p: LoraTarget) => (Object.keys(FUSED_PARTS) as (keyof typeof FUSED_PARTS)[]).find((f) => FUSED_PARTS[f].includes(p));
  const out = fam.projections.filter((p) => {
    const parts = FUSED_PARTS[p as keyof typeof FUSED_PARTS];
    if (parts) return listed(p) || parts.some(listed);
    const fused = fusedOf(p);
    return listed(p) || (fused !== undefined && listed(fused));
  });
  if (out.length === 0) throw new Error(`no LoRA targets; ${fam.title}'s projections are ${fam.projections.join(', ')}`);
  return out;
}

/** A LoRA spec with its targets resolved against the model (resolveTargets); unchanged when they already are. */
export function resolveLora(cfg: Pick<ModelConfig, 'modelType'>, spec: LoraSpec): LoraSpec {
  const targets = resolveTargets(cfg, spec.targets);
  const same = targets.length === spec.targets.length && targets.every((t, i) => t === spec.targets[i]);
  return same ? spec : { ...spec, targets };
}

/** The HF module path of a projection in layer `layer` ("model.layers.3.self_attn.q_proj"). */
export function modulePath(layer: number, target: LoraTarget): string {
  const block = ['q_proj', 'k_proj', 'v_proj', 'qkv_proj', 'o_proj'].includes(target) ? 'self_attn' : 'mlp';
  return `model.layers.${layer}.${block}.${target}`;
}

/** [out, in] of a projection. */
export function projectionShape(cfg: ModelConfig, target: LoraTarget): [number, number] {
  const d = cfg.hiddenSize, hd = cfg.headDim, I = cfg.intermediateSize;
  switch (target) {
    case 'q_proj': return [cfg.numHeads * hd, d];
    case 'k_proj': case 'v_proj': return [cfg.numKvHeads * hd, d];
    case 'qkv_proj': return [(cfg.numHeads + 2 * cfg.numKvHeads) * hd, d];
    case 'o_proj': return [d, cfg.numHeads * hd];
    case 'gate_proj': case 'up_proj': return [I, d];
    case 'gate_up_proj': return [2 * I, d];
    case 'down_proj': return [d, I];
  }
}

export interface LoraParam {
  /** PEFT tensor name: base_model.model.<module>.lora_A.weight */
  name: string;
  layer: number;
  target: LoraTarget;
  which: 'A' | 'B';
  shape: [number, number];
}

/**
 * Every LoRA matrix of a model, in a fixed order (layer, target in LORA_TARGET_ORDER, A then B).
 * The spec's targets must be the model's projections (resolveLora).
 */
export function loraParams(cfg: ModelConfig, spec: LoraSpec): LoraParam[] {
  const own = modelTargets(cfg);
  const foreign = spec.targets.filter((t) => !own.includes(t));
  if (foreign.length) throw new Error(`LoRA targets ${foreign.join(', ')} are not projections of ${familyOf(cfg).title} (${own.join(', ')}); resolve the run's targets first (resolveLora)`);
  const out: LoraParam[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const t of LORA_TARGET_ORDER) {
      if (!spec.targets.includes(t)) continue;
      const [o, i] = projectionShape(cfg, t);
      const path = modulePath(l, t);
      out.push({ name: `base_model.model.${path}.lora_A.weight`, layer: l, target: t, which: 'A', shape: [spec.rank, i] });
      out.push({ name: `base_model.model.${path}.lora_B.weight`, layer: l, target: t, which: 'B', shape: [o, spec.rank] });
    }
  }
  return out;
}

/**
 * PEFT's default init: A ~ kaiming_uniform(a=sqrt(5)) over fan_in = in, i.e. U(-1/sqrt(in), 1/sqrt(in));
 * B = 0.
 */
export function initLora(params: readonly LoraParam[], seed: number): Map<string, Float32Array> {
  const rand = mulberry32(seed);
  const out = new Map<string, Float32Array>();
  for (const p of params) {
    const a = new Float32Array(p.shape[0] * p.shape[1]);
    if (p.which === 'A') {
      const bound = 1 / Math.sqrt(p.shape[1]);
      for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * bound;
    }
    out.set(p.name, a);
  }
  return out;
}
