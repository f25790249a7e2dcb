// How a run's settings become its training graph, decided in one place: the trainer builds its
// step and evaluation graphs from this plan (train/step.ts), and the memory estimates
// (train/memory.ts, host and GPU), `finch bench train` and the app's memory verdict
// (services/system.ts) price the very same plan. A decision added here reaches all of them.

import { CHUNK_BYTES, type ChunkPlan, chunkPlan } from '../model/chunk-plan.js';
import type { ComputeDtype } from '../model/weights/graph-weights.js';
import { LORA_TARGETS, type LoraSpec, resolveLora } from '../model/lora.js';
import type { ModelConfig } from '../model/types.js';
import { type Objective, type ObjectiveSettings, objectiveOf, rowsPerItem } from './objective.js';

/** The run settings that shape the graph, under TrainConfig's names (the app's RunConfig uses the same). */
export interface GraphSettings extends ObjectiveSettings {
  /** Items per micro-batch: sequences, or preference pairs (two rows each). */
  batch: number;
  /**
   * The longest row the graph takes: the run's seqLen before the data is read (the estimates), the
   * dataset's longest row capped by seqLen once it is (the trainer: train/evaluate.ts staticSeqLen).
   */
  seqLen: number;
  lora: LoraSpec;
  quantize: boolean;
  blockSize: number;
  checkpointLayers: boolean;
  staticSeq?: boolean;
}

/** What the chosen provider gives the graph (train/precision.ts graphDevice). */
export interface GraphDevice {
  /** The frozen path's dtype. */
  computeDtype: ComputeDtype;
  /** The largest buffer one frozen weight may take (larger ones are split); Infinity = no limit. */
  maxWeightBytes: number;
}

/** The CPU provider: float32, no buffer limit. */
export const CPU_DEVICE: GraphDevice = { computeDtype: 'float32', maxWeightBytes: Infinity };

/**
 * One run's graph. Its fields are the options of the graph builders (model/llama.ts
 * TrainGraphOptions, train/step.ts StepShape), so a plan is passed to them as it is.
 */
export interface GraphPlan {
  /** Rows per micro-batch: the settings' batch, twice that for a preference objective (chosen and rejected rows). */
  batch: number;
  /** What the step minimises (train/objective.ts). */
  objective: Objective;
  /** The longest sequence: the static length, or the most the symbolic length takes. */
  seq: number;
  /** A symbolic sequence length: each micro-batch pads only to its own longest row (train/length-batches.ts). */
  dynamicSeq: boolean;
  /** The adapter, its targets resolved against the model (model/lora.ts resolveLora). */
  lora: LoraSpec;
  /** 4-bit frozen projections and lm_head (QLoRA) in blocks of blockSize; blockSize also aligns the MLP pieces. */
  quantize: boolean;
  blockSize: number;
  /** Recompute each layer in the backward, in outer segments of checkpointGroup layers (1 when off). */
  checkpointLayers: boolean;
  checkpointGroup: number;
  /** Embedding rows gathered on the host and fed as "inputs_embeds": the table never enters the session. */
  hostEmbeddings: boolean;
  /** How the largest activations (attention scores, MLP intermediates, logits) are cut. */
  chunks: ChunkPlan;
  computeDtype: ComputeDtype;
  maxWeightBytes: number;
}

/**
 * The graph of a run. `chunkBytes` sets the size of one activation chunk (default CHUNK_BYTES, what
 * every run uses); tests and experiments lower it to exercise the chunked paths on small models.
 */
export function planGraph(s: GraphSettings, cfg: ModelConfig, device: GraphDevice, o: { chunkBytes?: number } = {}): GraphPlan {
  const objective = objectiveOf(s);
  const rows = s.batch * rowsPerItem(objective);
  return {
    batch: rows,
    objective,
    seq: s.seqLen,
    dynamicSeq: !s.staticSeq,
    // The run's targets in this model's projection names (Phi-3's fused qkv_proj, gate_up_proj).
    lora: resolveLora(cfg, s.lora),
    quantize: s.quantize,
    blockSize: s.blockSize,
    checkpointLayers: s.checkpointLayers,
    // Two-level checkpointing: about 2 sqrt(L) layer inputs stay alive instead of L, for one more forward pass.
    checkpointGroup: s.checkpointLayers ? Math.max(1, Math.round(Math.sqrt(cfg.numLayers))) : 1,
    // QLoRA's point is memory: the float embedding table (2 GiB at 128k x 4096) stays out of the session.
    hostEmbeddings: s.quantize,
    chunks: chunkPlan(cfg, rows, s.seqLen, s.blockSize, o.chunkBytes ?? CHUNK_BYTES, device.maxWeightBytes),
    computeDtype: device.computeDtype,
    maxWeightBytes: device.maxWeightBytes,
  };
}

/**
 * Finch's lowest-memory QLoRA recipe: the adapter of torchtune's Llama 3 8B QLoRA config (r=8,
 * alpha 16, all seven projections; recipes/configs/llama3/8B_qlora_single_device.yaml), 4-bit
 * blocks of 64 as QLoRA's NF4, and gradient checkpointing; the plan adds host embeddings and
 * groups of about sqrt(L) layers.
 */
export function leanQloraSettings(batch: number, seq: number): GraphSettings {
  return {
    batch, seqLen: seq, lora: { rank: 8, alpha: 16, dropout: 0, rslora: false, targets: LORA_TARGETS },
    quantize: true, blockSize: 64, checkpointLayers: true, staticSeq: true,
  };
}

/**
 * Why a run cannot have this sequence length, or null: more tokens than the model's
 * max_position_embeddings. Refused, not capped, in every door (`finch train` through the trainer,
 * the app's startRun before it queues the run): a capped run would train on other rows than its
 * settings say.
 */
export function seqLenRefusal(seqLen: number, config: ModelConfig, modelDir: string): { message: string; hint: string } | null {
  const max = config.maxPositionEmbeddings;
  if (seqLen <= max) return null;
  return { message: `a sequence length of ${seqLen} tokens is more than ${modelDir} takes: its max_position_embeddings is ${max}`, hint: `set the sequence length to ${max} or less` };
}
