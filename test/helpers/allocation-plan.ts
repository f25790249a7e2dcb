// ONNX Runtime's CPU allocation plan of a graph, simulated: what train/memory.ts's activation
// model is held to (test/train/memory.test.ts, memory-families.test.ts).
import { DTYPE_BITS, numel } from '../../src-main/engine/graph/dtype.js';
import type { Graph, Tensor } from '../../src-main/engine/graph/graph.js';

/**
 * Bytes of activation buffers ONNX Runtime's CPU allocation plan holds for a graph, simulated: in
 * node order, each output of at least 64 KiB takes a freed buffer of exactly its byte size or a new
 * one, and a tensor's buffer is freed after its last reader (Reshape, Squeeze, Unsqueeze, Identity
 * alias their input). Returns the sum over sizes of size x the most buffers of it held at once.
 */
export function simulatedActivationBytes(g: Graph): number {
  const ALIAS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Identity']);
  const bytesOf = (t: Tensor) => (t.shape.every((d) => typeof d === 'number') ? Math.ceil((numel(t.shape as number[]) * DTYPE_BITS[t.dtype]) / 8) : 0);
  const lastUse = new Map<Tensor, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((t) => t && lastUse.set(t, i)));
  const kept = new Set(g.outputs), isStatic = (t: Tensor) => g.initializers.has(t.name) || g.inputs.includes(t);
  const owner = new Map<Tensor, Tensor>(), refs = new Map<Tensor, number>(), live = new Map<Tensor, number>();
  const free = new Map<number, number>(), pool = new Map<number, number>();
  const release = (t: Tensor) => {
    const o = owner.get(t);
    if (!o || !live.has(o)) return;
    refs.set(o, refs.get(o)! - 1);
    if (refs.get(o)! > 0) return;
    free.set(live.get(o)!, (free.get(live.get(o)!) ?? 0) + 1);
    live.delete(o);
  };
  g.nodes.forEach((n, i) => {
    for (const t of n.outputs) {
      const src = n.inputs[0];
      if (ALIAS.has(n.op) && src && !isStatic(src)) {
        const o = owner.get(src) ?? src;
        owner.set(t, o);
        refs.set(o, (refs.get(o) ?? 1) + 1);
        continue;
      }
      const b = bytesOf(t);
      if (b < 65536) continue;
      owner.set(t, t); refs.set(t, 1); live.set(t, b);
      if ((free.get(b) ?? 0) > 0) free.set(b, free.get(b)! - 1);
      else pool.set(b, (pool.get(b) ?? 0) + 1);
    }
    for (const t of new Set(n.inputs)) if (t && lastUse.get(t) === i && !kept.has(t)) release(t);
    for (const t of n.outputs) if (!lastUse.has(t) && !kept.has(t)) release(t);
  });
  return [...pool].reduce((s, [b, c]) => s + b * c, 0);
}
