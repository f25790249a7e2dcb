// What a training run reports, in one vocabulary: the trainer emits these events, `finch train
// --json` prints each as one line (a documented interface: fields are added, never renamed), the job
// host forwards them, and the app hands them to the renderer unchanged, tagged with their run
// (api.ts RunTrainEvent: `step` arrives as 'run-step' with the same fields). Plain data only.

import type { PROVIDER_NAMES } from './choices.js';

/**
 * What a run is doing, in order: opening the model, 4-bit quantization (QLoRA), preparing the
 * data, building the graphs, creating the ONNX Runtime sessions, then optimizer steps with
 * evaluations and checkpoints between them. Pause and cancel take effect at the next boundary of
 * any phase (train/control.ts says where the boundaries are).
 */
export const TRAIN_PHASES = ['loading', 'quantizing', 'data', 'graphs', 'sessions', 'training', 'evaluating', 'checkpoint'] as const;
export type TrainPhase = (typeof TRAIN_PHASES)[number];

export type TrainEvent =
  | { event: 'device' } & DeviceRecord
  /** Before step 1: seconds spent in each phase since the run started (load includes 4-bit quantization or the cache read). */
  | { event: 'ready'; load_s: number; data_s: number; graph_s: number; session_s: number; total_s: number; int4_source: 'cache' | 'quantized' | null }
  | { event: 'prepared'; train_sequences: number; val_sequences: number; seq_len: number; truncated: number; total_steps: number; notes: string[];
    /** How micro-batches are shaped (seq_len is the longest), and the share of padding tokens in the first epoch's micro-batches. */
    batch_shape: 'own-longest' | 'dataset-longest'; pad_multiple: number; group_by_length: boolean; padding_fraction: number }
  /** A preference run's steps (and evaluations) also carry its pairs' reward metrics (RewardMetrics). */
  | ({ event: 'step'; step: number; total_steps: number; loss: number; lr: number; grad_norm: number; tokens_per_s: number; elapsed_s: number; eta_s: number; rss_mb: number } & Partial<RewardMetrics>)
  /** perplexity is exp(eval_loss): the perplexity of the answers for SFT, of no meaning for a preference loss. */
  | ({ event: 'eval'; step: number; eval_loss: number; perplexity: number } & Partial<RewardMetrics>)
  | { event: 'checkpoint'; step: number; path: string }
  /** A phase begins (`step`: optimizer steps done so far). */
  | { event: 'phase'; phase: TrainPhase; step: number }
  /** Held by a pause at a boundary of `phase`, after `step` steps; 'continued' when it goes on. */
  | { event: 'paused'; step: number; phase: TrainPhase }
  | { event: 'continued'; step: number; phase: TrainPhase }
  | { event: 'resumed'; step: number }
  | { event: 'note'; message: string }
  /** `adapter`: the final adapter folder, or the last checkpoint of a cancelled run ('' if none). */
  | { event: 'done'; adapter: string; steps: number; loss: number | null; eval_loss: number | null; status: 'completed' | 'cancelled' };

/**
 * A preference run's implicit rewards over its pairs (a step's, or the held-out ones'), as TRL
 * logs them: the means of each side's reward (rewards/chosen, rewards/rejected), of their margin
 * (rewards/margins), and the share of pairs whose chosen reward is the higher (rewards/accuracies).
 */
export interface RewardMetrics {
  rewards_chosen: number;
  rewards_rejected: number;
  reward_margin: number;
  reward_accuracy: number;
}

export type TrainEventName = TrainEvent['event'];
/** One kind of event, e.g. TrainEventOf<'step'>. */
export type TrainEventOf<K extends TrainEventName> = Extract<TrainEvent, { event: K }>;

/** Where a run's graphs execute, as recorded in run.json and printed at the start. */
export interface DeviceRecord {
  provider: (typeof PROVIDER_NAMES)[number];
  /** The WebGPU adapter expected to run the graphs (listed by Dawn; ORT cannot confirm its own). */
  adapter: GpuAdapterRecord | null;
  reason: string;
  strict: boolean;
  /** Nodes ORT runs on the CPU instead of `provider` (none under strict, where they are an error). */
  fallback_nodes: { op: string; name: string }[];
  /** Why fallback_nodes was not probed (inside the desktop app a job cannot start the Node process the probe needs); absent when it was. */
  fallback_unchecked?: string;
  /** The frozen path's dtype (float16 only where the provider has its kernels). */
  compute_dtype?: 'float32' | 'float16';
  /** Why that dtype (what was asked, and what `auto` saw on the adapter). */
  compute_dtype_reason?: string;
  /** The largest frozen weight the device takes in one buffer (larger ones are split); null = no limit. */
  max_weight_bytes?: number | null;
}

/**
 * The WebGPU adapter of a run, as Dawn describes it (engine/runtime/providers.ts GpuAdapter): the
 * fields that name it; the record also carries Dawn's flags and limits (software, shaderF16, ...).
 */
export interface GpuAdapterRecord {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}
