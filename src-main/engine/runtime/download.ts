// Copying device tensors (WebGPU buffers that a session kept on the device) to the host.
//
// onnxruntime-node cannot download such a tensor itself: its Tensor.getData() on a 'gpu-buffer'
// output throws from native code and aborts the process (onnxruntime-node 1.30, measured on
// lavapipe). What works is a second session on the same provider: an Identity per tensor whose
// outputs stay on the host, so ONNX Runtime copies the buffers out during the run. All WebGPU
// sessions of a process share one device, so any session's outputs can be fed to it.

import type { DType } from '../graph/dtype.js';
import { Graph } from '../graph/graph.js';
import * as F from '../graph/ops.js';
import { serializeModel } from '../onnx/writer.js';
import { type DeviceTensor, type HostTensor, type Provider, Session } from './session.js';

/** Downloads device tensors of one provider; keeps one copy session per list of (dtype, rank). */
export class DeviceDownloader {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly provider: Provider) {}

  /** Host copies of `tensors`, in order, in one session run. */
  async download(tensors: readonly DeviceTensor[]): Promise<HostTensor[]> {
    if (tensors.length === 0) return [];
    const kinds = tensors.map((t) => ({ dtype: t.dtype, rank: t.dims.length }));
    const key = kinds.map((k) => `${k.dtype}/${k.rank}`).join(',');
    let session = this.sessions.get(key);
    if (!session) {
      session = await Session.create(serializeModel(copyGraph(kinds)), { provider: this.provider });
      this.sessions.set(key, session);
    }
    const out = await session.run(Object.fromEntries(tensors.map((t, i) => [`in${i}`, t])));
    return tensors.map((_, i) => out[`out${i}`]!);
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
  }
}

/** in<i> -> Identity -> out<i>, with symbolic dimensions so one session serves any shapes of these ranks. */
function copyGraph(kinds: readonly { dtype: DType; rank: number }[]): Graph {
  const g = new Graph('download');
  kinds.forEach((k, i) => {
    const x = g.input(`in${i}`, k.dtype, Array.from({ length: k.rank }, (_, d) => `in${i}_d${d}`));
    g.output(F.identity(x), `out${i}`);
  });
  return g;
}
