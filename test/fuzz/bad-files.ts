// The bad files of the fuzz corpus, made at test time in a fresh folder: FIFOs, sockets and links
// to devices (which cannot live in git), truncated and lying safetensors, configs that declare
// huge sizes, JSON nested 100,000 deep, binary junk under every dataset extension, Hugging Face
// cache folders that point nowhere. Each entry is one file or folder and why it is bad; the cases
// (corpus.ts) name them. Linux and macOS only (mkfifo, /dev/zero).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { mathRows } from '../helpers/fixtures.js';

/** Deterministic junk (xorshift32), so a failure reproduces byte for byte. */
export function junk(bytes: number, seed = 1): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export const deepJson = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** A safetensors file from a header (object or raw text), `data` bytes of zeros, and an optional lying length prefix. */
export function safetensorsBytes(header: object | string, data: number, declaredLength?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declaredLength ?? BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(data)]);
}

/** The tiny good model every model case starts from (4 heads of 16, 2 layers, 512 tokens). */
export const TINY = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 512 };

const TINY_CONFIG = {
  model_type: 'llama', vocab_size: 512, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
};

/** A size field of config.json and a value that is no size (raw JSON). */
export const JUNK_SIZES: [string, string][] = [
  ['vocab_size', '"512"'], ['hidden_size', '1e400'], ['intermediate_size', '-1'], ['num_hidden_layers', '1.5'], ['num_attention_heads', '0'],
];

/** What a bad entry is made of, relative to the corpus root. */
export interface BadFile {
  /** Path under the corpus root. */
  path: string;
  why: string;
  make(abs: string, root: string): unknown;
}

const fifo = (p: string): void => { execFileSync('mkfifo', [p]); };
const link = (target: string) => (p: string) => symlinkSync(target, p);
const text = (t: string | Buffer) => (p: string) => writeFileSync(p, t);

/** A copy of the good model with its file `name` made by `make` (the file is removed first). */
const goodModelWith = (name: string, make: (p: string) => void) => (dir: string, root: string) => {
  cpSync(join(root, 'good-model'), dir, { recursive: true });
  rmSync(join(dir, name), { force: true, recursive: true });
  make(join(dir, name));
};

const jsonRows = mathRows(8);
const sockets: Server[] = [];

/** Every bad file and folder, in the order they are made ('good-model' first: others copy it). */
export const BAD_FILES: BadFile[] = [
  { path: 'good-model', why: 'a valid tiny model: the base of the model cases', make: (p) => { writeSyntheticCheckpoint(p, TINY); } },
  { path: 'good.jsonl', why: 'a valid dataset', make: text(jsonRows.map((r) => JSON.stringify(r)).join('\n') + '\n') },
  { path: 'good-copy.jsonl', why: 'a valid dataset for the duplicate cases', make: text(jsonRows.map((r) => JSON.stringify(r)).join('\n') + '\n') },

  // ---- special files where a file is expected -------------------------------------------------
  { path: 'fifo.jsonl', why: 'a FIFO named like a dataset (reading it waits for a writer forever)', make: fifo },
  { path: 'zero.jsonl', why: 'a link to /dev/zero named like a dataset (endless bytes, no newline)', make: link('/dev/zero') },
  { path: 'urandom.csv', why: 'a link to /dev/urandom named like a dataset', make: link('/dev/urandom') },
  { path: 'null.parquet', why: 'a link to /dev/null named like a dataset', make: link('/dev/null') },
  { path: 'folder.jsonl', why: 'a folder named like a dataset', make: (p) => mkdirSync(p) },
  { path: 'dangling.jsonl', why: 'a symbolic link to nothing', make: link('/nonexistent/finch-fuzz') },
  { path: 'loop.jsonl', why: 'a loop of symbolic links', make: (p) => { symlinkSync(p + '.b', p); symlinkSync(p, p + '.b'); } },
  {
    path: 'socket.jsonl', why: 'a Unix socket named like a dataset',
    make: (p) => new Promise<void>((ok, fail) => { const s = createServer(); sockets.push(s); s.once('error', fail); s.listen(p, () => ok()); }),
  },
  { path: 'model-fifo-config', why: 'config.json is a FIFO (froze the whole server)', make: goodModelWith('config.json', fifo) },
  { path: 'model-zero-config', why: 'config.json links to /dev/zero (grew ~180 MB/s)', make: goodModelWith('config.json', link('/dev/zero')) },
  { path: 'model-urandom-config', why: 'config.json links to /dev/urandom', make: goodModelWith('config.json', link('/dev/urandom')) },
  { path: 'model-folder-config', why: 'config.json is a folder', make: goodModelWith('config.json', (p) => mkdirSync(p)) },
  { path: 'model-fifo-tokenizer', why: 'tokenizer.json is a FIFO', make: goodModelWith('tokenizer.json', fifo) },
  { path: 'model-zero-tokenizer', why: 'tokenizer.json links to /dev/zero', make: goodModelWith('tokenizer.json', link('/dev/zero')) },
  { path: 'model-fifo-template', why: 'chat_template.jinja is a FIFO', make: goodModelWith('chat_template.jinja', fifo) },
  { path: 'model-fifo-weights', why: 'model.safetensors is a FIFO', make: goodModelWith('model.safetensors', fifo) },
  { path: 'model-zero-weights', why: 'model.safetensors links to /dev/zero', make: goodModelWith('model.safetensors', link('/dev/zero')) },
  { path: 'model-fifo-generation', why: 'generation_config.json (optional) is a FIFO', make: goodModelWith('generation_config.json', fifo) },
  { path: 'fifo-folder', why: 'a FIFO where a model folder is expected', make: fifo },

  // ---- sizes: too large, nested too deep, declared too big -------------------------------------
  { path: 'model-big-config', why: 'config.json of 20 MB (over the 16 MiB limit)', make: goodModelWith('config.json', text(`{"model_type": "llama"${' '.repeat(20 * 2 ** 20)}}`)) },
  { path: 'model-deep-config', why: 'config.json nested 100,000 deep', make: goodModelWith('config.json', text(`{"model_type": "llama", "x": ${deepJson(100_000)}}`)) },
  { path: 'model-deep-tokenizer', why: 'tokenizer.json nested 100,000 deep', make: goodModelWith('tokenizer.json', text(`{"model": ${deepJson(100_000)}}`)) },
  { path: 'model-huge-config', why: 'vocab_size 2^30 and hidden_size 2^20 (estimateMemory aborted the process)', make: goodModelWith('config.json', text(JSON.stringify({ ...TINY_CONFIG, vocab_size: 2 ** 30, hidden_size: 2 ** 20 }))) },
  { path: 'model-huge-vocab', why: 'vocab_size 2^30 alone (Maximum call stack size exceeded)', make: goodModelWith('config.json', text(JSON.stringify({ ...TINY_CONFIG, vocab_size: 2 ** 30 }))) },
  { path: 'model-huge-embedding', why: 'each field within its limit, vocab_size × hidden_size = 2^37', make: goodModelWith('config.json', text(JSON.stringify({ ...TINY_CONFIG, vocab_size: 2 ** 21, hidden_size: 2 ** 16, intermediate_size: 128, num_attention_heads: 64, num_key_value_heads: 64 }))) },
  ...JUNK_SIZES.map(([field, value]): BadFile => ({
    path: `model-junk-${field}`, why: `${field} is ${value}`,
    make: goodModelWith('config.json', text(JSON.stringify(TINY_CONFIG).replace(new RegExp(`"${field}":\\d+`), `"${field}":${value}`))),
  })),

  // ---- lying safetensors ---------------------------------------------------------------------
  { path: 'model-1tb-weights', why: 'a header claiming 1 TB of data past the end of the file (was added as "fits")', make: goodModelWith('model.safetensors', text(safetensorsBytes({ 'model.embed_tokens.weight': { dtype: 'F32', shape: [250_000_000_000], data_offsets: [0, 1_000_000_000_000] } }, 64))) },
  { path: 'model-long-header', why: 'a header length of 2^40', make: goodModelWith('model.safetensors', text(safetensorsBytes({}, 0, 2n ** 40n))) },
  { path: 'model-short-file', why: 'a header length past the end of the file', make: goodModelWith('model.safetensors', text(safetensorsBytes({}, 0, 4096n))) },
  { path: 'model-unsafe-offsets', why: 'data_offsets beyond 2^53', make: goodModelWith('model.safetensors', text(safetensorsBytes('{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 18014398509481985]}}', 16))) },
  { path: 'model-huge-shape', why: 'a shape of 2^40 × 2^40 over 16 bytes', make: goodModelWith('model.safetensors', text(safetensorsBytes({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] } }, 16))) },
  { path: 'model-junk-header', why: 'a header of binary junk', make: goodModelWith('model.safetensors', text(safetensorsBytes(junk(256).toString('latin1'), 16))) },
  { path: 'model-deep-header', why: 'a header nested 100,000 deep', make: goodModelWith('model.safetensors', text(safetensorsBytes(`{"__metadata__": ${deepJson(100_000)}}`, 0))) },
  { path: 'model-truncated-weights', why: 'a valid checkpoint cut 100 bytes short', make: (p, root) => {
    cpSync(join(root, 'good-model'), p, { recursive: true });
    const f = join(p, 'model.safetensors');
    execFileSync('truncate', ['-s', '-100', f]);
  } },
  { path: 'model-7-bytes', why: 'a 7-byte weights file', make: goodModelWith('model.safetensors', text(Buffer.alloc(7))) },
  { path: 'model-no-weights', why: 'only a pickle file', make: goodModelWith('model.safetensors', (p) => writeFileSync(p.replace('model.safetensors', 'pytorch_model.bin'), junk(64))) },

  // ---- datasets: empty, header only, junk in every format ----------------------------------------
  ...(['jsonl', 'json', 'csv', 'tsv', 'parquet'] as const).flatMap((ext, i): BadFile[] => [
    { path: `empty.${ext}`, why: `a 0-byte .${ext}`, make: text('') },
    { path: `junk.${ext}`, why: `64 KiB of binary junk named .${ext}`, make: text(junk(64 * 1024, 7 + i)) },
  ]),
  { path: 'header-only.csv', why: 'a CSV header line alone', make: text('query,response\n') },
  { path: 'header-only.tsv', why: 'a TSV header line alone', make: text('query\tresponse\n') },
  { path: 'empty-array.json', why: 'an empty JSON array', make: text('[]') },
  { path: 'empty-data.json', why: 'a JSON object holding an empty array', make: text('{"data": []}') },
  { path: 'blank-lines.jsonl', why: 'JSON Lines of blank lines only', make: text('\n\n   \n\n') },
  { path: 'empty-table.parquet', why: 'a Parquet file with the columns and no rows', make: text(Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'query', data: [], type: 'STRING' }, { name: 'response', data: [], type: 'STRING' }] }))) },
  { path: 'truncated.parquet', why: 'a valid Parquet file cut in half', make: text(Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'query', data: jsonRows.map((r) => r.query), type: 'STRING' }] })).subarray(0, 120)) },
  { path: 'lying-footer.parquet', why: 'a Parquet footer claiming 2 GB of metadata', make: (p) => { const b = Buffer.concat([Buffer.from('PAR1'), junk(64), Buffer.alloc(8)]); b.writeUInt32LE(2 ** 31, b.length - 8); b.write('PAR1', b.length - 4); writeFileSync(p, b); } },
  { path: 'deep-row.jsonl', why: 'a row nested 100,000 deep', make: text(`{"query": ${deepJson(100_000)}, "response": "x"}\n`) },
  { path: 'deep-row.json', why: 'a JSON array whose row nests 100,000 deep', make: text(`[{"query": ${deepJson(100_000)}, "response": "x"}]`) },
  { path: 'wide.csv', why: 'a CSV header of 20,000 columns', make: text(Array.from({ length: 20_000 }, (_, i) => `c${i}`).join(',') + '\n' + '1,'.repeat(19_999) + '1\n') },
  { path: 'large.jsonl', why: 'a valid dataset larger than a preview window (9 MiB)', make: (p) => {
    const row = (i: number) => JSON.stringify({ query: `What is ${i} plus ${i % 7}? ${'Think it through. '.repeat(4)}`, response: `It makes ${i + (i % 7)}. The answer is: ${i + (i % 7)}` });
    const lines: string[] = [];
    for (let i = 0, bytes = 0; bytes < 9 * 2 ** 20; i++) { lines.push(row(i)); bytes += lines.at(-1)!.length + 1; }
    writeFileSync(p, lines.join('\n') + '\n');
  } },
  { path: 'one-line.jsonl', why: 'one 70 MB line (no newline, past the 64 MiB row limit)', make: text(`{"query": "${'a'.repeat(70 * 2 ** 20)}`) },

  // ---- Hugging Face cache folders that point nowhere ---------------------------------------------
  { path: 'hub/models--org--two-snapshots', why: 'two snapshots and no refs/main', make: (p, root) => {
    for (const rev of ['a'.repeat(40), 'b'.repeat(40)]) cpSync(join(root, 'good-model'), join(p, 'snapshots', rev), { recursive: true });
  } },
  { path: 'hub/models--org--dangling-ref', why: 'refs/main names a snapshot that is not there', make: (p, root) => {
    cpSync(join(root, 'good-model'), join(p, 'snapshots', 'a'.repeat(40)), { recursive: true });
    mkdirSync(join(p, 'refs'), { recursive: true });
    writeFileSync(join(p, 'refs', 'main'), 'c'.repeat(40));
  } },
  { path: 'hub/models--org--fifo-ref', why: 'refs/main is a FIFO', make: (p, root) => {
    cpSync(join(root, 'good-model'), join(p, 'snapshots', 'a'.repeat(40)), { recursive: true });
    mkdirSync(join(p, 'refs'), { recursive: true });
    fifo(join(p, 'refs', 'main'));
  } },
  { path: 'hub/models--org--junk-ref', why: 'refs/main holds a path, not a commit', make: (p, root) => {
    cpSync(join(root, 'good-model'), join(p, 'snapshots', 'a'.repeat(40)), { recursive: true });
    mkdirSync(join(p, 'refs'), { recursive: true });
    writeFileSync(join(p, 'refs', 'main'), '../../../etc');
  } },

  // ---- run folders (finch train --resume DIR) ------------------------------------------------
  { path: 'run-fifo-record', why: 'a run folder whose run.json is a FIFO', make: (p) => { mkdirSync(p); fifo(join(p, 'run.json')); } },
  { path: 'run-zero-record', why: 'a run folder whose run.json links to /dev/zero', make: (p) => { mkdirSync(p); symlinkSync('/dev/zero', join(p, 'run.json')); } },

  // ---- adapters ---------------------------------------------------------------------------
  { path: 'adapter-fifo-config', why: 'adapter_config.json is a FIFO', make: (p) => { mkdirSync(p); fifo(join(p, 'adapter_config.json')); writeFileSync(join(p, 'adapter_model.safetensors'), safetensorsBytes({}, 0)); } },
  { path: 'adapter-zero-weights', why: 'adapter_model.safetensors links to /dev/zero', make: (p) => {
    mkdirSync(p);
    writeFileSync(join(p, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] }));
    symlinkSync('/dev/zero', join(p, 'adapter_model.safetensors'));
  } },
  { path: 'adapter-lying-weights', why: 'adapter weights whose header claims 1 TB', make: (p) => {
    mkdirSync(p);
    writeFileSync(join(p, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] }));
    writeFileSync(join(p, 'adapter_model.safetensors'), safetensorsBytes({ 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { dtype: 'F32', shape: [4, 2 ** 38], data_offsets: [0, 2 ** 42] } }, 16));
  } },
];

/**
 * Makes every bad file under `root` (or those `only` names, in BAD_FILES's order); returns a
 * function that closes the sockets it opened.
 */
export async function makeBadFiles(root: string, only?: readonly string[]): Promise<() => void> {
  for (const f of BAD_FILES.filter((f) => !only || only.includes(f.path))) {
    const abs = join(root, f.path);
    mkdirSync(dirname(abs), { recursive: true });
    await f.make(abs, root);
  }
  return () => { for (const s of sockets.splice(0)) s.close(); };
}
