// LoRA as a rewrite of linear layers: y = base(x) + scale * (dropout(x) @ A^T) @ B^T, with
// A [r, in] Kaiming-uniform and B [out, r] zero, as Hugging Face PEFT initialises them, so a fresh
// adapter changes nothing. Tensor names are PEFT's, so adapters round-trip with PEFT and vLLM.

import { LORA_TARGETS } from '../../src-shared/choices.js';
import { LoraSettings } from '../../src-shared/run-config.js';
import { mulberry32 } from '../util/random.js';
import type { ModelConfig } from './types.js';

export { LORA_TARGETS };
export type LoraTarget = (typeof LORA_TARGETS)[number];

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

export const loraScale = (s: LoraSpec): number => (s.rslora ? s.alpha / Math.sqrt(s.rank) : s.alpha / s.rank);

export function parseTargets(list: string): LoraTarget[] {
  const names = list.split(/[\s,]+/).filter(Boolean);
  if (names.length === 1 && names[0] === 'all') return [...LORA_TARGETS];
  for (const n of names) {
    if (!(LORA_TARGETS as readonly string[]).includes(n)) {
      throw new Error(`unknown LoRA target "${n}"; choose from ${LORA_TARGETS.join(', ')} (or "all")`);
    }
  }
  return names as LoraTarget[];
}

/** The HF module path of a projection in layer `layer` ("model.layers.3.self_attn.q_proj"). */
export function modulePath(layer: number, target: LoraTarget): string {
  const block = target.endsWith('_proj') && ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(target) ? 'self_attn' : 'mlp';
  return `model.layers.${layer}.${block}.${target}`;
}

/** [out, in] of a projection. */
export function projectionShape(cfg: ModelConfig, target: LoraTarget): [number, number] {
  const d = cfg.hiddenSize, hd = cfg.headDim;
  switch (target) {
    case 'q_proj': return [cfg.numHeads * hd, d];
    case 'k_proj': case 'v_proj': return [cfg.numKvHeads * hd, d];
    case 'o_proj': return [d, cfg.numHeads * hd];
    case 'gate_proj': case 'up_proj': return [cfg.intermediateSize, d];
    case 'down_proj': return [d, cfg.intermediateSize];
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

/** Every LoRA matrix of a model, in a fixed order (layer, target, A then B). */
export function loraParams(cfg: ModelConfig, spec: LoraSpec): LoraParam[] {
  const out: LoraParam[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const t of LORA_TARGETS) {
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
