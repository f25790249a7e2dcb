// The one module that imports onnxruntime-node: session creation for an execution provider with
// thread settings, tensor conversion, and typed run results. Everything else speaks plain arrays.

import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { DType } from '../graph/dtype.js';
import type { SerializedModel } from '../onnx/writer.js';

/**
 * The execution providers Finch's graphs run on. The app's contract keeps its own copy
 * (src-shared/api.ts PROVIDER_NAMES: the renderer cannot import the engine); services/system.ts
 * fails to compile when the two differ.
 */
export const PROVIDERS = ['cpu', 'webgpu', 'dml', 'cuda', 'coreml'] as const;
export type Provider = (typeof PROVIDERS)[number];

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
  /**
   * Record ONNX Runtime's profile (every node's start and duration, Chrome trace JSON) to a file
   * named from this path prefix; Session.endProfiling() writes it and returns its path.
   */
  profilePrefix?: string;
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

/**
 * Host bytes crossing into and out of a session's runs: on a GPU provider, what is copied between
 * host and device per run (frozen weights are initializers, uploaded once at session creation).
 */
export interface HostTraffic {
  fed: number;
  fetched: number;
}

/** True when the provider can keep outputs in device memory between runs (onnxruntime-node: WebGPU only). */
export const keepsOutputsOnDevice = (provider: Provider): boolean => provider === 'webgpu';

/**
 * An output ONNX Runtime left in device memory (a WebGPU buffer): fed back as an input, of this or
 * another session, without passing through the host; DeviceDownloader (download.ts) copies it out.
 * Dispose it once replaced: the garbage collector does not see device memory, and a forgotten
 * tensor stays allocated (measured on lavapipe: RSS grew by every undisposed output).
 */
export class DeviceTensor {
  /** Tensors created and not yet disposed, in this process: leak checks read it. */
  static live = 0;
  readonly dtype: DType;
  readonly dims: readonly number[];
  private tensor: ort.Tensor | null;

  constructor(t: ort.Tensor) {
    this.tensor = t;
    this.dims = [...t.dims];
    this.dtype = fromOrtType(t.type);
    DeviceTensor.live++;
  }

  get disposed(): boolean { return this.tensor === null; }

  /** The ORT tensor to feed (this module only). */
  ortTensor(): ort.Tensor {
    if (!this.tensor) throw new Error('DeviceTensor: used after dispose');
    return this.tensor;
  }

  dispose(): void {
    if (!this.tensor) return;
    this.tensor.dispose();
    this.tensor = null;
    DeviceTensor.live--;
  }
}

/** A session input: from the host (copied in by the run) or already on the device. */
export type Feed = HostTensor | DeviceTensor;

export function toOrt(t: HostTensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`cannot feed a ${t.dtype} tensor to ONNX Runtime`);
  return new ort.Tensor(type, t.data as never, t.dims as number[]);
}

const fromOrtType = (type: ort.Tensor.Type): DType => (Object.entries(ORT_TYPE).find(([, v]) => v === type)?.[0] ?? 'float32') as DType;

export function fromOrt(t: ort.Tensor): HostTensor {
  return { dtype: fromOrtType(t.type), dims: [...t.dims], data: t.data as HostArray };
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
  if (o.profilePrefix) {
    opts.enableProfiling = true;
    opts.profileFilePrefix = o.profilePrefix;
  }
  if (externalData?.length) opts.externalData = externalData.map((e) => ({ path: e.path, data: e.data }));
  return opts;
}

export class Session {
  /** Sessions created and released by this process so far: what a test counts to see what is kept open. */
  static readonly count = { created: 0, released: 0 };
  /** Sessions created and not yet released, in this process: leak checks read it (as DeviceTensor.live). */
  static get live(): number {
    return Session.count.created - Session.count.released;
  }
  private released = false;

  private constructor(readonly inner: ort.InferenceSession, readonly provider: Provider, private readonly profilePrefix: string | null) {}

  static async create(model: string | SerializedModel, o: SessionOptions = {}): Promise<Session> {
    const opts = sessionOptions(o, typeof model === 'string' ? undefined : model.externalData);
    const inner = typeof model === 'string'
      ? await ort.InferenceSession.create(model, opts)
      : await ort.InferenceSession.create(model.bytes, opts);
    Session.count.created++;
    return new Session(inner, o.provider ?? 'cpu', o.profilePrefix ?? null);
  }

  get inputNames(): readonly string[] { return this.inner.inputNames; }
  get outputNames(): readonly string[] { return this.inner.outputNames; }

  /** Bytes of host tensors fed to, and host outputs returned by, this session's runs (see HostTraffic). */
  readonly traffic: HostTraffic = { fed: 0, fetched: 0 };

  /** Runs with host or device tensors in and host tensors out (the session must keep no output on the device). */
  async run(feeds: Record<string, Feed>, fetches?: string[]): Promise<Record<string, HostTensor>> {
    const { host, device } = await this.runKeeping(feeds, fetches);
    const kept = Object.keys(device);
    if (kept.length) {
      for (const t of Object.values(device)) t.dispose();
      throw new Error(`Session.run: outputs ${kept.join(', ')} stay on the device; use runKeeping`);
    }
    return host;
  }

  /**
   * Runs with host or device tensors in; outputs named in outputsOnDevice come back as
   * DeviceTensors (owned by the caller, who disposes them), the others as host tensors.
   */
  async runKeeping(feeds: Record<string, Feed>, fetches?: string[]): Promise<{ host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }> {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      if (v instanceof DeviceTensor) f[k] = v.ortTensor();
      else {
        f[k] = toOrt(v);
        this.traffic.fed += v.data.byteLength;
      }
    }
    const out = fetches ? await this.inner.run(f, fetches) : await this.inner.run(f);
    const host: Record<string, HostTensor> = {}, device: Record<string, DeviceTensor> = {};
    for (const [k, v] of Object.entries(out)) {
      if (v.location === 'gpu-buffer') device[k] = new DeviceTensor(v);
      else {
        host[k] = fromOrt(v);
        this.traffic.fetched += host[k].data.byteLength;
      }
    }
    return { host, device };
  }

  /**
   * Ends the profile of a session created with profilePrefix and returns the file ONNX Runtime
   * wrote (<prefix>_<date and time>.json; the binding does not return its name: the newest match).
   */
  endProfiling(): string {
    if (!this.profilePrefix) throw new Error('Session.endProfiling: the session was created without profilePrefix');
    this.inner.endProfiling();
    const dir = dirname(this.profilePrefix), stem = basename(this.profilePrefix);
    const files = readdirSync(dir).filter((f) => f.startsWith(`${stem}_`) && f.endsWith('.json')).map((f) => join(dir, f));
    if (!files.length) throw new Error(`Session.endProfiling: ONNX Runtime wrote no profile ${this.profilePrefix}_*.json`);
    return files.reduce((a, b) => (statSync(a).mtimeMs >= statSync(b).mtimeMs ? a : b));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    Session.count.released++;
    await this.inner.release();
  }
}
