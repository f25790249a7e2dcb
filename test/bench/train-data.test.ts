// bench train --data: the GSM8K-shaped generator is deterministic and GSM8K-like, and the batches
// each side trains on follow the benchmark's rules (Finch: own longest row rounded up to 8; the
// peer: a seeded random order, unpadded rows it pads to each batch's longest itself).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gsm8kShapedRows, writeGsm8kShaped } from '../../src-main/bench/gsm8k-shaped.js';
import { type BenchBatches, writeBenchBatches } from '../../src-main/bench/train-data.js';
import { tempDir } from '../helpers/fixtures.js';

test('GSM8K-shaped rows: seeded, question/answer with a final "#### N", lengths spread like GSM8K', () => {
  const rows = gsm8kShapedRows(300, 4);
  assert.deepEqual(gsm8kShapedRows(300, 4), rows);
  assert.notDeepEqual(gsm8kShapedRows(300, 5), rows);
  for (const r of rows) assert.match(r.answer, /\n#### \d+$/);
  const words = rows.map((r) => r.answer.split(/\s+/).length).sort((a, b) => a - b);
  assert.ok(words[0]! < 0.5 * words[150]! && words[299]! > 1.8 * words[150]!, `answer lengths spread: min ${words[0]}, median ${words[150]}, max ${words[299]}`);
});

test('bench batches: Finch pads each batch to its own longest row (multiple of 8), the peer gets unpadded rows in its own order', async () => {
  const work = tempDir();
  const file = join(work, 'gsm.jsonl');
  writeGsm8kShaped(file, 64, 2);
  const { path, info } = await writeBenchBatches(work, file, { map: { prompt: 'question', completion: 'answer' }, batch: 4, count: 5, seqCap: 1024, seed: 1, groupByLength: false });
  const b = JSON.parse(readFileSync(path, 'utf8')) as BenchBatches;
  assert.equal(info.rows, 64);
  assert.equal(b.finch.length, 5);
  assert.equal(b.peer.length, 5);
  for (const f of b.finch) {
    const longest = Math.max(...Array.from({ length: f.B }, (_, r) => f.attentionMask.slice(r * f.T, (r + 1) * f.T).reduce((s, x) => s + x, 0)));
    assert.equal(f.T, Math.min(info.maxSeq, Math.ceil(longest / 8) * 8), 'own longest row, rounded up to 8');
  }
  const peerRows = b.peer.flat().map((r) => r.ids.join(','));
  const finchRows = b.finch.flatMap((f) => Array.from({ length: f.B }, (_, r) => f.inputIds.slice(r * f.T, r * f.T + f.attentionMask.slice(r * f.T, (r + 1) * f.T).reduce((s, x) => s + x, 0)).join(',')));
  assert.notDeepEqual(peerRows, finchRows, 'the peer reads the rows in its own seeded order');
  assert.ok(info.finchPadding < info.peerPadding + 0.05 && info.finchPadding >= 0 && info.peerPadding > 0, `padding ${info.finchPadding} Finch, ${info.peerPadding} peer`);
});
