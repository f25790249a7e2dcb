// `finch train --out`: a path running into a file is refused in words; a run that fails before
// writing anything leaves no folders behind; a config that does not match its weights fails at
// once naming the tensor and the field (the hidden_size case, end to end).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileInTheWay, removeEmptyUpTo, topmostMissing } from '../../../src-main/cli/out-folder.js';
import { finch, mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../../helpers/fixtures.js';

const work = tempDir();
const model = tinyCheckpoint();
const data = writeJsonl(join(work, 'math.jsonl'), mathRows(12));
const train = (m: string, d: string, out: string) =>
  finch(['train', '--model', m, '--data', d, '--out', out, '--map', 'prompt=query,completion=response', '--max-steps', '1', '--threads', '1']);

test('--out naming a file, or a folder under a file, is refused in words (exit 2, no EEXIST/ENOTDIR)', async () => {
  const file = join(work, 'notes.txt');
  writeFileSync(file, 'not a folder');
  for (const out of [file, join(file, 'run')]) {
    const r = await train(model, data, out);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${file} is a file, not a folder`), r.stderr);
    assert.doesNotMatch(r.stderr, /EEXIST|ENOTDIR/);
  }
  assert.equal(readFileSync(file, 'utf8'), 'not a folder');
});

test('a run that fails before writing anything leaves no folders it made; a folder that existed stays', async () => {
  const empty = join(work, 'empty.jsonl');
  writeFileSync(empty, '');
  const out = join(work, 'new', 'deeper', 'run');
  const r = await train(model, empty, out);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(!existsSync(join(work, 'new')), 'the folders the run created are gone');
  const mine = join(work, 'mine');
  mkdirSync(mine);
  assert.equal((await train(model, empty, mine)).code, 1);
  assert.ok(existsSync(mine), 'a folder the user made is kept');
});

test('a config.json whose hidden_size does not match the weights fails before data preparation, naming tensor and field', async () => {
  const cfgFile = join(model, 'config.json');
  const bad = join(work, 'bad-model');
  mkdirSync(bad);
  for (const f of readdirSync(model)) writeFileSync(join(bad, f), readFileSync(join(model, f)));
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { hidden_size: number };
  writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...cfg, hidden_size: cfg.hidden_size * 2 }));
  const out = join(work, 'o-bad');
  const r = await train(bad, data, out);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`model\\.embed_tokens\\.weight is \\[\\d+, ${cfg.hidden_size}\\], but the config gives \\[\\d+, ${cfg.hidden_size * 2}\\].*hidden_size does not match`));
  assert.doesNotMatch(r.stderr, /needs \d+ bytes/);
  assert.ok(!existsSync(out));
});

test('out-folder helpers: the file in the way, the topmost missing folder, removal stops at a non-empty one', () => {
  const root = tempDir();
  writeFileSync(join(root, 'f'), '');
  assert.equal(fileInTheWay(join(root, 'f', 'a', 'b')), join(root, 'f'));
  assert.equal(fileInTheWay(join(root, 'x', 'y')), null);
  assert.equal(topmostMissing(join(root, 'x', 'y')), join(root, 'x'));
  assert.equal(topmostMissing(root), null);
  mkdirSync(join(root, 'x', 'y', 'z'), { recursive: true });
  writeFileSync(join(root, 'x', 'keep'), '');
  removeEmptyUpTo(join(root, 'x', 'y', 'z'), join(root, 'x'));
  assert.ok(!existsSync(join(root, 'x', 'y')) && existsSync(join(root, 'x', 'keep')));
});
