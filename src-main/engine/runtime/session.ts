// The one module that imports onnxruntime-node: session creation for an execution provider with
// thread settings, tensor conversion, and typed run results. Everything else speaks plain arrays.

import * as ort from 'onnxruntime-node';
import type { DType } from '../graph/dtype.js';
import type { SerializedModel } from '../onnx/writer.js';
import type { ProviderName } from '../../../src-shared/api.js';

/** An execution provider (src-shared/api.ts PROVIDER_NAMES). */
export type Provider = ProviderName;

export interface SessionOptions {
  provider?: Provider;
  /** Intra-op threads (CPU provider); 0 lets ONNX Runtime decide. */
  threads?: number;
  /** Fail session creation if any node would fall back to the CPU provider. */
  disableCpuFallback?: boolean;
  /** Keep DequantizeLinear->MatMul exact (ORT otherwise fuses it with int8 activations). */
  exactQuantizedMatMul?: boolean;
  /** Graph optimization level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Outputs to leave on the device (WebGPU), e.g. parameters and optimizer state. */
  outputsOnDevice?: string[];
  logVerbose?: boolean;
  /** Let kernels repack constant weights at load (MatMulNBits: MLAS layout). Default true. */
  prepackWeights?: boolean;
  /**
   * ORT's BFC arena on the CPU. Default off: on a QLoRA training step it raised peak RSS by 75%
   * (the arena grows in doubling extensions and keeps them); it saves page faults, not compute.
   */
  cpuMemArena?: boolean;
  /**
   * ORT's memory pattern (one planned block for all activations, from the second run on).
   * Default off: +23% peak RSS on a QLoRA training step, no measurable speed-up.
   */
  memPattern?: boolean;
}

export type HostArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Int8Array;

export interface HostTensor {
  dtype: DType;
  dims: readonly number[];
  data: HostArray;
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', float64: 'float64', float16: 'float16', int64: 'int64', int32: 'int32',
  int8: 'int8', uint8: 'uint8', bool: 'bool',
};

export function toOrt(t: HostTensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`cannot feed a ${t.dtype} tensor to ONNX Runtime`);
  return new ort.Tensor(type, t.data as never, t.dims as number[]);
}

export function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = (Object.entries(ORT_TYPE).find(([, v]) => v === t.type)?.[0] ?? 'float32') as DType;
  return { dtype, dims: [...t.dims], data: t.data as HostArray };
}

export function availableProviders(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

function sessionOptions(o: SessionOptions, externalData?: SerializedModel['externalData']): ort.InferenceSession.SessionOptions {
  const provider = o.provider ?? 'cpu';
  // Session config entries ("session.disable_cpu_ep_fallback"): the binding flattens nested keys with dots.
  const session: Record<string, string> = {};
  if (o.disableCpuFallback) session.disable_cpu_ep_fallback = '1';
  if (o.exactQuantizedMatMul ?? true) session.qdq_matmulnbits_accuracy_level = '0';
  if (o.prepackWeights === false) session.disable_prepacking = '1';
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: o.optimization ?? 'all',
    intraOpNumThreads: o.threads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: o.cpuMemArena ?? false,
    enableMemPattern: o.memPattern ?? false,
    logSeverityLevel: o.logVerbose ? 0 : 3,
    extra: { session },
  };
  if (o.outputsOnDevice?.length && provider === 'webgpu') {
    opts.preferredOutputLocation = Object.fromEntries(o.outputsOnDevice.map((n) => [n, 'gpu-buffer']));
  }
  if (externalData?.length) opts.externalData = externalData.map((e) => ({ path: e.path, data: e.data }));
  return opts;
}

export class Session {
  private constructor(readonly inner: ort.InferenceSession, readonly provider: Provider) {}

  static async create(model: string | SerializedModel, o: SessionOptions = {}): Promise<Session> {
    const opts = sessionOptions(o, typeof model === 'string' ? undefined : model.externalData);
    const inner = typeof model === 'string'
      ? await ort.InferenceSession.create(model, opts)
      : await ort.InferenceSession.create(model.bytes, opts);
    return new Session(inner, o.provider ?? 'cpu');
  }

  get inputNames(): readonly string[] { return this.inner.inputNames; }
  get outputNames(): readonly string[] { return this.inner.outputNames; }

  /** Runs with host tensors in and host tensors out. */
  async run(feeds: Record<string, HostTensor>, fetches?: string[]): Promise<Record<string, HostTensor>> {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = toOrt(v);
    const out = fetches ? await this.inner.run(f, fetches) : await this.inner.run(f);
    const r: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(out)) r[k] = fromOrt(v);
    return r;
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}
