// Where a run's frozen path is computed in float16, and how large one weight may be on the device:
// the two device facts the model's graphs need (model/weights/graph-weights.ts DeviceOptions) from
// the chosen provider (engine/runtime/providers.ts).
//
// float16 needs float16 kernels for every op of the frozen path (Cast, Gemm, MatMulNBits,
// DequantizeLinear, Gather, Concat, Where): ONNX Runtime's WebGPU provider has them when the
// adapter offers `shader-f16` (the provider asks for that feature whenever the adapter has it),
// CUDA and DirectML have them; the CPU provider has no float16 Gemm.
// `auto` picks float16 only on a hardware WebGPU adapter with shader-f16: a software adapter
// (lavapipe) emulates the GPU on the CPU, where float16 saves nothing, and the CUDA and DirectML
// float16 paths have not been run by Finch's tests.

import { COMPUTE_DTYPE_CHOICES } from '../../src-shared/choices.js';
import { type ProviderDecision, WEBGPU_DEFAULT_BINDING_BYTES, adapterName } from '../engine/runtime/providers.js';
import type { ComputeDtype } from '../model/weights/graph-weights.js';
import type { GraphDevice } from './plan.js';

export { COMPUTE_DTYPE_CHOICES };
export type ComputeDtypeChoice = (typeof COMPUTE_DTYPE_CHOICES)[number];

/** The dtype of the frozen path for a requested choice on the chosen provider; an impossible request throws. */
export function resolveComputeDtype(choice: ComputeDtypeChoice, d: Pick<ProviderDecision, 'provider' | 'adapter'>): { dtype: ComputeDtype; reason: string } {
  const hardwareF16 = d.provider === 'webgpu' && !!d.adapter && !d.adapter.software && d.adapter.shaderF16;
  if (choice === 'float32') return { dtype: 'float32', reason: 'float32 (requested)' };
  if (choice === 'auto') {
    return hardwareF16
      ? { dtype: 'float16', reason: `float16: ${adapterName(d.adapter!)} offers shader-f16` }
      : { dtype: 'float32', reason: d.provider === 'webgpu' && d.adapter?.software ? 'float32: a software WebGPU adapter gains nothing from float16' : `float32: float16 is chosen automatically only on a hardware WebGPU adapter with shader-f16` };
  }
  if (d.provider === 'cpu' || d.provider === 'coreml') {
    throw new Error(`--compute-dtype float16: the ${d.provider} provider has no float16 kernels for the frozen path (no float16 Gemm); use a GPU provider (--provider webgpu, cuda or dml) or --compute-dtype float32`);
  }
  if (d.provider === 'webgpu') {
    if (!d.adapter) throw new Error('--compute-dtype float16: no WebGPU adapter was listed, so shader-f16 cannot be confirmed; run `finch doctor` or use --compute-dtype float32');
    if (!d.adapter.shaderF16) throw new Error(`--compute-dtype float16: the WebGPU adapter ${adapterName(d.adapter)} has no shader-f16 feature; use --compute-dtype float32`);
  }
  return { dtype: 'float16', reason: `float16 (requested) on ${d.provider}` };
}

/**
 * The largest buffer one frozen weight may take on the provider: a WebGPU adapter's
 * maxStorageBufferBindingSize (or maxBufferSize if smaller; ONNX Runtime requests the adapter's
 * own limits), the spec default when the adapter is unknown, and no limit elsewhere.
 */
export function maxWeightBytes(d: Pick<ProviderDecision, 'provider' | 'adapter'>): number {
  if (d.provider !== 'webgpu') return Infinity;
  if (!d.adapter) return WEBGPU_DEFAULT_BINDING_BYTES;
  return Math.min(d.adapter.maxStorageBufferBindingSize, d.adapter.maxBufferSize);
}

/** Both device facts of a provider decision, as a graph plan takes them (train/plan.ts), and why that dtype; an impossible dtype request throws. */
export function graphDevice(d: Pick<ProviderDecision, 'provider' | 'adapter'>, choice: ComputeDtypeChoice): GraphDevice & { computeDtypeReason: string } {
  const { dtype, reason } = resolveComputeDtype(choice, d);
  return { computeDtype: dtype, computeDtypeReason: reason, maxWeightBytes: maxWeightBytes(d) };
}
