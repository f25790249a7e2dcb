// The ONNX Runtime side of `finch bench engine`, run as a child process (src-main/bench/engine.ts
// starts it with the same environment as the PyTorch side). Prints one JSON object.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Graph } from '../engine/graph/graph.js';
import * as F from '../engine/graph/ops.js';
import { serializeModel } from '../engine/onnx/writer.js';
import { Session, type HostTensor } from '../engine/runtime/session.js';
import { SessionHost } from '../engine/runtime/worker.js';
import type { EngineChildConfig, OrtChildResult, MatMulCase } from './engine.js';
import { measure, perCall } from './timing.js';

/** The same deterministic operands as engine_torch.py, so the two sides' checksums must agree. */
function operands(c: MatMulCase): { x: Float32Array; w: Float32Array } {
  const x = Float32Array.from({ length: c.m * c.k }, (_, i) => Math.sin(i * 1e-3));
  const w = Float32Array.from({ length: c.k * c.n }, (_, i) => Math.cos(i * 1e-3) / Math.sqrt(c.k));
  return { x, w };
}

function matmulModel(c: MatMulCase, w: Float32Array | null) {
  const g = new Graph(`matmul_${c.name}`);
  const x = g.input('x', 'float32', [c.m, c.k]); // [M, K]
  const wt = w
    // A frozen weight, as Finch holds base weights: ORT's CPU provider may pre-pack it at load.
    ? g.initializer('w', 'float32', [c.k, c.n], { kind: 'inline', bytes: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) })
    : g.input('w', 'float32', [c.k, c.n]); // [K, N]
  g.output(F.matmul(x, wt), 'y'); // [M, N]
  return serializeModel(g);
}

const sumAbs = (a: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += Math.abs(a[i]!); return s; };

async function main(cfg: EngineChildConfig): Promise<OrtChildResult> {
  const pkgDir = dirname(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')));
  const ortVersion = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const matmul: OrtChildResult['matmul'] = [];
  for (const c of cfg.cases) {
    const { x, w } = operands(c);
    const xT: HostTensor = { dtype: 'float32', dims: [c.m, c.k], data: x };
    const wT: HostTensor = { dtype: 'float32', dims: [c.k, c.n], data: w };
    const constS = await Session.create(matmulModel(c, w), { threads: cfg.threads });
    const constW = await measure(() => constS.run({ x: xT }), cfg.timing);
    const checksum = sumAbs((await constS.run({ x: xT })).y!.data as Float32Array);
    await constS.release();
    const inputS = await Session.create(matmulModel(c, null), { threads: cfg.threads });
    const inputW = await measure(() => inputS.run({ x: xT, w: wT }), cfg.timing);
    await inputS.release();
    matmul.push({ name: c.name, constW, inputW, checksum });
  }

  // Per-run overhead: a one-element Add, where the run itself costs next to nothing.
  const g = new Graph('tiny');
  g.output(F.add(g.input('x', 'float32', [1]), 1), 'y');
  const tiny = serializeModel(g);
  const feeds = { x: { dtype: 'float32', dims: [1], data: new Float32Array([1]) } } satisfies Record<string, HostTensor>;
  const s = await Session.create(tiny, { threads: cfg.threads });
  const runUs = 1000 * await perCall(() => s.run(feeds), cfg.overheadRuns);
  await s.release();
  const host = await SessionHost.start();
  let hostRunUs: number;
  try {
    const remote = await host.createSession(tiny, { threads: cfg.threads });
    hostRunUs = 1000 * await perCall(() => remote.run(feeds), Math.ceil(cfg.overheadRuns / 4));
  } finally {
    await host.close();
  }
  return { ortVersion, matmul, overhead: { runUs, hostRunUs } };
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as EngineChildConfig;
process.stdout.write(`${JSON.stringify(await main(cfg))}\n`);
