// Shared by the composite tests: builds a block on random inputs, differentiates
// loss = sum(out * probe) with Finch's autodiff, runs it on ONNX Runtime's CPU EP, runs the same
// case through the PyTorch oracle (test/oracle/composite.py), and compares forward values and
// gradients by relative difference (max |a - b| / max |b| per tensor).

import { grad } from '../../../src-main/engine/autodiff/grad.js';
import type { DType } from '../../../src-main/engine/graph/dtype.js';
import { Graph, type Tensor } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../../src-main/engine/runtime/session.js';
import { Rng } from '../../helpers/gradcheck.js';
import { Comparison, type OracleTensor, runOracle, tensor, values } from '../../helpers/torch.js';

export const TOLERANCE = 1e-5;

export interface InputSpec {
  shape: number[];
  dtype?: 'float32' | 'int32';
  /** Values: N(0, std^2) by default, or given. */
  std?: number;
  mean?: number;
  data?: ArrayLike<number>;
}

export function randomData(rng: Rng, n: number, std = 1, mean = 0): Float32Array {
  return Float32Array.from({ length: n }, () => mean + std * rng.normal());
}

export const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function host(dtype: DType, shape: readonly number[], data: Float32Array | Int32Array | Float64Array): HostTensor {
  return { dtype, dims: shape, data };
}

export interface CaseResult {
  comparison: Comparison;
  loss: number;
}

/**
 * Checks one block against the oracle case of the same name. `build` gets the graph inputs by name
 * and returns the block's output; every float input named in `wrt` gets its gradient compared.
 */
export async function checkCase(
  name: string,
  seed: number,
  inputs: Record<string, InputSpec>,
  wrt: string[],
  build: (x: Record<string, Tensor>) => Tensor,
  config: Record<string, unknown> = {},
  opts: { probe?: boolean } = {},
): Promise<CaseResult> {
  const rng = new Rng(seed);
  const g = new Graph(name);
  const feeds: Record<string, HostTensor> = {};
  const oracleTensors: Record<string, OracleTensor> = {};
  const tensors: Record<string, Tensor> = {};
  for (const [k, spec] of Object.entries(inputs)) {
    const dtype = spec.dtype ?? 'float32';
    tensors[k] = g.input(k, dtype, spec.shape);
    const n = numelOf(spec.shape);
    const data = dtype === 'int32'
      ? Int32Array.from(spec.data ?? [])
      : spec.data ? Float32Array.from(spec.data) : randomData(rng, n, spec.std ?? 1, spec.mean ?? 0);
    if (data.length !== n) throw new Error(`${name}: input ${k} has ${data.length} values for [${spec.shape}]`);
    feeds[k] = host(dtype, spec.shape, data);
    oracleTensors[k] = tensor(dtype, spec.shape, data);
  }

  const out = g.scope(name, () => build(tensors));
  let loss = out;
  if (opts.probe ?? true) {
    const probe = g.input('probe', out.dtype, out.shape);
    const shape = out.shape as number[];
    const data = randomData(rng, numelOf(shape));
    feeds.probe = host('float32', shape, data);
    oracleTensors.probe = tensor('float32', shape, data);
    loss = F.reduceSum(F.mul(out, probe), out.shape.map((_, i) => i), false);
  }
  const grads = grad(loss, wrt.map((k) => tensors[k]!));
  g.output(out, 'out');
  grads.forEach((d, i) => g.output(d, `grad.${wrt[i]}`));

  const session = await Session.create(serializeModel(g), { provider: 'cpu', threads: 2 });
  const got = await session.run(feeds);
  await session.release();

  const ref = runOracle<{ out: OracleTensor; grads: Record<string, OracleTensor> }>('composite.py', {
    case: name,
    tensors: oracleTensors,
    wrt,
    config,
  });
  const cmp = new Comparison(TOLERANCE);
  cmp.check(`${name} forward`, got.out!.data as Float32Array, values(ref.out, 'out'));
  for (const k of wrt) cmp.check(`${name} d${k}`, got[`grad.${k}`]!.data as Float32Array, values(ref.grads[k], `grads.${k}`));
  return { comparison: cmp, loss: (got.out!.data as Float32Array)[0]! };
}
