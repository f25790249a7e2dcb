// The library's first look at what a user brings: a model folder is checked whole (config within
// limits, weights that match it) before it is added; a dataset with no rows is refused saying why;
// one file is one entry; a preview reads a bounded window of a large file.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { failure, startApp, type TestApp } from '../helpers/app.js';
import { mathRows, tempDir, tinyCheckpoint, writeJsonl } from '../helpers/fixtures.js';

const MAP = { prompt: 'query', completion: 'response' };
const work = tempDir('finch-library-');
const model = tinyCheckpoint();
let app: TestApp;
before(async () => { app = await startApp('dispatcher'); });
after(() => app.close());

test('a model whose config does not match its weights is refused when added, naming the tensor and field', async () => {
  const wrong = join(work, 'wrong-layers');
  cpSync(model, wrong, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(wrong, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 3 }));
  const f = await failure(app.api.addLocalModel({ path: wrong }));
  assert.equal(f.code, 'bad_model');
  assert.match(f.message, /num_hidden_layers is 3 but the weights hold 2 layers/);
  assert.deepEqual((await app.api.listModels()).filter((m) => m.path === wrong), []);
});

test('a model folder added twice is one entry', async () => {
  const a = await app.api.addLocalModel({ path: model });
  const b = await app.api.addLocalModel({ path: `${model}/`, name: 'other' });
  assert.equal(b.id, a.id);
  assert.equal(b.name, a.name);
});

test('datasets with no rows are refused, saying what is in the file', async () => {
  const cases: [string, string, RegExp][] = [
    ['empty.jsonl', '', /empty\.jsonl: the file is empty \(0 bytes\)/],
    ['header.csv', 'query,response\n', /header\.csv: no rows \(a header line alone\)/],
    ['header.tsv', 'query\tresponse\r\n', /no rows \(a header line alone\)/],
    ['none.json', '[]', /none\.json: no rows \(nothing but blank lines or an empty array\)/],
    ['blank.jsonl', '\n\n \n', /no rows/],
    ['bad.jsonl', 'not json\n{"a": \n', /bad\.jsonl: no readable row: line 1: invalid JSON/],
  ];
  for (const [name, text, message] of cases) {
    const path = join(work, name);
    writeFileSync(path, text);
    const f = await failure(app.api.addDataset({ path }));
    assert.equal(f.code, 'bad_dataset', name);
    assert.match(f.message, message);
    assert.ok(f.hint, 'says what to do');
  }
  assert.deepEqual((await app.api.listDatasets()).filter((d) => d.path.startsWith(work)), []);
});

test('a dataset file added twice is one entry; asked for with another mapping it is a conflict', async () => {
  const path = writeJsonl(join(work, 'math.jsonl'), mathRows(10));
  const a = await app.api.addDataset({ path, map: MAP });
  assert.equal(a.format, 'completion');
  const b = await app.api.addDataset({ path });
  assert.equal(b.id, a.id);
  assert.equal((await app.api.addDataset({ path, map: { ...MAP } })).id, a.id);
  const f = await failure(app.api.addDataset({ path, map: { prompt: 'response', completion: 'query' } }));
  assert.equal(f.code, 'conflict');
  assert.match(f.message, /math\.jsonl is already in the library as "math" with the column map/);
  assert.equal((await app.api.listDatasets()).filter((d) => d.path === path).length, 1);
});

test('a preview of a file larger than its window shows the first rows, and no bad row where the window cuts', async () => {
  const rows = Array.from({ length: 90_000 }, (_, i) => JSON.stringify({ query: `What is ${i} plus ${'x'.repeat(80)}?`, response: `The answer is: ${i}` }));
  const path = join(work, 'large.jsonl');
  writeFileSync(path, rows.join('\n') + '\n'); // ~13 MB, past the 8 MiB window
  const m = await app.api.addLocalModel({ path: model });
  const p = await app.api.previewDataset({ path, map: MAP, modelId: m.id, rows: 5, statsRows: 300 });
  assert.deepEqual(p.rows.map((r) => r.line), [1, 2, 3, 4, 5]);
  assert.equal(p.lengths?.rows, 300);
  assert.equal(p.badRows.length, 0);
  const added = await app.api.addDataset({ path, map: MAP });
  assert.equal(added.sizeBytes, Buffer.byteLength(rows.join('\n') + '\n'));
});
