// Bad input to `finch train` ends with a clear message naming the file, line or field and what to
// do, a non-zero exit, and no half-written output.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { finch, mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../../helpers/fixtures.js';

const model = tinyCheckpoint();
const work = tempDir();
const map = ['--map', 'prompt=query,completion=response'];
const base = (data: string, out: string, extra: string[] = []) =>
  ['train', '--model', model, '--data', data, '--out', out, '--max-steps', '2', '--threads', '1', ...extra];

/** Asserts a failed run: exit code, message pattern, and nothing written under `out` but run.json at most. */
async function expectFailure(args: string[], out: string, message: RegExp, code = 1) {
  const r = await finch(args);
  assert.equal(r.code, code, `expected exit ${code}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for a user error');
  if (existsSync(out)) {
    const left = readdirSync(out).filter((n) => n !== 'run.json');
    assert.deepEqual(left, [], `half-written output in ${out}: ${left.join(', ')}`);
  }
}

test('malformed JSONL rows fail listing file and line; --on-bad-row skip trains on the rest', async () => {
  const rows = mathRows(20).map((r) => JSON.stringify(r));
  rows[3] = '{"query": "broken", "response": ';
  rows[7] = 'not json at all';
  const file = join(work, 'bad.jsonl');
  writeFileSync(file, rows.join('\n') + '\n');
  await expectFailure(base(file, join(work, 'o1'), map), join(work, 'o1'), /bad\.jsonl: 2 bad rows[\s\S]*line 4: invalid JSON[\s\S]*line 8: invalid JSON[\s\S]*--on-bad-row skip/);
  const ok = await finch(base(file, join(work, 'o1b'), [...map, '--on-bad-row', 'skip', '--json']));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /"event":"done"/);
});

test('an empty dataset, missing columns and rows all longer than the sequence length are explained', async () => {
  const empty = join(work, 'empty.jsonl');
  writeFileSync(empty, '');
  await expectFailure(base(empty, join(work, 'o2'), map), join(work, 'o2'), /empty\.jsonl.*(empty|no rows)/i);

  const file = writeJsonl(join(work, 'math.jsonl'), mathRows(20));
  await expectFailure(base(file, join(work, 'o3'), ['--map', 'prompt=question,completion=answer']), join(work, 'o3'), /math\.jsonl: .*"question"[\s\S]*columns found: query, response/);

  await expectFailure(base(file, join(work, 'o4'), [...map, '--seq-len', '8']), join(work, 'o4'), /math\.jsonl: every row is longer than the sequence length 8[\s\S]*raise --seq-len/);
});

test('a model folder missing pieces names the missing file', async () => {
  const broken = join(work, 'broken-model');
  execFileSync('cp', ['-r', model, broken]);
  unlinkSync(join(broken, 'tokenizer.json'));
  const data = writeJsonl(join(work, 'm2.jsonl'), mathRows(10));
  await expectFailure(['train', '--model', broken, '--data', data, '--out', join(work, 'o5'), ...map, '--max-steps', '1'], join(work, 'o5'), new RegExp(`${broken}/tokenizer\\.json is missing`));
  const noWeights = join(work, 'no-weights');
  execFileSync('cp', ['-r', model, noWeights]);
  for (const f of readdirSync(noWeights)) if (f.endsWith('.safetensors')) unlinkSync(join(noWeights, f));
  await expectFailure(['train', '--model', noWeights, '--data', data, '--out', join(work, 'o6'), ...map, '--max-steps', '1'], join(work, 'o6'), new RegExp(`${noWeights}: no model\\.safetensors`));
});

test('messages data with a tokenizer that has no chat template: --template model names the fallback; the default uses it with a note', async () => {
  const noTemplate = tinyCheckpoint({ chatTemplate: null });
  const msgs = writeJsonl(join(work, 'msgs.jsonl'), mathRows(16).map((r) => ({ messages: [{ role: 'user', content: r.query }, { role: 'assistant', content: r.response }] })));
  const out = join(work, 'o7');
  await expectFailure(['train', '--model', noTemplate, '--data', msgs, '--out', out, '--format', 'messages', '--template', 'model', '--max-steps', '1', '--threads', '1'], out,
    /chat_template[\s\S]*fallback template "finch-alpaca"[\s\S]*--template fallback/);
  // One default in every door, whatever the format: auto (the app never required the model's template).
  const ok = await finch(['train', '--model', noTemplate, '--data', msgs, '--out', join(work, 'o7b'), '--format', 'messages', '--max-steps', '1', '--threads', '1']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /note: the tokenizer has no chat template; using Finch's fallback template "finch-alpaca"/);
});

const disk = join(work, 'tiny-disk');
after(() => { try { execFileSync('umount', [disk]); } catch { /* not mounted */ } });

test('a full disk while checkpointing stops with a message and leaves no partial checkpoint', async () => {
  mkdirSync(disk);
  // A 160 KiB tmpfs: room for run.json, not for a checkpoint (adapter + optimizer state).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160k', 'tmpfs', disk]);
  const data = writeJsonl(join(work, 'm3.jsonl'), mathRows(16));
  const out = join(disk, 'run');
  const r = await finch(['train', '--model', model, '--data', data, '--out', out, ...map, '--max-steps', '3', '--checkpoint-every', '1', '--threads', '1']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /disk is full.*--resume/s);
  const ck = join(out, 'checkpoints');
  if (existsSync(ck)) assert.deepEqual(readdirSync(ck), [], 'no partial checkpoint folder');
  rmSync(out, { recursive: true, force: true });
});

test('a sequence length beyond the model\'s positions is refused before anything loads, with what to set; so is a run that will not fit in memory', async () => {
  const file = writeJsonl(join(work, 'seq.jsonl'), mathRows(20));
  const short = tinyCheckpoint({ maxPositionEmbeddings: 64 });
  const out = join(work, 'o-seq');
  const r = await finch(['train', '--model', short, '--data', file, '--out', out, '--max-steps', '2', '--threads', '1', ...map, '--seq-len', '128']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /a sequence length of 128 tokens is more than .*model takes: its max_position_embeddings is 64\nset the sequence length to 64 or less/);
  assert.ok(!existsSync(out), 'nothing written');

  // 4096 rows of 4096 tokens a micro-batch: the estimate is far beyond any machine's free memory.
  const huge = ['train', '--model', tinyCheckpoint({ maxPositionEmbeddings: 4096 }), '--data', file, '--out', join(work, 'o-huge'), '--max-steps', '1', '--threads', '1', ...map, '--seq-len', '4096', '--batch', '4096'];
  const refused = await finch(huge);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /finch train: this run needs about .* of memory, and .* is free: it will not fit\ntry: .*--ignore-memory-estimate/);
  assert.ok(!existsSync(join(work, 'o-huge')), 'nothing written');
});
