// Child process of checkpoint.test.ts: one training step of 12 elementwise residual layers
// ([256, 1024] float32, 1 MiB per activation), plain or with every layer a checkpoint segment.
// Prints {"mb": peak RSS growth during session.run, "loss": ...} as its last line.

import { grad } from '../../../src-main/engine/autodiff/grad.js';
import { Graph, type Tensor } from '../../../src-main/engine/graph/graph.js';
import * as F from '../../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../../src-main/engine/onnx/writer.js';
import { Session } from '../../../src-main/engine/runtime/session.js';

const checkpoint = process.argv[2] === 'checkpoint';
const [R, C, L] = [256, 1024, 12];
const g = new Graph('mem');
const x = g.input('x', 'float32', [R, C]);
const ws: Tensor[] = [];
let h = x;
for (let l = 0; l < L; l++) {
  const w = g.input(`w${l}`, 'float32', [C]);
  ws.push(w);
  // Seven activations per layer that a plain backward keeps alive.
  const layer = () => {
    let a = F.tanh(F.mul(h, w));
    a = F.mul(F.sigmoid(a), a);
    a = F.exp(F.mul(a, 0.5));
    return F.tanh(F.add(a, h));
  };
  h = checkpoint ? g.checkpoint(`layer${l}`, layer) : g.scope(`layer${l}`, layer);
}
const loss = F.reduceSum(F.mul(h, h), [0, 1], false);
const grads = grad(loss, ws);
g.output(loss, 'loss');
grads.forEach((d, i) => g.output(d, `grad/w${i}`));

const session = await Session.create(serializeModel(g), { threads: 1 });
const feeds: Parameters<Session['run']>[0] = { x: { dtype: 'float32', dims: [R, C], data: Float32Array.from({ length: R * C }, (_, i) => Math.sin(i)) } };
for (const w of ws) feeds[w.name] = { dtype: 'float32', dims: [C], data: new Float32Array(C).fill(0.5) };
const before = process.resourceUsage().maxRSS; // KiB
const r = await session.run(feeds);
const mb = (process.resourceUsage().maxRSS - before) / 1024;
console.log(JSON.stringify({ mb: Math.round(mb), loss: r.loss!.data[0] }));
