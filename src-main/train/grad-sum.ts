// Gradient accumulation with the training state on the device (train/state.ts): the micro-batches'
// LoRA gradients stay there too. A small graph adds each micro-batch's gradients, weighted by its
// share of the step's trained tokens (n_i / N, trainer.ts runStep), to the running sum, which is
// then the update graph's "grad:<name>" input. The sum is float32 on the device where the host
// path sums in float64: the two differ by float32 rounding (~1e-7 relative).

import { Graph } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { DeviceTensor, type Feed, type HostTensor, Session, type SessionOptions } from '../engine/runtime/session.js';
import type { LoraParam } from '../model/lora.js';

const scalar = (v: number): HostTensor => ({ dtype: 'float32', dims: [], data: Float32Array.of(v) });

/** sum:<name> = keep * acc:<name> + weight * grad:<name> for every LoRA matrix. */
export function buildGradientSum(params: readonly LoraParam[]): Graph {
  const g = new Graph('grad_sum');
  const keep = g.input('keep', 'float32', []), weight = g.input('weight', 'float32', []);
  for (const p of params) {
    const acc = g.input(`acc:${p.name}`, 'float32', p.shape), grad = g.input(`grad:${p.name}`, 'float32', p.shape);
    g.output(F.add(F.mul(acc, keep), F.mul(grad, weight)), `sum:${p.name}`);
  }
  return g;
}

/** The running sum of one optimizer step's micro-batch gradients, on the device. */
export class DeviceGradientSum {
  private sum: Record<string, DeviceTensor> | null = null;

  private constructor(private readonly params: readonly LoraParam[], private readonly session: Session) {}

  static async open(params: readonly LoraParam[], opts: SessionOptions): Promise<DeviceGradientSum> {
    const session = await Session.create(serializeModel(buildGradientSum(params)), { ...opts, outputsOnDevice: params.map((p) => `sum:${p.name}`) });
    return new DeviceGradientSum(params, session);
  }

  /** The gradient outputs a gradient session should leave on the device. */
  static deviceOutputs(params: readonly LoraParam[]): string[] {
    return params.map((p) => `grad:${p.name}`);
  }

  /** sum += weight * grads, where grads are a micro-batch's "grad:<name>" device outputs (disposed here). */
  async add(grads: Record<string, DeviceTensor>, weight: number): Promise<void> {
    // The first micro-batch has no sum yet: its own gradients stand in for it, multiplied by 0.
    const f: Record<string, Feed> = { keep: scalar(this.sum ? 1 : 0), weight: scalar(weight) };
    for (const p of this.params) {
      f[`grad:${p.name}`] = grads[`grad:${p.name}`]!;
      f[`acc:${p.name}`] = this.sum ? this.sum[`sum:${p.name}`]! : grads[`grad:${p.name}`]!;
    }
    const { device } = await this.session.runKeeping(f);
    this.clear();
    for (const t of Object.values(grads)) t.dispose();
    this.sum = device;
  }

  /** The sum as the update graph's "grad:<name>" feeds, or null if nothing was added this step. */
  feeds(): Record<string, Feed> | null {
    if (!this.sum) return null;
    return Object.fromEntries(this.params.map((p) => [`grad:${p.name}`, this.sum![`sum:${p.name}`]!]));
  }

  /** Frees the sum (after the update ran): the next add starts a new one. */
  clear(): void {
    for (const t of Object.values(this.sum ?? {})) t.dispose();
    this.sum = null;
  }

  async release(): Promise<void> {
    this.clear();
    await this.session.release();
  }
}
