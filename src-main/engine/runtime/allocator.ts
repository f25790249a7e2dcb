// The C allocator setting of the processes that run training steps (Linux, glibc). ONNX Runtime's
// CPU provider, without its arena, takes every activation buffer from malloc. glibc serves a large
// request from its own mapping (returned to the system on free) only above a threshold that it
// raises, by default, to the size of every large block freed, up to 32 MiB: after the first freed
// 32 MiB dequantized weight, every activation below that size is carved from the heap, and the
// heap keeps the high-water mark of a step's shifting sizes. Below the threshold the heap still
// holds what a step frees under a block that lives on (a layer's LoRA gradients, 128-448 KiB each,
// kept until the update): at 1 MiB the lean 8B QLoRA plan at 512 tokens kept ~50 MiB a layer that
// way. Fixed at 64 KiB (docs/memory.md, measured on that plan): private memory 2 layers 1,623 MiB
// at the default, 751 at 1 MiB; 8 layers 1,229 at 1 MiB, 812 at 64 KiB (16 KiB: the same), at the
// same CPU time and 10% more page faults.
//
// The threshold is read when a process starts (GLIBC_TUNABLES), so it is set in the environment of
// the processes that train: the job host (services/jobs.ts, electron/jobs.ts), `finch train` and
// `finch demo` (bin/finch.mjs starts itself again with it) and the benchmarks' children. Other
// systems' allocators return large blocks on their own; there the variable is inert.

/** glibc's tunable: every allocation of 64 KiB or more gets its own mapping, returned on free. */
export const MMAP_THRESHOLD_TUNABLE = 'glibc.malloc.mmap_threshold=65536';

/** True when `env` already sets the threshold (this process or a child started with it). */
export function allocatorTuned(env: NodeJS.ProcessEnv): boolean {
  return (env.GLIBC_TUNABLES ?? '').split(':').some((t) => t.startsWith('glibc.malloc.mmap_threshold='));
}

/** A copy of `env` with the threshold added to GLIBC_TUNABLES (the user's own threshold, if set, is kept). */
export function withTunedAllocator(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (allocatorTuned(env)) return { ...env };
  return { ...env, GLIBC_TUNABLES: env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${MMAP_THRESHOLD_TUNABLE}` : MMAP_THRESHOLD_TUNABLE };
}
