// How one graph holds a model's frozen weights: streamed weights reference the checkpoint's own
// bytes (cast in the graph), kept ones are float32 initializers; a 16-bit embedding table is
// gathered as stored only by a graph that asks for it (gatherRawRows, a generation graph on the
// CPU), so a CPU generator built from shared weights changes no other graph built from them.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Graph } from '../../../src-main/engine/graph/graph.js';
import { Generator, generationGraph } from '../../../src-main/infer/generate.js';
import { buildTrainForward } from '../../../src-main/model/graphs.js';
import { loadModel } from '../../../src-main/model/load.js';
import { LORA_TARGETS } from '../../../src-main/model/lora.js';
import { writeSyntheticCheckpoint } from '../../../src-main/synthetic/checkpoint.js';
import { tempDir } from '../model-helpers.js';

const dir = join(tempDir(), 'model');
writeSyntheticCheckpoint(dir, { hiddenSize: 32, numLayers: 1, numHeads: 2, vocabSize: 300, dtype: 'bfloat16' });
const EMBED = 'model.embed_tokens.weight', Q = 'model.layers.0.self_attn.q_proj.weight';

/** What the embedding Gather reads: the stored table itself ("<name>.bfloat16"), or a Cast of it (the whole table cast to float32). */
function gatheredFrom(g: Graph): string {
  const gathers = g.nodes.filter((n) => n.op === 'Gather' && n.inputs[1]!.name === 'input_ids');
  assert.equal(gathers.length, 1);
  const data = gathers[0]!.inputs[0]!;
  return data.producer ? `${data.producer.op}(${data.producer.inputs[0]!.name})` : data.name;
}

test('streamed weights reference the checkpoint bytes in place; kept weights are float32 initializers', () => {
  for (const streamFloats of [true, false]) {
    const m = loadModel(dir, { streamFloats });
    const g = generationGraph(m.weights, m.invFreq, 16, null, 1);
    const raw = g.initializers.get(`${Q}.bfloat16`), float = g.initializers.get(Q);
    if (streamFloats) {
      assert.equal(raw?.data.kind, 'file', 'the bfloat16 bytes, referenced in the checkpoint file');
      assert.equal(float, undefined);
    } else {
      assert.equal(float?.data.kind, 'inline');
      assert.equal(float?.tensor.dtype, 'float32');
      assert.equal(raw, undefined);
    }
    m.close();
  }
});

test('a 16-bit embedding table is gathered as stored only where the graph asks, and a CPU generator changes no other graph', async () => {
  const m = loadModel(dir);
  const lora = { rank: 2, alpha: 4, dropout: 0, rslora: false, targets: LORA_TARGETS };
  const trainGraph = () => {
    const g = new Graph('train');
    buildTrainForward(g, m.weights, m.invFreq, { batch: 1, seq: 4, lora });
    return g;
  };
  assert.equal(gatheredFrom(generationGraph(m.weights, m.invFreq, 16, null, 1, { gatherRawRows: true })), `${EMBED}.bfloat16`, 'rows gathered as stored, then cast');
  assert.equal(gatheredFrom(generationGraph(m.weights, m.invFreq, 16, null, 1)), `Cast(${EMBED}.bfloat16)`, 'the table cast, then gathered');
  assert.equal(gatheredFrom(trainGraph()), `Cast(${EMBED}.bfloat16)`);
  // A CPU generator's graphs gather raw rows; the weights it shares stay as they were for every other graph.
  const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: 16, provider: 'cpu', threads: 1 });
  assert.equal(gatheredFrom(trainGraph()), `Cast(${EMBED}.bfloat16)`);
  assert.equal(gatheredFrom(generationGraph(m.weights, m.invFreq, 16, null, 1)), `Cast(${EMBED}.bfloat16)`);
  await gen.release();
  m.close();
});
