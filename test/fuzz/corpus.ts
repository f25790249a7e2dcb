// The fuzz corpus: bad files (bad-files.ts) and bad calls, each with the answer it must get from a
// running `finch serve`: an error code other than 'internal' (and a message naming what is wrong),
// or a result a check accepts. The runner (served.ts, for serve.test.ts) sends every case while
// another client keeps calling and the server's memory is sampled. A bug found at the boundary
// becomes one more entry here: `found` says where each came from. The runs that cannot work have
// cases of their own (run-refusals.test.ts), built from the helpers exported here.
import assert from 'node:assert/strict';
import { cpSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { ErrorCode, MemoryEstimateResult } from '../../src-shared/api.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { JUNK_SIZES } from './bad-files.js';

/** A JSON-RPC answer as it came over the socket. */
export interface RpcAnswer {
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: { code: ErrorCode; message: string; hint: string | null; field?: string } };
}

/** What a case's steps can use. */
export interface CaseContext {
  /** The absolute path of a corpus entry (bad-files.ts). */
  at(path: string): string;
  /** One call on the case's socket: resolves with the answer (rejects after the case's time limit). */
  call(method: string, params: unknown[]): Promise<RpcAnswer>;
  /** A raw message on the case's socket; resolves with the next answer. */
  send(message: unknown): Promise<RpcAnswer>;
  /** Ids of what the runner's setup added: `model` (the good model), `dataset` (good.jsonl). */
  ids: Record<string, string>;
  /** The server's FINCH_HOME. */
  home: string;
  /** What the server has written to stderr so far (its log). */
  stderr(): string;
}

export interface ApiCase {
  name: string;
  /** Where the case comes from: the probe of issue 23, or the bug it pins. */
  found?: string;
  /** Steps before the call (add a good model, then break its files). */
  before?: (c: CaseContext) => Promise<void>;
  /** The call, or a raw JSON-RPC message. */
  call: (c: CaseContext) => { method: string; params: unknown[] } | { raw: Record<string, unknown> };
  /** Sent this many times at once. */
  parallel?: number;
  /** For legitimate heavy work: its own time limit (ms) instead of the corpus's seconds. */
  limitMs?: number;
  /**
   * The answer: an ApiError code (with a message pattern), a JSON-RPC error code, or a result
   * the check accepts. `or` lists other acceptable codes (junk some readers take as rows); `hint`
   * and `field` are checked when given (the ApiError's hint, the argument at fault: "0.seqLen").
   */
  expect: { code: ErrorCode; message?: RegExp; hint?: RegExp; field?: string; or?: (ErrorCode | 'ok')[] } | { rpc: number; message?: RegExp } | { ok: (value: unknown) => void };
  /** Checks after the answer (that a refused call changed nothing). */
  after?: (c: CaseContext) => Promise<void>;
}

export const PROBE = 'issue 23 probe (2026-12-07)';

const add = (path: string) => ({ method: 'addLocalModel', params: [{ path }] });
const addData = (path: string, extra: object = {}) => ({ method: 'addDataset', params: [{ path, ...extra }] });
const preview = (path: string, extra: object = {}) => ({ method: 'previewDataset', params: [{ path, ...extra }] });
export const runConfig = (modelId: string, datasetId: string, extra: object = {}) => ({ ...RUN_DEFAULTS, modelId, datasetId, ...extra });

/**
 * Adds a copy of the good model to the library under `late/<name>`, then replaces its file `file`
 * by `make`: what a model folder changed after it was added looks like. Sets ids[name].
 */
export const addThenBreak = (name: string, file: string, make: (p: string) => void) => async (c: CaseContext) => {
  const dir = join(c.at('late'), name);
  cpSync(c.at('good-model'), dir, { recursive: true });
  const r = await c.call('addLocalModel', [{ path: dir, name }]);
  assert.ok(r.result, `adding ${dir} before breaking it: ${JSON.stringify(r.error)}`);
  c.ids[name] = (r.result as { id: string }).id;
  rmSync(join(dir, file), { force: true });
  make(join(dir, file));
};
export const config = (fields: object) => (p: string) =>
  writeFileSync(p, JSON.stringify({ model_type: 'llama', vocab_size: 512, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, ...fields }));
export const fifo = (p: string): void => { execFileSync('mkfifo', [p]); };
export const toZero = (p: string) => symlinkSync('/dev/zero', p);

const verdict = (want: MemoryEstimateResult['verdict']) => (v: unknown) => {
  const e = v as MemoryEstimateResult;
  assert.equal(e.verdict, want, `verdict ${e.verdict} for ${e.hostBytes} bytes`);
  assert.ok(Number.isFinite(e.hostBytes) && e.hostBytes > 0, `hostBytes ${e.hostBytes}`);
};

const notAFile = /not a regular file/;

export const API_CASES: ApiCase[] = [
  // ---- model folders with special files, as addLocalModel sees them --------------------------------
  { name: 'config.json is a FIFO', found: `${PROBE}: froze the whole server`, call: (c) => add(c.at('model-fifo-config')), expect: { code: 'bad_model', message: /config\.json is a FIFO/ } },
  { name: 'config.json links to /dev/zero', found: `${PROBE}: grew ~180 MB/s`, call: (c) => add(c.at('model-zero-config')), expect: { code: 'bad_model', message: /config\.json is a character device/ } },
  { name: 'config.json links to /dev/urandom', call: (c) => add(c.at('model-urandom-config')), expect: { code: 'bad_model', message: notAFile } },
  { name: 'config.json is a folder', call: (c) => add(c.at('model-folder-config')), expect: { code: 'bad_model', message: /config\.json is a folder/ } },
  { name: 'tokenizer.json is a FIFO', call: (c) => add(c.at('model-fifo-tokenizer')), expect: { code: 'bad_model', message: /tokenizer\.json is a FIFO/ } },
  { name: 'tokenizer.json links to /dev/zero', call: (c) => add(c.at('model-zero-tokenizer')), expect: { code: 'bad_model', message: notAFile } },
  { name: 'chat_template.jinja is a FIFO', call: (c) => add(c.at('model-fifo-template')), expect: { code: 'bad_model', message: /chat_template\.jinja is a FIFO/ } },
  { name: 'model.safetensors is a FIFO', call: (c) => add(c.at('model-fifo-weights')), expect: { code: 'bad_model', message: /model\.safetensors is a FIFO/ } },
  { name: 'model.safetensors links to /dev/zero', call: (c) => add(c.at('model-zero-weights')), expect: { code: 'bad_model', message: notAFile } },
  { name: 'generation_config.json (optional) is a FIFO', call: (c) => add(c.at('model-fifo-generation')), expect: { code: 'bad_model', message: /generation_config\.json is a FIFO/ } },
  { name: 'the model folder is a FIFO', call: (c) => add(c.at('fifo-folder')), expect: { code: 'not_found', message: /is not a folder/ } },
  { name: 'the model folder is /dev/zero', call: () => add('/dev/zero'), expect: { code: 'not_found', message: /is not a folder/ } },

  // ---- sizes ---------------------------------------------------------------------------------
  { name: 'config.json of 20 MB', call: (c) => add(c.at('model-big-config')), expect: { code: 'bad_model', message: /config\.json is 20\.0 MiB; Finch reads at most 16\.0 MiB of a model config/ } },
  { name: 'config.json nested 100,000 deep', call: (c) => add(c.at('model-deep-config')), expect: { code: 'bad_model', message: /nested deeper than 64/ } },
  { name: 'tokenizer.json nested 100,000 deep', call: (c) => add(c.at('model-deep-tokenizer')), expect: { code: 'bad_model', message: /nested deeper than 64/ } },
  { name: 'vocab_size 2^30 and hidden_size 2^20', found: `${PROBE}: estimateMemory aborted the process`, call: (c) => add(c.at('model-huge-config')), expect: { code: 'bad_model', message: /"hidden_size" is 1048576, beyond Finch's limit of 65536/ } },
  { name: 'vocab_size 2^30 alone', found: `${PROBE}: Maximum call stack size exceeded`, call: (c) => add(c.at('model-huge-vocab')), expect: { code: 'bad_model', message: /"vocab_size" is 1073741824/ } },
  { name: 'vocab_size × hidden_size = 2^37', call: (c) => add(c.at('model-huge-embedding')), expect: { code: 'bad_model', message: /vocab_size × hidden_size = 137438953472 elements/ } },
  ...JUNK_SIZES.map(([field, value]): ApiCase => ({
    name: `config.json: ${field} is ${value}`, call: (c) => add(c.at(`model-junk-${field}`)),
    expect: { code: 'bad_model', message: new RegExp(`"${field}" must be a positive integer, got ${value === '1e400' ? 'Infinity' : value.replace('.', '\\.')}`) },
  })),

  // ---- lying safetensors -------------------------------------------------------------------------
  { name: 'a safetensors header claiming 1 TB', found: `${PROBE}: added with a "fits" verdict`, call: (c) => add(c.at('model-1tb-weights')), expect: { code: 'bad_model', message: /out of range \(ends at data byte 1000000000000/ } },
  { name: 'a safetensors header length of 2^40', call: (c) => add(c.at('model-long-header')), expect: { code: 'bad_model', message: /header length 1099511627776 is implausible/ } },
  { name: 'a safetensors header past the end of the file', call: (c) => add(c.at('model-short-file')), expect: { code: 'bad_model', message: /truncated safetensors file \(header says 4096 bytes/ } },
  { name: 'safetensors data_offsets beyond 2^53', call: (c) => add(c.at('model-unsafe-offsets')), expect: { code: 'bad_model', message: /bad data_offsets/ } },
  { name: 'a safetensors shape of 2^40 × 2^40 over 16 bytes', call: (c) => add(c.at('model-huge-shape')), expect: { code: 'bad_model', message: /spans 16 bytes but F32\[1099511627776, 1099511627776\] needs 4835703278458516698824704/ } },
  { name: 'a safetensors header of binary junk', call: (c) => add(c.at('model-junk-header')), expect: { code: 'bad_model', message: /bad safetensors header JSON/ } },
  { name: 'a safetensors header nested 100,000 deep', call: (c) => add(c.at('model-deep-header')), expect: { code: 'bad_model', message: /nested deeper than 64/ } },
  { name: 'a checkpoint cut 100 bytes short', call: (c) => add(c.at('model-truncated-weights')), expect: { code: 'bad_model', message: /out of range.*truncated/ } },
  { name: 'a 7-byte weights file', call: (c) => add(c.at('model-7-bytes')), expect: { code: 'bad_model', message: /truncated safetensors file \(7 bytes/ } },
  { name: 'only a pickle file', call: (c) => add(c.at('model-no-weights')), expect: { code: 'bad_model', message: /pytorch_model\.bin, a pickle file/ } },

  // ---- Hugging Face cache folders that point nowhere --------------------------------------------
  { name: 'a cache folder with two snapshots and no refs/main', call: (c) => add(c.at('hub/models--org--two-snapshots')), expect: { code: 'bad_model', message: /no refs\/main and 2 snapshots/ } },
  { name: 'refs/main names a missing snapshot', call: (c) => add(c.at('hub/models--org--dangling-ref')), expect: { code: 'bad_model', message: /points to commit c{40}, but .* is missing/ } },
  { name: 'refs/main is a FIFO', call: (c) => add(c.at('hub/models--org--fifo-ref')), expect: { code: 'bad_model', message: /main is a FIFO/ } },
  { name: 'refs/main holds a path', call: (c) => add(c.at('hub/models--org--junk-ref')), expect: { code: 'bad_model', message: /does not hold a commit/ } },

  // ---- a model in the library whose files change afterwards --------------------------------------
  {
    name: 'estimateMemory after config.json became vocab 2^30 × hidden 2^20', found: `${PROBE}: "Fatal JavaScript invalid size error", the process aborted (3 of 3)`,
    before: addThenBreak('huge-later', 'config.json', config({ vocab_size: 2 ** 30, hidden_size: 2 ** 20 })),
    call: (c) => ({ method: 'estimateMemory', params: [runConfig(c.ids['huge-later']!, c.ids.dataset!)] }), expect: { code: 'bad_model', message: /beyond Finch's limit/ },
  },
  {
    name: 'estimateMemory after config.json became vocab 2^30', found: `${PROBE}: internal: Maximum call stack size exceeded`,
    before: addThenBreak('vocab-later', 'config.json', config({ vocab_size: 2 ** 30 })),
    call: (c) => ({ method: 'estimateMemory', params: [runConfig(c.ids['vocab-later']!, c.ids.dataset!)] }), expect: { code: 'bad_model', message: /"vocab_size" is 1073741824/ },
  },
  {
    name: 'estimateMemory after config.json became a FIFO', before: addThenBreak('fifo-later', 'config.json', fifo),
    call: (c) => ({ method: 'estimateMemory', params: [runConfig(c.ids['fifo-later']!, c.ids.dataset!)] }), expect: { code: 'bad_model', message: /is a FIFO/ },
  },
  {
    name: 'modelDetails after config.json became a link to /dev/zero', before: addThenBreak('zero-later', 'config.json', toZero),
    call: (c) => ({ method: 'modelDetails', params: [c.ids['zero-later']] }), expect: { code: 'bad_model', message: /is a character device/ },
  },
  {
    name: 'previewDataset with a model whose tokenizer.json became a FIFO', before: addThenBreak('tokenizer-later', 'tokenizer.json', fifo),
    call: (c) => preview(c.at('good.jsonl'), { modelId: c.ids['tokenizer-later'] }), expect: { code: 'bad_model', message: /tokenizer\.json is a FIFO/ },
  },
  {
    name: 'estimateMemory of a config within every limit that no machine holds: "will-not-fit", answered',
    before: addThenBreak('big-later', 'config.json', config({ vocab_size: 2 ** 20, hidden_size: 4096, intermediate_size: 2 ** 18, num_hidden_layers: 8, num_attention_heads: 32, num_key_value_heads: 8 })),
    call: (c) => ({ method: 'estimateMemory', params: [runConfig(c.ids['big-later']!, c.ids.dataset!, { batch: 4096, seqLen: 131_072, quantize: false })] }),
    expect: { ok: verdict('will-not-fit') },
  },
  {
    name: 'estimateMemory of the tiny model at batch 4096 × 131072 tokens: "will-not-fit", answered',
    call: (c) => ({ method: 'estimateMemory', params: [runConfig(c.ids.model!, c.ids.dataset!, { batch: 4096, seqLen: 131_072 })] }),
    expect: { ok: verdict('will-not-fit') },
  },

  // ---- datasets that are not files ------------------------------------------------------------
  { name: 'addDataset: a FIFO', call: (c) => addData(c.at('fifo.jsonl')), expect: { code: 'bad_dataset', message: /fifo\.jsonl is a FIFO/ } },
  { name: 'previewDataset: a FIFO, six at once', found: `${PROBE}: four previews of a FIFO used up Node's file-I/O threads; every later dataset call hung`, parallel: 6, call: (c) => preview(c.at('fifo.jsonl')), expect: { code: 'bad_dataset', message: /is a FIFO/ } },
  { name: 'previewDataset of a good file after the FIFOs', call: (c) => preview(c.at('good.jsonl')), expect: { ok: (v) => assert.equal((v as { rows: unknown[] }).rows.length, 8) } },
  { name: 'previewDataset: x.jsonl links to /dev/zero', found: `${PROBE}: grew ~240 MB/s`, call: (c) => preview(c.at('zero.jsonl')), expect: { code: 'bad_dataset', message: /is a character device/ } },
  { name: 'addDataset: x.jsonl links to /dev/zero', call: (c) => addData(c.at('zero.jsonl')), expect: { code: 'bad_dataset', message: notAFile } },
  { name: 'addDataset: a link to /dev/urandom', call: (c) => addData(c.at('urandom.csv')), expect: { code: 'bad_dataset', message: notAFile } },
  { name: 'previewDataset: a link to /dev/null', call: (c) => preview(c.at('null.parquet')), expect: { code: 'bad_dataset', message: notAFile } },
  { name: 'addDataset: a folder', call: (c) => addData(c.at('folder.jsonl')), expect: { code: 'bad_dataset', message: /is a folder/ } },
  { name: 'addDataset: a Unix socket', call: (c) => addData(c.at('socket.jsonl')), expect: { code: 'bad_dataset', message: /is a socket/ } },
  { name: 'addDataset: a dangling link', call: (c) => addData(c.at('dangling.jsonl')), expect: { code: 'not_found' } },
  { name: 'previewDataset: a loop of links', call: (c) => preview(c.at('loop.jsonl')), expect: { code: 'not_found', or: ['bad_dataset'] } },

  // ---- datasets with nothing in them ----------------------------------------------------------
  ...(['jsonl', 'json', 'csv', 'tsv', 'parquet'] as const).map((ext): ApiCase => ({
    name: `addDataset: a 0-byte .${ext}`, call: (c) => addData(c.at(`empty.${ext}`)), expect: { code: 'bad_dataset', message: /(empty \(0 bytes\)|not a readable Parquet)/ },
  })),
  { name: 'addDataset: a CSV header alone', call: (c) => addData(c.at('header-only.csv')), expect: { code: 'bad_dataset', message: /no rows \(a header line alone\)/ } },
  { name: 'addDataset: a TSV header alone', call: (c) => addData(c.at('header-only.tsv')), expect: { code: 'bad_dataset', message: /no rows \(a header line alone\)/ } },
  { name: 'addDataset: []', call: (c) => addData(c.at('empty-array.json')), expect: { code: 'bad_dataset', message: /no rows/ } },
  { name: 'addDataset: {"data": []}', call: (c) => addData(c.at('empty-data.json')), expect: { code: 'bad_dataset', message: /no rows/ } },
  { name: 'addDataset: blank lines only', call: (c) => addData(c.at('blank-lines.jsonl')), expect: { code: 'bad_dataset', message: /no rows/ } },
  { name: 'addDataset: a Parquet table with no rows', call: (c) => addData(c.at('empty-table.parquet')), expect: { code: 'bad_dataset', message: /no rows \(the table is empty\)/ } },

  // ---- junk, truncation, depth, width --------------------------------------------------------------
  ...(['jsonl', 'json', 'csv', 'tsv', 'parquet'] as const).flatMap((ext): ApiCase[] => [
    { name: `addDataset: binary junk named .${ext}`, call: (c) => addData(c.at(`junk.${ext}`)), expect: { code: 'bad_dataset' } },
    // Junk bytes that happen to split into lines are rows with invalid UTF-8: a preview shows them as bad rows.
    { name: `previewDataset: binary junk named .${ext}`, call: (c) => preview(c.at(`junk.${ext}`)), expect: { code: 'bad_dataset', or: ['ok'] } },
  ]),
  { name: 'addDataset: a Parquet file cut in half', call: (c) => addData(c.at('truncated.parquet')), expect: { code: 'bad_dataset', message: /not a readable Parquet file/ } },
  { name: 'previewDataset: a Parquet footer claiming 2 GB', call: (c) => preview(c.at('lying-footer.parquet')), expect: { code: 'bad_dataset', message: /not a readable Parquet file/ } },
  { name: 'addDataset: a row nested 100,000 deep (JSON Lines)', call: (c) => addData(c.at('deep-row.jsonl')), expect: { code: 'bad_dataset', message: /line 1: JSON nested deeper than 64/ } },
  { name: 'addDataset: a row nested 100,000 deep (JSON)', call: (c) => addData(c.at('deep-row.json')), expect: { code: 'bad_dataset', message: /line 1: JSON nested deeper than 64/ } },
  { name: 'previewDataset: a row nested 100,000 deep', call: (c) => preview(c.at('deep-row.jsonl')), expect: { ok: (v) => assert.match(JSON.stringify((v as { badRows: unknown[] }).badRows), /nested deeper than 64/) } },
  { name: 'addDataset: a CSV of 20,000 columns', call: (c) => addData(c.at('wide.csv')), expect: { code: 'bad_dataset', message: /20000 columns \(Finch reads at most 10000\)/ } },
  {
    name: 'previewDataset of a 9 MiB file with a model and 5000 rows tokenized: the server answers others meanwhile',
    limitMs: 60_000,
    call: (c) => preview(c.at('large.jsonl'), { modelId: c.ids.model, map: { prompt: 'query', completion: 'response' }, statsRows: 5000 }),
    expect: { ok: (v) => {
      const p = v as { rows: unknown[]; lengths: { rows: number } | null; badRows: unknown[] };
      assert.equal(p.rows.length, 20);
      assert.equal(p.lengths?.rows, 5000);
      assert.equal(p.badRows.length, 0, 'the row the window cuts is no bad row');
    } },
  },
  { name: 'addDataset: one 70 MB line', call: (c) => addData(c.at('one-line.jsonl')), expect: { code: 'bad_dataset', message: /no rows in its first 8\.0 MiB/ } },
  { name: 'previewDataset: one 70 MB line', call: (c) => preview(c.at('one-line.jsonl')), expect: { ok: (v) => assert.equal((v as { rows: unknown[] }).rows.length, 0) } },

  // ---- one file, one library entry -------------------------------------------------------------------
  { name: 'addDataset: the same file again returns the entry it has', call: (c) => addData(c.at('good.jsonl')), expect: { ok: (v) => assert.equal((v as { path: string }).path.endsWith('good.jsonl'), true) } },
  { name: 'addDataset: the same file with another column map is a conflict', call: (c) => addData(c.at('good.jsonl'), { map: { prompt: 'response', completion: 'query' } }), expect: { code: 'conflict', message: /already in the library/ } },
  { name: 'addLocalModel: the same folder again returns the entry it has', call: (c) => add(c.at('good-model')), expect: { ok: (v) => assert.equal((v as { name: string }).name, 'good-model') } },

  // ---- adapters ------------------------------------------------------------------------------
  { name: 'importAdapter: adapter_config.json is a FIFO', call: (c) => ({ method: 'importAdapter', params: [{ path: c.at('adapter-fifo-config'), baseModelId: c.ids.model }] }), expect: { code: 'bad_adapter', message: /adapter_config\.json is a FIFO/ } },
  { name: 'importAdapter: the weights link to /dev/zero', call: (c) => ({ method: 'importAdapter', params: [{ path: c.at('adapter-zero-weights'), baseModelId: c.ids.model }] }), expect: { code: 'bad_adapter', message: notAFile } },
  { name: 'importAdapter: weights whose header claims 1 TB', call: (c) => ({ method: 'importAdapter', params: [{ path: c.at('adapter-lying-weights'), baseModelId: c.ids.model }] }), expect: { code: 'bad_adapter', message: /out of range/ } },

  // ---- JSON-RPC to the letter, settings that are URLs ------------------------------------------------
  ...([['an object', {}], ['an array', [1]], ['a boolean', true]] as const).map(([what, id]): ApiCase => ({
    name: `JSON-RPC: an id that is ${what} gets -32600 and the call does not run`, found: `${PROBE}: the call ran and got no reply`,
    call: () => ({ raw: { jsonrpc: '2.0', id, method: 'setSettings', params: [{ defaultProvider: 'cpu' }] } }),
    expect: { rpc: -32600, message: /"id" must be a string, a number or null/ },
    after: async (c) => assert.equal(((await c.call('getSettings', [])).result as { defaultProvider: string }).defaultProvider, 'auto', 'setSettings must not have run'),
  })),
  { name: 'JSON-RPC: an id of null is answered (with id null)', call: () => ({ raw: { jsonrpc: '2.0', id: null, method: 'listDatasets', params: [] } }), expect: { ok: (v) => assert.ok(Array.isArray(v)) } },
  ...(['javascript:alert(1)', 'file:///etc/passwd', 'data:text/html,x'] as const).map((url): ApiCase => ({
    name: `setSettings: hfEndpoint ${url.split(':')[0]}: is refused`, found: `${PROBE}: javascript: and file: passed`,
    call: () => ({ method: 'setSettings', params: [{ hfEndpoint: url }] }), expect: { code: 'invalid_argument', message: /http:\/\/ or https:\/\// },
    after: async (c) => assert.equal(((await c.call('getSettings', [])).result as { hfEndpoint: string | null }).hfEndpoint, null),
  })),
];

/** A command line and how `finch` must end: its exit code and a pattern of its stderr. */
export interface CliCase {
  name: string;
  found?: string;
  /** The arguments after `finch`; `at` names corpus entries, `out` is a fresh folder. */
  args: (at: (path: string) => string, out: string) => string[];
  exit: 1 | 2;
  message: RegExp;
}

const MAP = ['--map', 'prompt=query,completion=response'];
const train = (model: string, data: string, out: string, extra: string[] = []) =>
  ['train', '--model', model, '--data', data, '--out', out, '--max-steps', '1', '--threads', '1', ...MAP, ...extra];

export const CLI_CASES: CliCase[] = [
  { name: 'finch train --model <folder whose config.json is a FIFO>', found: PROBE, args: (at, out) => train(at('model-fifo-config'), at('good.jsonl'), out), exit: 1, message: /config\.json is a FIFO/ },
  { name: 'finch train --model <a FIFO>', args: (at, out) => train(at('fifo-folder'), at('good.jsonl'), out), exit: 1, message: /model folder not found/ },
  { name: 'finch train --model <config.json -> /dev/zero>', args: (at, out) => train(at('model-zero-config'), at('good.jsonl'), out), exit: 1, message: /config\.json is a character device/ },
  { name: 'finch train --model <model.safetensors is a FIFO>', args: (at, out) => train(at('model-fifo-weights'), at('good.jsonl'), out), exit: 1, message: /model\.safetensors is a FIFO/ },
  { name: 'finch train --model <vocab_size 2^30, hidden_size 2^20>', args: (at, out) => train(at('model-huge-config'), at('good.jsonl'), out), exit: 1, message: /beyond Finch's limit/ },
  { name: 'finch train --model <a header claiming 1 TB>', args: (at, out) => train(at('model-1tb-weights'), at('good.jsonl'), out), exit: 1, message: /out of range/ },
  { name: 'finch train --data <a FIFO>', args: (at, out) => train(at('good-model'), at('fifo.jsonl'), out), exit: 1, message: /fifo\.jsonl is a FIFO/ },
  { name: 'finch train --data <x.jsonl -> /dev/zero>', args: (at, out) => train(at('good-model'), at('zero.jsonl'), out), exit: 1, message: /zero\.jsonl is a character device/ },
  { name: 'finch train --data <one 70 MB line>', args: (at, out) => train(at('good-model'), at('one-line.jsonl'), out), exit: 1, message: /line 1: a line longer than 64\.0 MiB/ },
  { name: 'finch train --data <binary junk .csv>', args: (at, out) => train(at('good-model'), at('junk.csv'), out), exit: 1, message: /binary data \(a NUL byte/ },
  { name: 'finch train --config <a FIFO>', args: (at) => ['train', '--config', at('fifo.jsonl')], exit: 2, message: /fifo\.jsonl is a FIFO/ },
  { name: 'finch train --config <a link to /dev/zero>', args: (at) => ['train', '--config', at('zero.jsonl')], exit: 2, message: /is a character device/ },
  { name: 'finch train --resume <a folder whose run.json is a FIFO>', args: (at) => ['train', '--resume', at('run-fifo-record')], exit: 2, message: /run\.json is a FIFO/ },
  { name: 'finch train --resume <a folder whose run.json links to /dev/zero>', args: (at) => ['train', '--resume', at('run-zero-record')], exit: 2, message: /run\.json is a character device/ },
  { name: 'finch tokenize --model <tokenizer.json is a FIFO>', args: (at) => ['tokenize', '--model', at('model-fifo-tokenizer'), '--text', 'hi'], exit: 1, message: /tokenizer\.json is a FIFO/ },
  { name: 'finch generate --adapter <adapter_config.json is a FIFO>', args: (at) => ['generate', '--model', at('good-model'), '--adapter', at('adapter-fifo-config'), '--prompt', 'hi', '--max-new-tokens', '1'], exit: 1, message: /adapter_config\.json is a FIFO/ },
  { name: 'finch merge --adapter <weights -> /dev/zero>', args: (at, out) => ['merge', '--model', at('good-model'), '--adapter', at('adapter-zero-weights'), '--out', out], exit: 1, message: /is a character device/ },
  { name: 'finch export gguf --model <config.json is a FIFO>', args: (at, out) => ['export', 'gguf', '--model', at('model-fifo-config'), '--out', `${out}.gguf`], exit: 1, message: /config\.json is a FIFO/ },
  { name: 'finch eval --data <a FIFO>', args: (at) => ['eval', '--model', at('good-model'), '--data', at('fifo.jsonl'), ...MAP], exit: 1, message: /fifo\.jsonl is a FIFO/ },
];
