// LoRA dropout seeds are keyed by (layer, projection): each module reads the seed of
// "dropout_seeds" that earlier versions gave it by counting modules in the order they were built,
// so a run resumed from a checkpoint saved by them draws the same masks. The expected seeds below
// were read from graphs built by 47836a3 (the last version with the counter), for several target
// lists (in and out of the model's order, one listed twice) and every graph shape that builds the
// modules differently: whole, attention chunked by heads and the MLP in pieces (down_proj's
// dropout inside each piece), a symbolic sequence length in checkpoint groups, and 4-bit weights
// with host-side embeddings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph, type Tensor } from '../../src-main/engine/graph/graph.js';
import { type TrainGraphOptions, buildTrainForward } from '../../src-main/model/graphs.js';
import { dropoutSeedCount, dropoutSeedIndex } from '../../src-main/model/lora-dropout.js';
import type { LoraSpec, LoraTarget } from '../../src-main/model/lora.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { invFreqOf, randomWeights, tinyConfig } from '../helpers/tiny-llama.js';

const cfg = tinyConfig({ numLayers: 3 });
const weights = randomWeights(cfg, 3);

/** Seeds read by each adapted module ("layer.target": index), as 47836a3 built them for 3 layers; `count` = the length of dropout_seeds. */
const RECORDED: { targets: LoraTarget[]; count: number; read: string }[] = [
  { targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], count: 21, read: '0.q_proj:0 0.k_proj:1 0.v_proj:2 0.o_proj:3 0.gate_proj:4 0.up_proj:5 0.down_proj:6 1.q_proj:7 1.k_proj:8 1.v_proj:9 1.o_proj:10 1.gate_proj:11 1.up_proj:12 1.down_proj:13 2.q_proj:14 2.k_proj:15 2.v_proj:16 2.o_proj:17 2.gate_proj:18 2.up_proj:19 2.down_proj:20' },
  { targets: ['down_proj', 'v_proj', 'q_proj', 'up_proj'], count: 12, read: '0.q_proj:0 0.v_proj:1 0.up_proj:2 0.down_proj:3 1.q_proj:4 1.v_proj:5 1.up_proj:6 1.down_proj:7 2.q_proj:8 2.v_proj:9 2.up_proj:10 2.down_proj:11' },
  { targets: ['up_proj', 'o_proj'], count: 6, read: '0.o_proj:0 0.up_proj:1 1.o_proj:2 1.up_proj:3 2.o_proj:4 2.up_proj:5' },
  { targets: ['down_proj'], count: 3, read: '0.down_proj:0 1.down_proj:1 2.down_proj:2' },
  { targets: ['v_proj', 'q_proj', 'v_proj'], count: 9, read: '0.q_proj:0 0.v_proj:1 1.q_proj:2 1.v_proj:3 2.q_proj:4 2.v_proj:5' },
  { targets: ['gate_proj', 'k_proj'], count: 6, read: '0.k_proj:0 0.gate_proj:1 1.k_proj:2 1.gate_proj:3 2.k_proj:4 2.gate_proj:5' },
];

const SHAPES: Record<string, { quantize: boolean; o: Partial<TrainGraphOptions> }> = {
  whole: { quantize: false, o: {} },
  'chunked attention and MLP': { quantize: false, o: { chunkBytes: 300, checkpointLayers: true } },
  'symbolic length, checkpoint groups': { quantize: false, o: { chunkBytes: 300, dynamicSeq: true, checkpointLayers: true, checkpointGroup: 2 } },
  '4-bit, host embeddings': { quantize: true, o: { hostEmbeddings: true } },
};

const parse = (read: string): Map<string, number> => new Map(read.split(' ').map((e) => [e.split(':')[0]!, Number(e.split(':')[1])]));

/**
 * The seed each module's dropout reads, found in the graph: every Slice of "dropout_seeds" (its
 * start is the seed index) followed forward to the nearest Gemm with a LoRA A matrix (or a piece of
 * one) as its weight, whose name says the layer and projection.
 */
function seedsRead(g: Graph): Map<string, Set<number>> {
  const consumers = new Map<string, (typeof g.nodes)[number][]>();
  for (const n of g.nodes) for (const t of n.inputs) if (t) consumers.set(t.name, [...(consumers.get(t.name) ?? []), n]);
  const loraA = (t: Tensor): string | null => {
    const src = t.producer?.op === 'Split' ? t.producer.inputs[0]! : t;
    return /^base_model\.model\.model\.layers\.\d+\.\w+\.\w+\.lora_A\.weight$/.test(src.name) ? src.name : null;
  };
  const out = new Map<string, Set<number>>();
  for (const n of g.nodes) {
    if (n.op !== 'Slice' || n.inputs[0]?.name !== 'dropout_seeds') continue;
    const starts = g.initializers.get(n.inputs[1]!.name)!.data; // int64 [1]
    assert.ok(starts.kind === 'inline');
    const start = Number(new BigInt64Array(starts.bytes.slice().buffer)[0]);
    const seen = new Set<string>();
    let frontier: readonly Tensor[] = n.outputs, module: string | null = null;
    while (frontier.length && !module) {
      const next: Tensor[] = [];
      for (const c of frontier.flatMap((t) => consumers.get(t.name) ?? [])) {
        if (seen.has(c.name)) continue;
        seen.add(c.name);
        const a = c.op === 'Gemm' && c.inputs[1] ? loraA(c.inputs[1]) : null;
        if (a) { module = a.replace(/^base_model\.model\.model\.layers\.(\d+)\.\w+\.(\w+)\.lora_A\.weight$/, '$1.$2'); break; }
        next.push(...c.outputs);
      }
      frontier = next;
    }
    assert.ok(module, `seed slice ${n.name} leads to no LoRA branch`);
    out.set(module, (out.get(module) ?? new Set()).add(start));
  }
  return out;
}

test('dropoutSeedIndex gives every module the seed the build-order counter gave it', () => {
  for (const r of RECORDED) {
    const spec: LoraSpec = { rank: 2, alpha: 4, dropout: 0.1, rslora: false, targets: r.targets };
    const expected = parse(r.read);
    for (const [module, index] of expected) {
      const [layer, target] = module.split('.') as [string, LoraTarget];
      assert.equal(dropoutSeedIndex(spec, Number(layer), target), index, `${r.targets.join(',')}: ${module}`);
    }
    assert.equal(dropoutSeedCount(spec, cfg.numLayers), r.count, `${r.targets.join(',')}: seed count`);
  }
  assert.throws(() => dropoutSeedIndex({ rank: 2, alpha: 4, dropout: 0.1, rslora: false, targets: ['q_proj'] }, 0, 'v_proj'), /v_proj carries no LoRA adapter/);
});

test('training graphs of every shape read the recorded seeds, one per module', () => {
  for (const r of RECORDED) {
    const lora: LoraSpec = { rank: 2, alpha: 4, dropout: 0.1, rslora: false, targets: r.targets };
    const expected = parse(r.read);
    for (const [shape, { quantize, o }] of Object.entries(SHAPES)) {
      const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data, { quantize });
      const g = new Graph('train');
      const tg = buildTrainForward(g, fw, invFreqOf(cfg), { batch: 2, seq: 5, lora, ...o });
      const what = `${r.targets.join(',')}, ${shape}`;
      assert.equal(tg.dropoutModules, r.count, `${what}: dropout_seeds length`);
      const read = seedsRead(g);
      assert.deepEqual([...read.keys()].sort(), [...expected.keys()].sort(), `${what}: modules with dropout`);
      for (const [module, index] of expected) assert.deepEqual([...read.get(module)!], [index], `${what}: ${module}`);
    }
  }
});

test('no dropout input without dropout: p = 0, or dropout switched off (evaluation)', () => {
  const fw = new FrozenWeights(cfg, (n) => weights.get(n)!.data);
  for (const [lora, dropout] of [[{ rank: 2, alpha: 4, dropout: 0, rslora: false, targets: ['q_proj'] }, true], [{ rank: 2, alpha: 4, dropout: 0.1, rslora: false, targets: ['q_proj'] }, false]] as const) {
    const g = new Graph('train');
    const tg = buildTrainForward(g, fw, invFreqOf(cfg), { batch: 2, seq: 5, lora, dropout });
    assert.equal(tg.dropoutModules, 0);
    assert.ok(!g.inputs.some((t) => t.name === 'dropout_seeds'));
  }
});
