import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { openRows, fileKindOf } from '../../src-main/data/read/index.js';
import { DatasetError } from '../../src-main/data/errors.js';
import { firstInvalidUtf8 } from '../../src-main/data/read/lines.js';
import { FIXTURES, collect, tempDir, writeFile } from './helpers.js';

const dir = tempDir();
const read = async (path: string, opts: Parameters<typeof openRows>[1] = {}) => collect((await openRows(path, opts)).rows);

test('JSONL: rows with their line numbers; blank lines and CRLF are fine; BOM stripped', async () => {
  const p = writeFile(dir, 'a.jsonl', '\uFEFF{"text":"a"}\r\n\n  \n{"text":"b"}\n{"text":"c"}');
  const rows = await read(p);
  assert.deepEqual(rows, [
    { row: { text: 'a' }, line: 1 },
    { row: { text: 'b' }, line: 4 },
    { row: { text: 'c' }, line: 5 },
  ]);
});

test('JSONL: broken rows fail listing file and lines, or are skipped and counted', async () => {
  const p = writeFile(dir, 'bad.jsonl', '{"text":"ok"}\n{"text": oops}\n[1,2]\n{"text":"ok2"}\n"str"\n');
  await assert.rejects(read(p), (e: Error) => {
    assert.ok(e instanceof DatasetError);
    assert.match(e.message, /bad\.jsonl: 3 bad rows/);
    assert.match(e.message, /line 2: invalid JSON/);
    assert.match(e.message, /line 3: expected an object .* got an array/);
    assert.match(e.message, /line 5: expected an object .* got a string/);
    assert.match(e.message, /--on-bad-row skip/);
    return true;
  });
  const opened = await openRows(p, { onBadRow: 'skip' });
  const rows = await collect(opened.rows);
  assert.deepEqual(rows.map((r) => r.line), [1, 4]);
  assert.equal(opened.bad.count, 3);
  assert.match(opened.bad.summary()!, /skipped 3 bad rows .* line 2/);
});

test('fail policy stops after maxErrors bad rows', async () => {
  const p = writeFile(dir, 'many-bad.jsonl', Array.from({ length: 50 }, () => 'nope').join('\n'));
  await assert.rejects(read(p, { maxErrors: 4 }), /stopped after the first 4 bad rows[\s\S]*line 4:/);
});

test('invalid UTF-8 is reported with its line, in JSONL, JSON and CSV', async () => {
  const bad = Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"t":"\xff\xfe"}
  const good = Buffer.from('{"t":"é"}');
  const nl = Buffer.from('\n');
  const jsonl = writeFile(dir, 'utf8.jsonl', Buffer.concat([good, nl, good, nl, bad, nl, good, nl]));
  await assert.rejects(read(jsonl), /utf8\.jsonl: 1 bad row:\n {2}line 3: invalid UTF-8 \(byte 0xff at byte 7 of the line\)/);
  const skipped = await read(jsonl, { onBadRow: 'skip' });
  assert.deepEqual(skipped.map((r) => [r.line, r.row.t]), [[1, 'é'], [2, 'é'], [4, 'é']]);

  const json = writeFile(dir, 'utf8.json', Buffer.concat([Buffer.from('[\n'), good, Buffer.from(',\n'), bad, Buffer.from('\n]')]));
  await assert.rejects(read(json), /utf8\.json: 1 bad row:\n {2}line 3: invalid UTF-8/);

  const csv = writeFile(dir, 'utf8.csv', Buffer.concat([Buffer.from('t,u\na,b\n'), Buffer.from([0x63, 0xc3, 0x28]), Buffer.from(',d\ne,f\n')]));
  await assert.rejects(read(csv), /utf8\.csv: 1 bad row:\n {2}line 3: invalid UTF-8/);
  assert.deepEqual((await read(csv, { onBadRow: 'skip' })).map((r) => r.line), [2, 4]);
});

test('firstInvalidUtf8 finds the offending byte', () => {
  assert.equal(firstInvalidUtf8(Buffer.from('héllo')), -1);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0xe2, 0x82])), 1); // truncated 3-byte sequence
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xc0, 0x80])), 2); // overlong lead byte
});

test('JSON: an array of rows, with the line each row starts on', async () => {
  const rows = await read(join(FIXTURES, 'alpaca.json'));
  assert.equal(rows.length, 8);
  assert.equal(rows[0]!.line, 2);
  assert.equal(rows[0]!.row.system, 'You are a careful calculator.');
  assert.equal(rows[1]!.row.instruction, 'What is 4 plus 5?');
  const p = writeFile(dir, 'compact.json', '[{"a":"x]}\\"{["},{"a":2}, {"a":[1,{"b":"]"}]}]');
  assert.deepEqual((await read(p)).map((r) => r.row), [{ a: 'x]}"{[' }, { a: 2 }, { a: [1, { b: ']' }] }]);
});

test('JSON: an object holding one array; several arrays need jsonField', async () => {
  const rows = await read(join(FIXTURES, 'sharegpt.json'));
  assert.equal(rows.length, 8);
  assert.ok(Array.isArray(rows[0]!.row.conversations));
  assert.equal(rows[7]!.row.id, 7);
  const two = writeFile(dir, 'two.json', '{"meta": {"n": [1]}, "train": [{"text":"a"}], "test": [{"text":"b"}]}');
  await assert.rejects(read(two), /holds several arrays \(train, test\); choose/);
  assert.deepEqual((await read(two, { jsonField: 'test' })).map((r) => r.row), [{ text: 'b' }]);
  await assert.rejects(read(two, { jsonField: 'dev' }), /no array under "dev" \(keys: meta, train, test; arrays: train, test\)/);
  const none = writeFile(dir, 'none.json', '{"instruction": "x", "output": "y"}');
  await assert.rejects(read(none), /holds no array of rows \(keys: instruction, output\)/);
});

test('JSON: truncated files and non-object elements are reported', async () => {
  const trunc = writeFile(dir, 'trunc.json', '[\n{"text":"a"},\n{"text":"b"');
  await assert.rejects(read(trunc), /line 3: the file ends inside this row/);
  const scalars = writeFile(dir, 'scalars.json', '[1, "two", {"text": "ok"}, null]');
  const opened = await openRows(scalars, { onBadRow: 'skip' });
  assert.deepEqual((await collect(opened.rows)).map((r) => r.row), [{ text: 'ok' }]);
  assert.equal(opened.bad.count, 3);
  const bad = writeFile(dir, 'badel.json', '[\n{"text": "a"},\n{"text": nope},\n{"text": "c"}\n]');
  await assert.rejects(read(bad), /line 3: invalid JSON/);
  await assert.rejects(read(writeFile(dir, 'unbalanced.json', '\n]')), /unbalanced\.json line 2: unbalanced "\]"/);
  await assert.rejects(read(writeFile(dir, 'scalar.json', '42')), /expected a JSON array of rows or an object holding one/);
  await assert.rejects(read(writeFile(dir, 'extra.json', '[{"a": 1}]\n[{"a": 2}]')), /extra\.json line 2: more data after the JSON array ends/);
});

test('a .json file holding JSON Lines is read as JSONL', async () => {
  const p = writeFile(dir, 'lines.json', '{"text":"a"}\n{"text":"b"}\n');
  assert.equal(await fileKindOf(p), 'jsonl');
  assert.equal(await fileKindOf(join(FIXTURES, 'alpaca.json')), 'json');
  assert.equal((await read(p)).length, 2);
});

test('unknown extensions and missing files are clear errors', async () => {
  await assert.rejects(fileKindOf(join(dir, 'x.xlsx')), /unsupported dataset file type "\.xlsx"; use \.jsonl/);
  await assert.rejects(fileKindOf(join(dir, 'missing.jsonl')), /missing\.jsonl: no such file/);
});

test('CSV: header row, quoted newlines and commas, CRLF, start lines of multi-line records', async () => {
  const rows = await read(join(FIXTURES, 'alpaca.csv'));
  assert.equal(rows.length, 9);
  assert.deepEqual(rows[0], { row: { instruction: 'Add the two numbers.', input: '2 + 3', output: '2 plus 3 is 5. The answer is: 5' }, line: 2 });
  assert.equal(rows[8]!.row.instruction, 'Say "hi", then\nstop.');
  assert.equal(rows[8]!.line, 10);
  const p = writeFile(dir, 'multi.csv', 'a,b\n"x\ny\nz",1\n2,3\n');
  assert.deepEqual((await read(p)).map((r) => r.line), [2, 5]);
});

test('CSV: rows with the wrong number of fields are bad rows', async () => {
  const p = writeFile(dir, 'cols.csv', 'prompt,completion\na,b\nc,d,e\nf,g\n');
  await assert.rejects(read(p), /cols\.csv: 1 bad row:\n {2}line 3: Invalid Record Length: columns length is 2, got 3/);
  assert.deepEqual((await read(p, { onBadRow: 'skip' })).map((r) => r.row.prompt), ['a', 'f']);
});

test('TSV, including stray quotes inside fields', async () => {
  const rows = await read(join(FIXTURES, 'completion.tsv'));
  assert.equal(rows.length, 8);
  assert.deepEqual(Object.keys(rows[0]!.row), ['prompt', 'completion']);
  const p = writeFile(dir, 'q.tsv', 'prompt\tcompletion\nsay 5" nails\tok\n');
  assert.deepEqual((await read(p))[0]!.row, { prompt: 'say 5" nails', completion: 'ok' });
});

test('Parquet: flat and nested columns over several row groups, numbered by row', async () => {
  const p = join(dir, 'chat.parquet');
  parquetWriteFile({
    filename: p,
    columnData: [
      { name: 'prompt', data: ['a', 'b', 'c', 'd', 'e'], type: 'STRING' },
      { name: 'n', data: [1n, 2n, 3n, 4n, 5n], type: 'INT64' },
      { name: 'conversations', data: Array.from({ length: 5 }, (_, i) => [{ from: 'human', value: `q${i}` }, { from: 'gpt', value: `a${i}` }]) },
    ],
    rowGroupSize: 2,
  });
  const opened = await openRows(p);
  assert.equal(opened.kind, 'parquet');
  assert.equal(opened.bad.unit, 'row');
  const rows = await collect(opened.rows);
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 3, 4, 5]);
  assert.equal(rows[4]!.row.prompt, 'e');
  assert.equal(rows[4]!.row.n, 5n);
  assert.deepEqual(rows[3]!.row.conversations, [{ from: 'human', value: 'q3' }, { from: 'gpt', value: 'a3' }]);
  const notParquet = writeFile(dir, 'bad.parquet', 'this is not parquet at all');
  await assert.rejects(read(notParquet), /bad\.parquet: not a readable Parquet file/);
});

test('large JSONL and JSON files stream in bounded memory (a reader in a 64 MB heap reads a 100 MB file)', async () => {
  const row = JSON.stringify({ instruction: 'x'.repeat(400), output: 'y'.repeat(600) });
  const n = 100_000;
  for (const kind of ['jsonl', 'json'] as const) {
    const p = join(dir, `big.${kind}`);
    const ws = createWriteStream(p);
    if (kind === 'json') ws.write('{"data": [\n');
    for (let i = 0; i < n; i++) {
      const sep = kind === 'json' && i < n - 1 ? ',\n' : '\n';
      if (!ws.write(row + sep)) await once(ws, 'drain');
    }
    if (kind === 'json') ws.write(']}\n');
    ws.end();
    await once(ws, 'finish');
    const script = `
      import { openRows } from ${JSON.stringify(new URL('../../src-main/data/read/index.ts', import.meta.url).href)};
      let count = 0, line = 0;
      for await (const r of (await openRows(${JSON.stringify(p)})).rows) { count++; line = r.line; }
      console.log(JSON.stringify({ count, line }));`;
    const child = spawnSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.status, 0, `${kind}: reading failed in a 64 MB heap:\n${child.stderr.slice(-2000)}`);
    assert.deepEqual(JSON.parse(child.stdout), { count: n, line: kind === 'json' ? n + 1 : n });
    rmSync(p);
  }
});

test('a window reads only the start of a file; the row it cuts is left out, not reported bad (JSONL, JSON, CSV)', async () => {
  const rows = Array.from({ length: 200 }, (_, i) => ({ text: `row ${i} ${'x'.repeat(40)}` }));
  const jsonl = writeFile(dir, 'w.jsonl', rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const json = writeFile(dir, 'w.json', JSON.stringify(rows, null, 1));
  const csv = writeFile(dir, 'w.csv', 'text\n' + rows.map((r) => r.text).join('\n') + '\n');
  for (const p of [jsonl, json, csv]) {
    const opened = await openRows(p, { window: 1000 });
    const got = await collect(opened.rows); // under 'fail': a bad row would throw
    assert.ok(got.length > 5 && got.length < 30, `${p}: ${got.length} rows in 1000 bytes`);
    assert.deepEqual(got.map((r) => r.row.text), rows.slice(0, got.length).map((r) => r.text));
    assert.equal(opened.bad.count, 0);
    assert.equal((await read(p)).length, 200, 'without a window, every row');
  }
});

test('a FIFO, a folder or a device named like a dataset is refused at once as a DatasetError', { skip: process.platform === 'win32' }, async () => {
  const fifo = join(dir, 'f.jsonl');
  spawnSync('mkfifo', [fifo]);
  mkdirSync(join(dir, 'd.jsonl'));
  symlinkSync('/dev/zero', join(dir, 'z.csv'));
  for (const [p, what] of [[fifo, 'a FIFO'], [join(dir, 'd.jsonl'), 'a folder'], [join(dir, 'z.csv'), 'a character device']] as const) {
    await assert.rejects(read(p), (e: Error) => e instanceof DatasetError && e.message.includes(`${p} is ${what}`));
    await assert.rejects(fileKindOf(p), DatasetError);
  }
});

test('binary data is refused as a file; a NUL byte further on is a bad line', async () => {
  const binary = writeFile(dir, 'bin.jsonl', Buffer.from([0x7b, 0x00, 0x01, 0x02, 0x0a]));
  await assert.rejects(read(binary), /bin\.jsonl: binary data \(a NUL byte at byte 2\), not a text file/);
  const later = writeFile(dir, 'later.jsonl', `${'{"text": "ok"}\n'.repeat(600)}{"text": "a\u0000b"}\n`);
  const opened = await openRows(later, { onBadRow: 'skip' });
  assert.equal((await collect(opened.rows)).length, 600);
  assert.match(opened.bad.first[0]!.reason, /a NUL byte \(at byte 12 of the line\)/);
});

test('a row nested deeper than 64 levels is a bad row, not a crash', async () => {
  const p = writeFile(dir, 'deep.jsonl', `{"text": "ok"}\n{"text": ${'['.repeat(10_000)}${']'.repeat(10_000)}}\n`);
  const opened = await openRows(p, { onBadRow: 'skip' });
  assert.equal((await collect(opened.rows)).length, 1);
  assert.match(opened.bad.first[0]!.reason, /nested deeper than 64/);
});

test('a CSV header that is not UTF-8, or of more than 10,000 columns, refuses the file', async () => {
  await assert.rejects(read(writeFile(dir, 'h.csv', Buffer.from([0xff, 0xfe, 0x41, 0x0a, 0x41, 0x0a]))), /h\.csv line 1: the header line is not valid UTF-8/);
  await assert.rejects(read(writeFile(dir, 'wide.tsv', Array.from({ length: 10_001 }, (_, i) => `c${i}`).join('\t') + '\n')), /wide\.tsv: the header line has 10001 columns \(Finch reads at most 10000\)/);
});
