// Predicts the peak memory of a LoRA/QLoRA training step before a run starts, from the graph
// Finch builds (llama.ts, step.ts), so the wizard can warn "this will not fit" up front.
// Each part mirrors a concrete allocation; ORT's arena rounding and the JS heap are not modelled.

import { int4Bytes } from '../model/quant.js';
import type { ModelConfig } from '../model/types.js';

export interface MemoryPlan {
  batch: number;
  seq: number;
  rank: number;
  /** How many of the seven projections carry LoRA. */
  targets: number;
  quantize: boolean;
  checkpointLayers: boolean;
  /** Loss chunks (logits live for rows/chunks at a time); default: enough for <= 64 MiB per chunk. */
  lossChunks?: number;
  blockSize?: number;
}

export interface MemoryEstimate {
  parts: Record<string, number>;
  totalBytes: number;
  lossChunks: number;
}

const F32 = 4;

export function estimateTrainingMemory(cfg: ModelConfig, p: MemoryPlan): MemoryEstimate {
  const D = cfg.hiddenSize, I = cfg.intermediateSize, L = cfg.numLayers, V = cfg.vocabSize;
  const qDim = cfg.numHeads * cfg.headDim, kvDim = cfg.numKvHeads * cfg.headDim;
  const rows = p.batch * p.seq;
  const block = p.blockSize ?? 32;
  const projections: [number, number][] = [[qDim, D], [kvDim, D], [kvDim, D], [D, qDim], [I, D], [I, D], [D, I]]; // [out, in]

  // Frozen weights. 4-bit: MatMulNBits packing for the forward, plus the uint4 view the backward
  // dequantizes (autodiff/rules.ts: dequantizedNBits) shares bytes in JS but is its own initializer.
  const weight = (n: number, k: number) => (p.quantize ? int4Bytes(n, k, block) + (n * k) / 2 + (n * k) / block / 2 : n * k * F32);
  const perLayer = projections.reduce((s, [n, k]) => s + weight(n, k), 0) + 2 * D * F32;
  const lmHead = weight(V, D);
  const embeddings = V * D * F32;

  // LoRA: parameters, both moments and their updated copies (graph inputs and outputs), gradients.
  const loraParams = L * projections.slice(0, p.targets).reduce((s, [n, k]) => s + p.rank * (n + k), 0);
  const lora = loraParams * F32 * 7;

  // Activations. With checkpointing only each layer's input survives the forward; the backward
  // recomputes one layer at a time. Without, every layer's working set is kept.
  const attnScores = p.batch * cfg.numHeads * p.seq * p.seq * F32; // one [B, H, T, T] tensor
  const layerWorking = 3 * attnScores + 4 * rows * I * F32 + 10 * rows * Math.max(D, qDim) * F32;
  const largestDequant = p.quantize ? Math.max(...projections.map(([n, k]) => n * k * F32)) : 0;
  const activations = p.checkpointLayers ? L * rows * D * F32 + layerWorking + largestDequant : L * layerWorking + largestDequant;
  const chunks = p.lossChunks ?? Math.max(1, Math.ceil((rows * V * F32) / (64 * 2 ** 20)));
  const logits = 3 * Math.ceil(rows / chunks) * V * F32; // logits, softmax, their gradient

  const parts = {
    'frozen weights (layers)': L * perLayer,
    'lm_head': lmHead,
    'embeddings (float32)': embeddings,
    'LoRA + AdamW state': lora,
    'activations': activations,
    'logits / loss (chunked)': logits,
  };
  return { parts, totalBytes: Object.values(parts).reduce((a, b) => a + b, 0), lossChunks: chunks };
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}
