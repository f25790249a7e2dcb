// Full-parameter pretraining through Finch's own engine, on a tiny recipe: the loss falls, the
// result is a loadable Hugging Face folder whose weights moved, the log is written, and the same
// recipe gives the same bytes (the demo model's reproducibility rests on this).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DocumentStream, type LogEvent, Packer, type PretrainRecipe, pretrain } from '../../src-main/demo/pretrain.js';
import { loadModel } from '../../src-main/model/load.js';
import { Checkpoint } from '../../src-main/model/safetensors.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { tokenizerCorpus } from '../../src-main/demo/corpus.js';
import { loadTokenizer } from '../../src-main/model/tokenizer.js';

const dir = mkdtempSync(join(tmpdir(), 'finch-demo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TINY: Partial<PretrainRecipe> = {
  vocabSize: 400, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, maxPositions: 128,
  steps: 40, batch: 4, seq: 96, lr: 3e-3, minLr: 3e-4, warmup: 5, logEvery: 5, evalEvery: 20, tokenizerDocs: 300,
};

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

test('a short full-parameter pretraining run lowers the loss and writes a loadable model', async () => {
  const events: LogEvent[] = [];
  const out = join(dir, 'a', 'model');
  const log = join(dir, 'a', 'log.jsonl');
  const res = await pretrain({ out, log, recipe: TINY, samples: false, onEvent: (e) => events.push(e) });
  // Loss of a uniform guess is ln(400) = 6.0; 40 steps must get well below the first window.
  assert.ok(res.firstLoss > 4.5, `first loss ${res.firstLoss}`);
  assert.ok(res.lastLoss < res.firstLoss - 1.5, `loss ${res.firstLoss} -> ${res.lastLoss}`);
  assert.ok(res.valLoss < res.firstLoss - 1.5, `held-out loss ${res.valLoss}`);

  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogEvent);
  assert.deepEqual(lines, events);
  assert.equal(lines[0]!.event, 'start');
  assert.equal(lines.at(-1)!.event, 'done');
  assert.equal(lines.filter((e) => e.event === 'train').length, 8);
  assert.equal(lines.filter((e) => e.event === 'eval').length, 2);

  // A complete Hugging Face folder, and no temporary folder left beside it.
  assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['log.jsonl', 'model']);
  const m = loadModel(out);
  assert.equal(m.config.hiddenSize, 64);
  assert.equal(m.config.numKvHeads, 2);
  assert.ok(m.tokenizer.hasChatTemplate);
  const w = m.weights.f('model.layers.1.mlp.down_proj.weight');
  assert.ok(w.every(Number.isFinite));
  m.close();

  // The weights moved away from the seeded initialisation.
  const init = join(dir, 'init');
  writeSyntheticCheckpoint(init, {
    tokenizer: 'llama3', chatTemplate: 'llama3', corpus: tokenizerCorpus(7, 300), vocabSize: 400, hiddenSize: 64, numLayers: 2,
    numHeads: 4, numKvHeads: 2, intermediateSize: 128, maxPositionEmbeddings: 128, seed: 7,
  });
  const a = Checkpoint.open(init), b = Checkpoint.open(out);
  let diff = 0;
  const x = a.readTensor('model.layers.0.self_attn.q_proj.weight'), y = b.readTensor('model.layers.0.self_attn.q_proj.weight');
  for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
  a.close();
  b.close();
  assert.ok(diff > 1e-2, `q_proj moved by at most ${diff}`);
});

test('the same recipe reproduces the same bytes', async () => {
  const outs = ['b', 'c'].map((k) => join(dir, k, 'model'));
  for (const out of outs) await pretrain({ out, log: null, recipe: { ...TINY, steps: 10 }, samples: false });
  assert.equal(sha(join(outs[0]!, 'model.safetensors')), sha(join(outs[1]!, 'model.safetensors')));
  assert.equal(sha(join(outs[0]!, 'tokenizer.json')), sha(join(outs[1]!, 'tokenizer.json')));
});

test('packed rows keep documents whole, start each at position 0 and train every token but the first', () => {
  const tdir = join(dir, 'tok');
  writeSyntheticCheckpoint(tdir, { tokenizer: 'llama3', chatTemplate: 'llama3', corpus: tokenizerCorpus(1, 300), vocabSize: 400, hiddenSize: 8, numLayers: 1, numHeads: 2 });
  const tok = loadTokenizer(tdir);
  const T = 128;
  const docs = new DocumentStream(tok, 3, T);
  const b = new Packer(docs, 6, T).next();
  assert.ok(b.tokens > 0.6 * 6 * T, `rows are mostly full (${b.tokens} of ${6 * T})`);
  const eot = tok.tokenToId('<|end_of_text|>')!, eoturn = tok.tokenToId('<|eot_id|>')!;
  for (let r = 0; r < 6; r++) {
    for (let t = 0; t < T; t++) {
      const i = r * T + t;
      const seg = b.segmentIds[i]!;
      if (seg === 0) {
        assert.equal(b.labels[i], -100);
        continue;
      }
      const starts = t === 0 || b.segmentIds[i - 1] !== seg;
      if (starts) {
        assert.equal(b.positionIds[i], 0);
        assert.equal(b.inputIds[i], tok.bosId, 'each document starts with BOS');
        assert.equal(b.labels[i], -100);
        if (t > 0) assert.ok([eot, eoturn].includes(Number(b.inputIds[i - 1])), 'the previous document ended');
      } else {
        assert.equal(b.positionIds[i], Number(b.positionIds[i - 1]) + 1);
        assert.equal(b.labels[i], b.inputIds[i]);
      }
    }
  }
});
