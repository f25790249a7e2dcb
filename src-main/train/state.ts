// The trainable state between optimizer steps: the LoRA parameters and their AdamW moments.
//
// On a provider that can keep outputs in device memory (WebGPU), the state lives there from the
// first step on: each step is fed the device tensors the previous step returned ("new:<name>",
// "new_m:<name>", "new_v:<name>"), so only the batch, the lr and step scalars go up and the loss
// and gradient norm come down. The state reaches the host only when asked (toHost): checkpoints,
// the final adapter. The frozen weights are session initializers, uploaded once.
// Elsewhere (CPU; CUDA and DirectML, where onnxruntime-node returns every output on the host) the
// state is host arrays, fed and read back each step.

import { DeviceDownloader } from '../engine/runtime/download.js';
import { DeviceTensor, type Feed, type HostTensor, type Provider } from '../engine/runtime/session.js';
import type { LoraParam } from '../model/lora.js';
import type { OptimizerTensors } from './checkpoint.js';

type Slot = Float32Array | DeviceTensor;
const KINDS = ['params', 'm', 'v'] as const;
/** Input name prefix and updated-output prefix of each kind (step.ts graph I/O names). */
const INPUT = { params: '', m: 'm:', v: 'v:' } as const;
const OUTPUT = { params: 'new:', m: 'new_m:', v: 'new_v:' } as const;

export class TrainableState {
  private readonly slots: Record<(typeof KINDS)[number], Map<string, Slot>>;
  private readonly downloader: DeviceDownloader | null;
  /** The host copy of the current state, once downloaded (dropped at the next update). */
  private hostCopy: OptimizerTensors | null = null;

  /**
   * @param host the initial state (fresh or restored), fed from the host by the first step
   * @param onDevice keep the updated state on the device (only where keepsOutputsOnDevice(provider))
   */
  constructor(private readonly params: readonly LoraParam[], host: OptimizerTensors, readonly onDevice: boolean, provider: Provider) {
    this.slots = { params: new Map(host.params), m: new Map(host.m), v: new Map(host.v) };
    this.downloader = onDevice ? new DeviceDownloader(provider) : null;
  }

  /** The step-graph outputs a session should leave on the device (none when the state is on the host). */
  static deviceOutputs(params: readonly LoraParam[], onDevice: boolean): string[] {
    return onDevice ? params.flatMap((p) => KINDS.map((k) => `${OUTPUT[k]}${p.name}`)) : [];
  }

  /** The LoRA parameters by input name. */
  paramFeeds(): Record<string, Feed> {
    return this.feeds('params');
  }

  /** The moments "m:<name>", "v:<name>". */
  momentFeeds(): Record<string, Feed> {
    return { ...this.feeds('m'), ...this.feeds('v') };
  }

  /**
   * Takes the updated state from a step's outputs (on the device or the host, as the session was
   * told), disposing the device tensors it replaces.
   */
  update(host: Record<string, HostTensor>, device: Record<string, DeviceTensor>): void {
    for (const k of KINDS) {
      for (const p of this.params) {
        const name = `${OUTPUT[k]}${p.name}`;
        const next: Slot | undefined = device[name] ?? (host[name]?.data as Float32Array | undefined);
        if (!next) throw new Error(`the step returned no ${name}`);
        const old = this.slots[k].get(p.name);
        if (old instanceof DeviceTensor) old.dispose();
        this.slots[k].set(p.name, next);
      }
    }
    this.hostCopy = null;
  }

  /** The state on the host (downloaded once per update when it lives on the device). */
  async toHost(): Promise<OptimizerTensors> {
    if (this.hostCopy) return this.hostCopy;
    const onDevice: { kind: (typeof KINDS)[number]; name: string; t: DeviceTensor }[] = [];
    const out: OptimizerTensors = { params: new Map(), m: new Map(), v: new Map() };
    for (const k of KINDS) {
      for (const [name, s] of this.slots[k]) {
        if (s instanceof DeviceTensor) onDevice.push({ kind: k, name, t: s });
        else out[k].set(name, s);
      }
    }
    const copies = onDevice.length ? await this.downloader!.download(onDevice.map((d) => d.t)) : [];
    onDevice.forEach((d, i) => out[d.kind].set(d.name, copies[i]!.data as Float32Array));
    this.hostCopy = out;
    return out;
  }

  /** Frees the device tensors and the download session; the state is unusable afterwards. */
  async release(): Promise<void> {
    for (const k of KINDS) {
      for (const s of this.slots[k].values()) if (s instanceof DeviceTensor) s.dispose();
      this.slots[k].clear();
    }
    await this.downloader?.release();
  }

  private feeds(kind: (typeof KINDS)[number]): Record<string, Feed> {
    const f: Record<string, Feed> = {};
    for (const p of this.params) {
      const s = this.slots[kind].get(p.name)!;
      f[`${INPUT[kind]}${p.name}`] = s instanceof DeviceTensor ? s : { dtype: 'float32', dims: p.shape, data: s };
    }
    return f;
  }
}

/** Disposes the device tensors of a step whose outputs are not kept (the NaN guard refused them). */
export function discard(device: Record<string, DeviceTensor>): void {
  for (const t of Object.values(device)) t.dispose();
}
