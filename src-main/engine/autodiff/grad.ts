// Reverse-mode autodiff over the graph builder: walks the nodes between `wrt` and `loss` backwards,
// asks the rule table (rules.ts) for each node's vector-Jacobian product, and does the bookkeeping
// the rules should not repeat: summing broadcast gradients back to input shapes, accumulating
// gradients of tensors used more than once, skipping inputs that need none, naming nodes
// "<node>/grad/...", recomputing checkpointed segments instead of keeping their activations, and
// dropping backward nodes no gradient uses.

import { isFloat, shapeToString } from '../graph/dtype.js';
import { type Graph, type Node, Tensor } from '../graph/graph.js';
import * as F from '../graph/ops.js';
import { barrier, canBarrier, firstElement } from '../graph/ordering.js';
import { rules, type VjpContext } from './rules.js';

export class AutodiffError extends Error {
  override name = 'AutodiffError';
}

export interface GradOptions {
  /** Gradient of the loss itself (defaults to 1; the loss must then be a scalar). */
  seed?: Tensor;
  /** Recompute checkpoint segments in the backward (default true when the graph has segments). */
  recompute?: boolean;
}

/** Sums `g` over the axes that broadcasting added or stretched, giving a tensor of `like`'s shape. */
export function unbroadcast(g: Tensor, like: Tensor): Tensor {
  if (g.rank === like.rank && g.shape.every((d, i) => d === like.shape[i])) return g;
  const lead = g.rank - like.rank;
  if (lead < 0) throw new AutodiffError(`gradient ${g} has lower rank than its input ${like}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (like.shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
    else if (like.shape[i - lead] !== g.shape[i]) {
      throw new AutodiffError(`gradient ${g} does not broadcast to ${like.name}${shapeToString(like.shape)}`);
    }
  }
  const summed = axes.length ? F.reduceSum(g, axes, true) : g;
  return summed.rank === like.rank && summed.shape.every((d, i) => d === like.shape[i]) ? summed : F.reshapeLike(summed, like);
}

/**
 * Builds the backward of `loss` with respect to `wrt` into loss's graph and returns one gradient
 * per `wrt` tensor (zeros where the loss does not depend on it).
 */
export function grad(loss: Tensor, wrt: readonly Tensor[], opts: GradOptions = {}): Tensor[] {
  const g = loss.graph;
  if (!opts.seed && loss.rank !== 0) throw new AutodiffError(`grad: loss ${loss} must be a scalar (or pass a seed)`);
  for (const w of wrt) {
    if (!isFloat(w.dtype)) throw new AutodiffError(`grad: cannot differentiate with respect to ${w} (not a float tensor)`);
  }

  // 1. Forward: which tensors depend on a wrt tensor (through float values only).
  const active = new Set<string>(wrt.map((t) => t.name));
  const carries = (n: Node) => n.inputs.some((t) => t && active.has(t.name));
  for (const n of g.nodes) {
    if (carries(n)) for (const o of n.outputs) if (isFloat(o.dtype)) active.add(o.name);
  }
  if (!active.has(loss.name)) throw new AutodiffError(`grad: ${loss.name} does not depend on any of ${wrt.map((t) => t.name).join(', ')}`);

  // 2. Backward reachability: nodes whose outputs lead to the loss.
  const needed = new Set<string>([loss.name]);
  const onPath: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => needed.has(o.name)) || !carries(n)) continue;
    onPath.push(n);
    for (const t of n.inputs) if (t && active.has(t.name)) needed.add(t.name);
  }

  // 3. Walk the path backwards, accumulating gradients.
  const grads = new Map<string, Tensor>();
  const accumulate = (t: Tensor, dt: Tensor) => {
    const prev = grads.get(t.name);
    grads.set(t.name, prev ? F.add(prev, dt) : dt);
  };
  grads.set(loss.name, opts.seed ?? F.scalar(g, loss.dtype, 1));

  const firstBackward = g.nodes.length, initializersBefore = new Set(g.initializers.keys());
  const recompute = opts.recompute ?? g.segments.length > 0;
  const replay = new Recomputer(g);
  // A wrt gradient is final after the backward of its last use on the path (onPath is reversed).
  const lastUse = new Map<number, Tensor[]>();
  for (const w of wrt) {
    const k = onPath.reduce((at, n, i) => (n.inputs.some((t) => t?.name === w.name) ? i : at), -1);
    if (k >= 0) lastUse.set(k, [...(lastUse.get(k) ?? []), w]);
  }

  let prevSegment: number | null = null;
  const touched = new Map<string, Tensor>(); // gradients of the current segment's inputs
  const position = new Map(g.nodes.map((n, i) => [n, i] as const));
  const fromOutside = (t: Tensor, segment: number) => {
    const s = g.segments[segment]!, at = t.producer ? position.get(t.producer)! : -1;
    return at < s.firstNode || at >= s.endNode;
  };
  g.outsideSegments(() => {
    for (const [k, n] of onPath.entries()) {
      // Leaving a segment: later recomputes wait for every gradient it produced, so ONNX Runtime
      // runs segments' backwards one after another instead of recomputing several ahead of time.
      if (n.segment !== prevSegment) {
        if (prevSegment !== null) for (const d of touched.values()) replay.finished(d);
        touched.clear();
        prevSegment = n.segment;
      }
      const rule = rules[n.op];
      if (rule === undefined) {
        throw new AutodiffError(`no gradient rule for op ${n.domain ? `${n.domain}.` : ''}${n.op} (node ${n.name}); add one to engine/autodiff/rules.ts`);
      }
      const needs = n.inputs.map((t) => !!t && needed.has(t.name) && active.has(t.name));
      if (rule === null) {
        const which = n.inputs.filter((t, i) => t && needs[i]).map((t) => t!.name);
        throw new AutodiffError(`op ${n.op} (node ${n.name}) is not differentiable, but the loss needs the gradient of ${which.join(', ')}`);
      }
      g.atScope(`${n.name}/grad`, () => {
        const dyRaw = n.outputs.map((o) => grads.get(o.name) ?? null);
        const anyDy = dyRaw.find((d) => d !== null)!;
        const map = recompute && n.segment !== null ? (t: Tensor) => replay.value(n.segment!, t, anyDy) : (t: Tensor) => t;
        const x = n.inputs.map((t) => (t ? map(t) : null));
        const y = n.outputs.map(map);
        const dy = dyRaw.map((d, i) => d ?? F.zerosLike(y[i]!));
        const ctx: VjpContext = { node: n, g, x, y, dy, needs };
        const dx = rule(ctx);
        n.inputs.forEach((t, i) => {
          const d = dx[i];
          if (!t || !needs[i] || !d) return;
          if (d.dtype !== t.dtype) throw new AutodiffError(`rule ${n.op} gave a ${d.dtype} gradient for ${t}`);
          accumulate(t, unbroadcast(d, t));
          // The running sum: waiting for it also frees this contribution.
          if (n.segment !== null && fromOutside(t, n.segment)) touched.set(t.name, grads.get(t.name)!);
        });
      });
      for (const w of lastUse.get(k) ?? []) replay.finished(grads.get(w.name)!);
    }
  });

  const result = wrt.map((w) => grads.get(w.name) ?? F.zerosLike(w));
  pruneBackward(g, firstBackward, initializersBefore, result);
  return result;
}

/**
 * Drops the backward nodes (and their constants) that no returned gradient depends on: rules
 * build gradients for inputs nobody needs and recomputation clones outputs no rule reads, and
 * ONNX Runtime runs every node of a graph, used or not, keeping its inputs alive until then.
 */
function pruneBackward(g: Graph, firstNode: number, initializersBefore: Set<string>, keep: readonly Tensor[]) {
  const live = new Set(keep.map((t) => t.name));
  const kept: Node[] = [];
  for (let i = g.nodes.length - 1; i >= firstNode; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => live.has(o.name))) continue;
    kept.push(n);
    for (const t of n.inputs) if (t) live.add(t.name);
  }
  g.nodes.splice(firstNode, g.nodes.length - firstNode, ...kept.reverse());
  for (const name of [...g.initializers.keys()]) {
    if (!initializersBefore.has(name) && !live.has(name)) g.initializers.delete(name);
  }
}

/**
 * Gradient checkpointing: the first time the backward needs a tensor computed inside segment s,
 * it clones the producing nodes from the segment's inputs. Activation inputs pass through a
 * barrier (graph/ordering.ts: x plus a run-time zero from the incoming gradient) so that ONNX Runtime can neither run the
 * clone during the forward nor merge it with the original (common-subexpression elimination);
 * the original activations are then dead after the forward and their memory is reused.
 * A nested segment's inputs come from its enclosing segment's recompute. Barriers also wait for
 * the wrt gradients already final ("fence"): ONNX Runtime's default order would otherwise defer
 * those (LoRA weight gradients, say) to the end and keep every layer's recomputed inputs alive.
 */
class Recomputer {
  private readonly clones = new Map<string, Tensor>();
  private readonly barriers = new Map<string, Tensor>();
  private fence: Tensor | null = null; // [1] float: depends on every gradient marked finished
  private pending: Tensor[] = [];

  constructor(private readonly g: Graph) {}

  /** A gradient later recomputes must wait for (a final wrt gradient, a finished segment's input gradient). */
  finished(grad: Tensor): void {
    if (isFloat(grad.dtype)) this.pending.push(grad);
  }

  value(segment: number, t: Tensor, dy: Tensor): Tensor {
    const seg = this.g.segments[segment]!;
    const p = t.producer;
    if (!p && this.g.isInitializer(t)) return t; // a constant: clones of constants may be folded
    // Graph inputs too: a clone fed only by inputs and constants would otherwise run at the start
    // of the step and keep its activation alive through the whole forward.
    const idx = p ? this.g.nodes.indexOf(p) : -1;
    if (!p || idx < seg.firstNode || idx >= seg.endNode) {
      const outer = seg.parent === null ? null : this.g.segments[seg.parent]!;
      const inOuter = outer && idx >= outer.firstNode && idx < outer.endNode;
      return this.barrier(segment, inOuter ? this.value(outer.id, t, dy) : t, dy);
    }
    const key = `${segment}:${t.name}`;
    const hit = this.clones.get(key);
    if (hit) return hit;
    const ins = p.inputs.map((i) => (i ? this.value(segment, i, dy) : null));
    const outs = this.g.atScope(`${seg.name}/recompute`, () =>
      this.g.addNode(p.op, ins, p.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })), { ...p.attrs }, p.domain),
    );
    p.outputs.forEach((o, i) => this.clones.set(`${segment}:${o.name}`, outs[i]!));
    return this.clones.get(key)!;
  }

  private barrier(segment: number, t: Tensor, dy: Tensor): Tensor {
    if (!canBarrier(t.dtype)) return t;
    const key = `${segment}:${t.name}`;
    let b = this.barriers.get(key);
    if (!b) {
      b = this.g.atScope(`${this.g.segments[segment]!.name}/recompute`, () => {
        const f32 = (x: Tensor) => (x.dtype === 'float32' ? x : F.cast(x, 'float32'));
        for (const gr of this.pending.splice(0)) {
          const e = f32(firstElement(gr));
          this.fence = this.fence ? F.add(this.fence, e) : e;
        }
        return barrier(t, this.fence ? F.add(f32(firstElement(dy)), this.fence) : dy);
      });
      this.barriers.set(key, b);
    }
    return b;
  }
}

