// `finch bench data`: throughput of the data pipeline (read, convert, template, tokenize, mask,
// pack) on a generated JSONL, so the pipeline never becomes the bottleneck of a run. It reports
// the read stage alone and the whole pipeline, in rows/s and tokens/s.

import { parseCommand } from '../cli/args.js';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRows } from '../data/read/index.js';
import { prepareDataset } from '../data/dataset.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { writeSyntheticCheckpoint } from '../synthetic/checkpoint.js';
import { builtinCorpus } from '../synthetic/corpus.js';
import { mulberry32 } from '../util/random.js';
import type { TextTokenizer } from '../model/types.js';

const HELP = `Usage: finch bench data [options]

  --rows N        rows in the generated JSONL (default 100000)
  --format F      messages | alpaca | text (default messages)
  --model DIR     use this model folder's tokenizer (default: a generated Llama-3-style tokenizer)
  --seq-len N     sequence length (default 512)
  --no-pack       measure without packing
  --json          print one JSON object`;

const OPTIONS = {
  rows: { type: 'string', default: '100000' },
  format: { type: 'string', default: 'messages' },
  model: { type: 'string' },
  'seq-len': { type: 'string', default: '512' },
  'no-pack': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

export async function runDataBench(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench data', argv, OPTIONS, HELP);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const rows = Number(values.rows);
  const seqLen = Number(values['seq-len']);
  const format = values.format as 'messages' | 'alpaca' | 'text';
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(seqLen) || !['messages', 'alpaca', 'text'].includes(format)) {
    console.error(`finch bench data: invalid options\n\n${HELP}`);
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'finch-bench-data-'));
  try {
    let tok: TextTokenizer;
    let tokenizerName: string;
    if (values.model) {
      tok = loadTokenizer(values.model);
      tokenizerName = values.model;
    } else {
      // A vocabulary large enough for the corpus's words to be mostly whole tokens, as with real models.
      const ckpt = writeSyntheticCheckpoint(join(work, 'model'), { vocabSize: 2048, hiddenSize: 16, numLayers: 1, numHeads: 2, corpus: builtinCorpus(256 * 1024) });
      tok = loadTokenizer(ckpt.dir);
      tokenizerName = `synthetic llama3-style BPE, vocab ${tok.vocabSize}`;
    }
    const file = join(work, 'data.jsonl');
    await writeRows(file, rows, format);
    const bytes = statSync(file).size;

    let t0 = performance.now();
    let n = 0;
    for await (const _ of (await openRows(file)).rows) n++;
    const readS = (performance.now() - t0) / 1000;

    t0 = performance.now();
    const d = await prepareDataset(file, tok, { seqLen, pack: !values['no-pack'] });
    const pipeS = (performance.now() - t0) / 1000;
    const result = {
      rows,
      format,
      file_mb: +(bytes / 2 ** 20).toFixed(1),
      tokenizer: tokenizerName,
      seq_len: seqLen,
      pack: !values['no-pack'],
      read: { seconds: +readS.toFixed(3), rows_per_s: Math.round(n / readS), mb_per_s: +(bytes / 2 ** 20 / readS).toFixed(1) },
      pipeline: {
        seconds: +pipeS.toFixed(3),
        rows_per_s: Math.round(rows / pipeS),
        tokens_per_s: Math.round(d.stats.lengths.total / pipeS),
      },
      tokens: { mean: +d.stats.lengths.mean.toFixed(1), p50: d.stats.lengths.p50, p95: d.stats.lengths.p95, max: d.stats.lengths.max },
      sequences: d.train.length,
      packing_efficiency: d.stats.packingEfficiency === null ? null : +d.stats.packingEfficiency.toFixed(3),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(`data pipeline on ${rows} ${format} rows (${result.file_mb} MB JSONL), tokenizer: ${tokenizerName}`);
      console.log(`  read only:            ${result.read.rows_per_s} rows/s, ${result.read.mb_per_s} MB/s`);
      console.log(`  read+template+tokenize+${result.pack ? 'pack' : 'batch'}: ${result.pipeline.rows_per_s} rows/s, ${result.pipeline.tokens_per_s} tokens/s (${result.pipeline.seconds} s)`);
      console.log(`  tokens/row: mean ${result.tokens.mean}, p95 ${result.tokens.p95}; ${result.sequences} sequences of ${seqLen}` +
        (result.packing_efficiency === null ? '' : ` (${(100 * result.packing_efficiency).toFixed(1)}% filled)`));
      console.log(`  peak RSS ${result.peak_rss_mb} MB`);
    }
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The bench dispatcher (cli/commands/bench.ts) calls run(argv). */
export const run = runDataBench;

/** Rows of chat-like text built from the synthetic corpus's sentences (deterministic). */
async function writeRows(file: string, n: number, format: 'messages' | 'alpaca' | 'text'): Promise<void> {
  const sentences = builtinCorpus(256 * 1024).split(/(?<=[.?!])\s+/).filter((s) => s.length > 8);
  const rand = mulberry32(7);
  const int = (k: number) => Math.floor(rand() * k);
  const para = (min: number, max: number) => Array.from({ length: min + int(max - min + 1) }, () => sentences[int(sentences.length)]!).join(' ');
  const ws = createWriteStream(file);
  for (let i = 0; i < n; i++) {
    const q = para(1, 3);
    const a = para(2, 8);
    const row =
      format === 'messages' ? { messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] }
      : format === 'alpaca' ? { instruction: q, input: '', output: a }
      : { text: `${q} ${a}` };
    if (!ws.write(JSON.stringify(row) + '\n')) await once(ws, 'drain');
  }
  ws.end();
  await once(ws, 'finish');
}
