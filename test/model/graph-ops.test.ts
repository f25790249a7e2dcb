// Every op Finch's graphs use is listed in docs/gpu.md's op table, which says where each one has
// a kernel (CPU, WebGPU, CUDA, DirectML, from ONNX Runtime's operator tables): a graph that gains
// an op fails here until the table has a row for it, and a row no graph uses any more fails too.
// The graphs are those of test/model/llama-webgpu.test.ts and families-webgpu.test.ts, built for the
// demo model and a tiny model of each other family (test/helpers/tiny-llama.ts), float and 4-bit,
// as written for ONNX Runtime (lowerForOrt: 4-bit training weights become DequantizeLinear + Gemm).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Graph } from '../../src-main/engine/graph/graph.js';
import { lowerForOrt } from '../../src-main/engine/onnx/lower.js';
import { loadModel } from '../../src-main/model/load.js';
import { allGraphs, tinyModel } from '../helpers/family-graphs.js';
import { preferenceGraphs } from '../helpers/preference-graphs.js';
import { tinyFamilyConfigs } from '../helpers/tiny-llama.js';

const DEMO = 'assets/demo/model';

/** Adds each node's op ("Op", or "com.microsoft.Op") with the element type of its first input. */
function opsOf(g: Graph, into: Map<string, Set<string>>): void {
  for (const n of lowerForOrt(g).nodes) {
    const key = n.domain ? `${n.domain}.${n.op}` : n.op;
    const set = into.get(key) ?? new Set<string>();
    set.add(n.inputs[0]?.dtype ?? '-');
    into.set(key, set);
  }
}

test('docs/gpu.md lists every op of every graph Finch builds, and no other', () => {
  const ops = new Map<string, Set<string>>();
  for (const quantize of [false, true]) {
    const m = loadModel(DEMO, { quantize });
    for (const [, g] of allGraphs(m.weights, m.invFreq, 32, 16 * 1024)) opsOf(g, ops);
    for (const [, g] of preferenceGraphs(m, quantize, 2, 32)) opsOf(g, ops);
    m.close();
    for (const cfg of Object.values(tinyFamilyConfigs())) {
      const { fw, invFreq } = tinyModel(cfg, quantize);
      for (const [, g] of allGraphs(fw, invFreq, 16, 1024)) opsOf(g, ops);
    }
  }
  // The table's rows: | `Op` | first input types | CPU | WebGPU | CUDA | DirectML | notes |
  const doc = readFileSync('docs/gpu.md', 'utf8');
  const section = doc.slice(doc.indexOf("## Ops in Finch's graphs"), doc.indexOf('\n## ', doc.indexOf("## Ops in Finch's graphs") + 1));
  const rows = new Map<string, string[]>();
  for (const m of section.matchAll(/^\| `([\w.]+)` \| ([^|]*)\|/gm)) rows.set(m[1]!, m[2]!.split(',').map((t) => t.trim()));
  assert.ok(rows.size > 0, "docs/gpu.md: no op table under \"## Ops in Finch's graphs\"");
  for (const [op, types] of ops) {
    const listed = rows.get(op);
    assert.ok(listed, `${op} (first input ${[...types].join(', ')}) is used by a graph but has no row in docs/gpu.md: add one with its CUDA and DirectML kernels`);
    for (const t of types) assert.ok(listed.includes(t), `${op}: first input ${t} is not in its docs/gpu.md row (${listed.join(', ')})`);
  }
  for (const op of rows.keys()) assert.ok(ops.has(op), `docs/gpu.md lists ${op}, which no graph uses any more`);
});
