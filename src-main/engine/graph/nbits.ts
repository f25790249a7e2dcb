// The float weight behind a 4-bit MatMulNBits node, for the places that need it outside that
// kernel: its gradient (autodiff/rules.ts) and its lowering for ONNX Runtime (onnx/lower.ts).

import type { Graph, Tensor } from './graph.js';
import * as F from './ops.js';
import { barrier } from './ordering.js';

/**
 * The float [N, K] weight behind a MatMulNBits node, as DequantizeLinear (blocked along K).
 * Finch's training graphs store the weight once as uint4 [N, K] with scales [N, ceil(K/block)]
 * and a uint4 zero point (onnx/lower.ts lowers their forward to the same DequantizeLinear + Gemm).
 * ORT's own layout (uint8 [N, ceil(K/block), block/2], scales [N*ceil(K/block)], zero point 8) is
 * the same bytes with rows padded to whole blocks; it is read through a uint4 [N, padded] view
 * initializer, which ORT stores separately, and sliced back to K. With `after`,
 * the dequantization waits for that run-time tensor (ordering.ts barrier on the scales).
 */
export function dequantizeNBits(g: Graph, packed: Tensor, scales: Tensor, zeroPoint: Tensor | null, K: number, N: number, block: number, after: Tensor | null = null): Tensor {
  const blocks = Math.ceil(K / block), padded = blocks * block; // a last short block (quant.ts)
  const s2 = scales.rank === 2 ? scales : F.reshape(scales, [N, blocks]);
  const s = after ? barrier(s2, after) : s2; // [N, ceil(K/block)]
  if (packed.dtype === 'uint4') {
    if (!zeroPoint || zeroPoint.dtype !== 'uint4') throw new Error(`dequantizeNBits: the uint4 weight ${packed.name} needs a uint4 zero point`);
    return F.dequantizeLinear(packed, s, zeroPoint, 1, block);
  }
  if (zeroPoint) throw new Error('dequantizeNBits: packed zero points are not supported (Finch quantizes symmetrically)');
  const viewName = `${packed.name}.uint4`;
  let view = g.initializers.get(viewName)?.tensor;
  if (!view) {
    const src = g.initializers.get(packed.name);
    if (!src) throw new Error(`dequantizeNBits: ${packed.name} must be an initializer`);
    view = g.initializer(viewName, 'uint4', [N, padded], src.data);
  }
  const zero = g.initializers.get(`${viewName}.zp`)?.tensor
    ?? g.initializer(`${viewName}.zp`, 'uint4', [N, blocks], { kind: 'inline', bytes: new Uint8Array(Math.ceil((N * blocks) / 2)).fill(0x88) });
  const w = F.dequantizeLinear(view, s, zero, 1, block); // [N, padded]
  return padded === K ? w : F.slice(w, [0], [K], [1]);
}
