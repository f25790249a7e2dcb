// The preference objectives against TRL 1.13 (test/oracle/trl_oracle.py): on the demo Llama and the
// same batch of pairs (one of four pairs missing: padding rows the loss must leave out), one step's
// loss, rewards and every LoRA gradient of Finch's gradient graph within 1e-4 of DPOTrainer's
// (sigmoid, conservative label smoothing, a frozen reference adapter) and ORPOTrainer's, on float
// and 4-bit bases (the oracle loads Finch's dequantized weights: Finch's int4 is not NF4), with and
// without gradient checkpointing, symbolic lengths and host embeddings.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import type { Batch } from '../../src-main/data/batch.js';
import { prepareDataset } from '../../src-main/data/dataset.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { type LoadedModel, loadModel } from '../../src-main/model/load.js';
import { type LoraSpec, loraParams } from '../../src-main/model/lora.js';
import { dequantizeInt4 } from '../../src-main/model/quant.js';
import { batchFeeds } from '../../src-main/train/feeds.js';
import { type Objective, RewardTally } from '../../src-main/train/objective.js';
import { DEFAULT_OPTIMIZER, buildAccumulatingStep } from '../../src-main/train/step.js';
import { mulberry32 } from '../../src-main/util/random.js';
import { maxDiffOverScale } from '../helpers/llama-oracle.js';
import { VENV_PYTHON, need } from '../helpers/prerequisites.js';

const DEMO = resolve('assets/demo/model');
const work = mkdtempSync(join(tmpdir(), 'finch-trl-'));
after(() => rmSync(work, { recursive: true, force: true }));

const spec: LoraSpec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'down_proj'] };
const PAIRS = 4; // the graph's pairs; the batch holds 3

/** Three pairs of unequal lengths, rendered by the demo model's chat template as training renders them. */
async function pairBatch(model: LoadedModel): Promise<Batch> {
  const rows = [
    { prompt: 'What is 2 plus 3?', chosen: '2 plus 3 is 5. The answer is: 5', rejected: '2 plus 3 is 6, so the answer is: 6' },
    { prompt: 'Tom has 4 apples and buys 5 more. How many apples does he have?', chosen: 'He has 4 + 5 = 9 apples. The answer is: 9', rejected: 'The answer is: 45' },
    { prompt: 'What is 7 times 3?', chosen: '7 times 3 is 21. The answer is: 21', rejected: '7 times 3 is 73. The answer is: 73' },
  ];
  const file = join(work, 'pairs.jsonl');
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const data = await prepareDataset(file, model.tokenizer, { seqLen: 256, valFraction: 0 });
  if (data.kind !== 'pairs') throw new Error('expected pairs');
  return data.train.batch([0, 1, 2], { size: PAIRS });
}

interface Case {
  name: string;
  objective: Objective;
  quantize: boolean;
  checkpointLayers?: boolean;
  dynamicSeq?: boolean;
  /** DPO's reference is base + this adapter (seeded random), not the base. */
  referenceAdapter?: boolean;
}

const CASES: Case[] = [
  { name: 'dpo', objective: { method: 'dpo', beta: 0.1, labelSmoothing: 0, reference: 'base' }, quantize: false },
  { name: 'dpo-label-smoothing', objective: { method: 'dpo', beta: 0.5, labelSmoothing: 0.2, reference: 'base' }, quantize: false, checkpointLayers: true, dynamicSeq: true },
  { name: 'dpo-reference-adapter', objective: { method: 'dpo', beta: 0.1, labelSmoothing: 0, reference: 'adapter' }, quantize: false, referenceAdapter: true },
  { name: 'orpo', objective: { method: 'orpo', lambda: 0.1 }, quantize: false, dynamicSeq: true },
  { name: 'dpo-4bit', objective: { method: 'dpo', beta: 0.1, labelSmoothing: 0, reference: 'base' }, quantize: true, checkpointLayers: true },
  { name: 'orpo-4bit', objective: { method: 'orpo', lambda: 0.5 }, quantize: true, checkpointLayers: true, dynamicSeq: true },
];

/** Seeded LoRA matrices, B non-zero so that A has a gradient. */
function randomLora(model: LoadedModel, seed: number): Map<string, Float32Array> {
  const rand = mulberry32(seed);
  return new Map(loraParams(model.config, spec).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => (rand() * 2 - 1) * (p.which === 'A' ? 0.2 : 0.05))]));
}

interface FinchResult { loss: number; grads: Map<string, Float32Array>; rewards: ReturnType<RewardTally['metrics']> }

async function finchStep(model: LoadedModel, c: Case, batch: Batch, policy: Map<string, Float32Array>, reference: Map<string, Float32Array> | null): Promise<FinchResult> {
  const T = batch.T;
  const shape = {
    batch: 2 * PAIRS, seq: T, lora: spec, objective: c.objective, checkpointLayers: c.checkpointLayers, checkpointGroup: 1,
    dynamicSeq: c.dynamicSeq, hostEmbeddings: c.quantize,
  };
  const graphs = buildAccumulatingStep(model.weights, model.invFreq, shape, DEFAULT_OPTIMIZER, reference);
  const session = await Session.create(serializeModel(graphs.grads), { threads: 2 });
  try {
    const feeds: Record<string, HostTensor> = { ...batchFeeds(batch, 2 * PAIRS, T, c.quantize ? (ids) => model.weights.embedRows(ids) : undefined) };
    for (const p of graphs.params) feeds[p.name] = { dtype: 'float32', dims: p.shape, data: policy.get(p.name)! };
    const out = await session.run(feeds);
    const tally = new RewardTally();
    tally.add(out.rewards_chosen!.data as Float32Array, out.rewards_rejected!.data as Float32Array, batch.pairs);
    return {
      loss: (out.loss!.data as Float32Array)[0]!,
      grads: new Map(graphs.params.map((p) => [p.name, out[`grad:${p.name}`]!.data as Float32Array])),
      rewards: tally.metrics(),
    };
  } finally {
    await session.release();
  }
}

/** The oracle's batch: the real rows only (chosen 0..2, rejected 4..6), unpadded rows kept at the batch's width. */
function oracleBatch(b: Batch): { input_ids: BigInt64Array; attention_mask: BigInt64Array; labels: BigInt64Array; rows: number } {
  const rows = [0, 1, 2, PAIRS, PAIRS + 1, PAIRS + 2];
  const pick = (a: Batch['inputIds']) => BigInt64Array.from(rows.flatMap((r) => Array.from(a.slice(r * b.T, (r + 1) * b.T) as ArrayLike<number | bigint>, (x) => BigInt(x))));
  return { input_ids: pick(b.inputIds), attention_mask: pick(b.attentionMask), labels: pick(b.labels), rows: rows.length };
}

test('DPO (sigmoid, label smoothing, reference adapter) and ORPO: loss, rewards and LoRA gradients within 1e-4 of TRL 1.13, float and 4-bit', { timeout: 900_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  const dir = join(work, 'oracle');
  const parts: Buffer[] = [];
  let offset = 0;
  const put = (data: Float32Array | BigInt64Array, shape: number[], dtype: 'float32' | 'int64') => {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    parts.push(bytes);
    const e = { offset, shape, dtype };
    offset += bytes.byteLength;
    return e;
  };
  const results = new Map<string, FinchResult>();
  const manifests: { weights: Record<string, unknown>; cases: unknown[] }[] = [];
  for (const quantize of [false, true]) {
    const model = loadModel(DEMO, { quantize, blockSize: 32 });
    try {
      const batch = await pairBatch(model);
      assert.equal(batch.pairs, 3);
      const weights: Record<string, unknown> = {};
      if (quantize) {
        // Every frozen product of a 4-bit graph reads the int4 blocks: the oracle gets them dequantized.
        const { config: cfg } = model;
        const D = cfg.hiddenSize, I = cfg.intermediateSize, q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
        const shapes: [string, number, number][] = [['self_attn.q_proj', q, D], ['self_attn.k_proj', kv, D], ['self_attn.v_proj', kv, D], ['self_attn.o_proj', D, q],
          ['mlp.gate_proj', I, D], ['mlp.up_proj', I, D], ['mlp.down_proj', D, I]];
        const names: [string, number, number][] = [['lm_head.weight', cfg.vocabSize, D]];
        for (let l = 0; l < cfg.numLayers; l++) for (const [p, n, k] of shapes) names.push([`model.layers.${l}.${p}.weight`, n, k]);
        for (const [name, n, k] of names) weights[name] = put(dequantizeInt4(model.weights.q(name, n, k)), [n, k], 'float32');
      }
      const ob = oracleBatch(batch);
      const cases = [];
      for (const c of CASES.filter((x) => x.quantize === quantize)) {
        const policy = randomLora(model, 11), reference = c.referenceAdapter ? randomLora(model, 12) : null;
        results.set(c.name, await finchStep(model, c, batch, policy, reference));
        const tensors = (m: Map<string, Float32Array>) => Object.fromEntries(loraParams(model.config, spec).map((p) => [p.name, put(m.get(p.name)!, [...p.shape], 'float32')]));
        const o = c.objective;
        cases.push({
          name: c.name, method: o.method, beta: o.method === 'dpo' ? o.beta : 0, label_smoothing: o.method === 'dpo' ? o.labelSmoothing : 0,
          orpo_lambda: o.method === 'orpo' ? o.lambda : 0, lora: spec, policy: tensors(policy), reference: reference ? tensors(reference) : null,
          batch: Object.fromEntries((['input_ids', 'attention_mask', 'labels'] as const).map((k) => [k, put(ob[k], [ob.rows, batch.T], 'int64')])),
        });
      }
      manifests.push({ weights, cases });
    } finally {
      model.close();
    }
  }
  // One oracle process per base (the weights differ); both read one tensor file.
  writeFileSync(join(work, 'tensors.bin'), Buffer.concat(parts));
  const checked: string[] = [];
  for (const [i, m] of manifests.entries()) {
    const sub = `${dir}-${i}`;
    mkdirSync(sub);
    writeFileSync(join(sub, 'manifest.json'), JSON.stringify({ base: DEMO, ...m }));
    symlinkSync(join(work, 'tensors.bin'), join(sub, 'tensors.bin'));
    const r = spawnSync(VENV_PYTHON, [new URL('../oracle/trl_oracle.py', import.meta.url).pathname, sub], { encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, `trl_oracle.py: ${r.stderr}`);
    const out = JSON.parse(readFileSync(join(sub, 'out.json'), 'utf8')) as Record<string, OracleCase>;
    const bin = readFileSync(join(sub, 'out.bin'));
    for (const [name, v] of Object.entries(out)) {
      checked.push(name);
      const mine = results.get(name)!;
      const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));
      console.log(`# ${name}: loss ${mine.loss} vs TRL ${v.loss}`);
      assert.ok(rel(mine.loss, v.loss) <= 1e-4, `${name}: loss ${mine.loss} vs TRL ${v.loss}`);
      for (const k of ['rewards_chosen', 'rewards_rejected', 'reward_margin', 'reward_accuracy'] as const) {
        assert.ok(rel(mine.rewards[k], v[k]) <= 1e-4, `${name}: ${k} ${mine.rewards[k]} vs TRL ${v[k]}`);
      }
      assert.equal(Object.keys(v.grads).length, mine.grads.size, `${name}: gradients of every LoRA matrix`);
      let worst = 0;
      for (const [p, e] of Object.entries(v.grads)) {
        const n = e.shape.reduce((a, b) => a * b, 1);
        const theirs = new Float32Array(bin.buffer.slice(bin.byteOffset + e.offset, bin.byteOffset + e.offset + 4 * n));
        const d = maxDiffOverScale(mine.grads.get(p)!, theirs);
        worst = Math.max(worst, d);
        assert.ok(d <= 1e-4, `${name}: ${p} differs by ${d} of its largest value`);
      }
      console.log(`# ${name}: worst LoRA gradient difference ${worst.toExponential(2)} of the largest value`);
    }
  }
  assert.deepEqual(checked.sort(), CASES.map((c) => c.name).sort());
});

/** What trl_oracle.py reports of one case (rewards as TRL's metrics: means over the pairs). */
interface OracleCase {
  loss: number;
  rewards_chosen: number;
  rewards_rejected: number;
  reward_margin: number;
  reward_accuracy: number;
  grads: Record<string, { offset: number; shape: number[] }>;
}
