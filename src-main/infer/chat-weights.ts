// How the compare view holds a model's frozen weights. Float32 is exact, but it is 4 bytes a
// parameter: Llama 3 8B would need 32 GB. 4-bit blocks with int8 activations are a quarter of that
// and decode about twice as fast as 4-bit with float activations (docs/perf.md "int8 activations"),
// so a model whose float32 weights would take too much of the machine's memory is chatted with in
// 4 bits, as `finch generate --4bit` runs it.

import type { ChatWeights } from '../../src-shared/api.js';
import { parameterCount } from '../model/config.js';
import type { ModelConfig } from '../model/types.js';

/** The share of the machine's memory float32 weights may take; above it the chat loads 4-bit weights. */
export const FLOAT_CHAT_MEMORY_SHARE = 0.4;

/** The environment variable that overrides the choice: auto (the default), float32 or 4bit. */
export const CHAT_WEIGHTS_ENV = 'FINCH_CHAT_WEIGHTS';

/**
 * float32 when the model's float32 parameters fit in FLOAT_CHAT_MEMORY_SHARE of `totalMemoryBytes`
 * (room for the KV cache, the app and the rest of the machine), else 4bit; `override` (the
 * environment's FINCH_CHAT_WEIGHTS) decides when it is float32 or 4bit.
 */
export function chatWeights(cfg: ModelConfig, totalMemoryBytes: number, override: string | undefined): ChatWeights {
  const choice = override?.trim() || 'auto';
  if (choice === 'float32' || choice === '4bit') return choice;
  if (choice !== 'auto') throw new Error(`${CHAT_WEIGHTS_ENV}="${override}" is not a choice: use auto, float32 or 4bit (or leave it unset)`);
  return 4 * parameterCount(cfg) <= FLOAT_CHAT_MEMORY_SHARE * totalMemoryBytes ? 'float32' : '4bit';
}
