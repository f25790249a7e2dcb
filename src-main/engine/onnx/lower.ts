// Lowering for ONNX Runtime: a pass over a finished builder graph, run before serialization, that
// rewrites ops ORT runs best in another form. Today one: MatMulNBits over a uint4 [N, K] weight
// (Finch's training graphs, model/weights/graph-weights.ts) becomes DequantizeLinear + Gemm(transB). ORT's
// MatMulNBits kernel takes uint8 and repacks a private copy of the weight at load, so a weight the
// backward also dequantizes (autodiff/rules.ts) would be held twice. The float [N, K] lives only
// for the one Gemm: its dequantization waits for the input A (graph/ordering.ts), or ORT could run
// it early (it depends on constants only) and keep it alive.

import { Graph, type Node, type Tensor } from '../graph/graph.js';
import { dequantizeNBits } from '../graph/nbits.js';
import * as F from '../graph/ops.js';

const isUint4NBits = (n: Node): boolean => n.op === 'MatMulNBits' && n.inputs[1]?.dtype === 'uint4';

/**
 * The graph as ORT should run it: `g` itself when nothing needs lowering, else a copy with every
 * uint4 MatMulNBits replaced. Inputs, outputs, initializers and all other nodes keep their names.
 */
export function lowerForOrt(g: Graph): Graph {
  if (!g.nodes.some(isUint4NBits)) return g;
  const out = new Graph(g.name);
  const map = new Map<Tensor, Tensor>();
  const get = (t: Tensor | null): Tensor | null => {
    if (!t) return null;
    const m = map.get(t);
    if (!m) throw new Error(`lowerForOrt: ${t.name} is used before it is computed`);
    return m;
  };
  for (const t of g.inputs) map.set(t, out.input(t.name, t.dtype, t.shape));
  for (const { tensor, data } of g.initializers.values()) map.set(tensor, out.initializer(tensor.name, tensor.dtype, tensor.shape as number[], data));
  for (const n of g.nodes) {
    const ins = n.inputs.map(get);
    // Lowered nodes are named "<node>/lowered/...", a scope no builder graph uses.
    const outs = isUint4NBits(n) ? [out.atScope(`${n.name}/lowered`, () => lowerNBits(out, n, ins))] : out.copyNode(n, ins);
    n.outputs.forEach((t, i) => map.set(t, outs[i]!));
  }
  for (const t of g.outputs) out.outputs.push(get(t)!);
  return out;
}

/** Y [M, N] = A [M, K] @ dequant(W [N, K])^T, the dequantization ordered after A. */
function lowerNBits(g: Graph, n: Node, [a, packed, scales, zeroPoint]: (Tensor | null)[]): Tensor {
  if (!a || a.rank !== 2) throw new Error(`${n.name}: a uint4 MatMulNBits needs a 2-D input, got ${a ? a.rank : 'none'}-D`);
  const int = (k: string) => { const v = n.attrs[k]; return v && v.type === 'int' ? v.value : 0; };
  const w = dequantizeNBits(g, packed!, scales!, zeroPoint ?? null, int('K'), int('N'), int('block_size'), a); // [N, K]
  return F.gemm(a, w, null, { transB: true });
}
