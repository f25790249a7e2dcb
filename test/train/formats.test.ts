// Every supported dataset format and file type trains, and its loss falls (issue: "each format
// trains and its loss falls"). Small fixture files, several epochs, one thread.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteFile } from 'hyparquet-writer';
import { events, finch, mathRows, tempDir, tinyCheckpoint } from '../helpers/fixtures.js';

const FIX = new URL('../fixtures/data/', import.meta.url).pathname;
const model = tinyCheckpoint();
const work = tempDir();
const parquet = join(work, 'metamath.parquet');
const rows = mathRows(8);
parquetWriteFile({
  filename: parquet,
  columnData: [
    { name: 'query', data: rows.map((r) => r.query), type: 'STRING' },
    { name: 'response', data: rows.map((r) => r.response), type: 'STRING' },
  ],
});

const cases: { file: string; args: string[] }[] = [
  { file: join(FIX, 'alpaca.jsonl'), args: [] },
  { file: join(FIX, 'alpaca.json'), args: [] },
  { file: join(FIX, 'alpaca.csv'), args: [] },
  { file: join(FIX, 'sharegpt.json'), args: [] },
  { file: join(FIX, 'messages.jsonl'), args: ['--format', 'messages'] },
  { file: join(FIX, 'completion.jsonl'), args: [] },
  { file: join(FIX, 'completion.tsv'), args: [] },
  { file: join(FIX, 'text.jsonl'), args: ['--train-on', 'all'] },
  { file: join(FIX, 'gsm8k.jsonl'), args: ['--map', 'prompt=question,completion=answer'] },
  { file: join(FIX, 'metamath.json'), args: ['--map', 'prompt=query,completion=response'] },
  { file: parquet, args: ['--map', 'prompt=query,completion=response'] },
];

for (const c of cases) {
  const name = c.file.split('/').pop()!;
  test(`${name} trains and its loss falls`, async () => {
    const r = await finch(['train', '--model', model, '--data', c.file, '--out', join(work, `out-${name}`), '--val-fraction', '0',
      '--max-steps', '40', '--batch', '2', '--lr', '1e-2', '--schedule', 'constant', '--threads', '1', '--json', ...c.args]);
    assert.equal(r.code, 0, r.stderr);
    const losses = events(r.stdout).filter((e) => e.event === 'step').map((e) => e.loss as number);
    assert.equal(losses.length, 40);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    assert.ok(mean(losses.slice(-4)) < 0.92 * mean(losses.slice(0, 4)), `${name}: loss ${mean(losses.slice(0, 4)).toFixed(3)} -> ${mean(losses.slice(-4)).toFixed(3)}`);
  });
}
