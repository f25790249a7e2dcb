// The dataset preview the wizard shows before a run: the first rows as read, the detected format
// and columns, and each row's training text split into trained and ignored spans. It never
// throws for row-level problems; they come back on the rows (a file that cannot be opened still throws).

import { DatasetError, RowError, type BadRow } from './errors.js';
import { resolveFormat, suggestMap, toExample, type ColumnMap, type FormatOptions, type ResolvedFormat } from './formats.js';
import { openRows, type FileKind, type ReadOptions } from './read/index.js';
import { SampleEncoder, type EncodedSample, type EncodeOptions } from './template.js';
import { isPreference, type Example } from './types.js';
import type { TextTokenizer } from '../model/types.js';
import { yielder } from '../util/yielder.js';

export interface PreviewOptions extends Omit<ReadOptions, 'onBadRow'>, FormatOptions, EncodeOptions {
  /** Rows to show (default 5). */
  rows?: number;
  /** Without a tokenizer the preview stops at the converted examples. */
  tokenizer?: TextTokenizer;
  /** Marks tokens beyond this length as truncated. */
  seqLen?: number;
}

export interface Span {
  text: string;
  /** Tokens the loss trains on (labels = ids); false for prompt/template tokens (labels -100). */
  trained: boolean;
  /** Tokens cut off by the sequence length. */
  truncated: boolean;
}

export interface RenderedSample {
  spans: Span[];
  tokens: number;
  trainedTokens: number;
  boundaryIssue: string | null;
}

export interface PreviewRow {
  line: number;
  /** The row as read, made JSON-safe (bigint as text, bytes summarised). */
  raw: Record<string, unknown>;
  example: Example | null;
  error: string | null;
  /** The training text; for a preference pair its chosen side (prompt and chosen answer). */
  rendered: RenderedSample | null;
  /**
   * A preference pair's two sides split for display: the shared prompt (the chosen side's tokens
   * before its first trained one), then each side's answer, trained spans marked.
   */
  pair: { prompt: Span[]; chosen: Span[]; rejected: Span[]; rejectedSample: RenderedSample } | null;
}

export interface DatasetPreview {
  file: string;
  fileKind: FileKind;
  columns: string[];
  format: ResolvedFormat | null;
  /** Why the format could not be resolved (with the columns found), or null. */
  formatError: string | null;
  /** A likely prompt/completion column mapping when the columns are not a known format. */
  suggestedMap: ColumnMap | null;
  template: 'model' | 'fallback' | null;
  notes: string[];
  rows: PreviewRow[];
  /** Unreadable rows met while reading the preview rows (bad JSON, invalid UTF-8, ...). */
  badRows: BadRow[];
}

export async function previewDataset(file: string, opts: PreviewOptions = {}): Promise<DatasetPreview> {
  const want = opts.rows ?? 5;
  const { kind, bad, rows } = await openRows(file, { ...opts, onBadRow: 'skip' });
  let encoder: SampleEncoder | null = null;
  if (opts.tokenizer) encoder = new SampleEncoder(opts.tokenizer, opts);
  const out: DatasetPreview = {
    file, fileKind: kind, columns: [], format: null, formatError: null, suggestedMap: null,
    template: null, notes: encoder ? [...encoder.notes] : [], rows: [], badRows: [],
  };
  const pause = yielder();
  for await (const { row, line } of rows) {
    if (out.rows.length >= want) break;
    await pause();
    if (out.rows.length === 0) {
      out.columns = Object.keys(row);
      try {
        out.format = resolveFormat(file, row, opts);
      } catch (e) {
        out.formatError = (e as Error).message;
        out.suggestedMap = suggestMap(out.columns);
      }
    }
    const pr: PreviewRow = { line, raw: jsonSafe(row) as Record<string, unknown>, example: null, error: null, rendered: null, pair: null };
    out.rows.push(pr);
    if (!out.format) continue;
    try {
      pr.example = toExample(row, out.format);
      if (encoder) {
        const render = (enc: EncodedSample): RenderedSample => {
          let trainedTokens = 0;
          for (let j = 1; j < Math.min(enc.ids.length, opts.seqLen ?? Infinity); j++) trainedTokens += enc.trained[j]!;
          return { spans: spans(opts.tokenizer!, enc.ids, enc.trained, opts.seqLen), tokens: enc.ids.length, trainedTokens, boundaryIssue: enc.boundaryIssue };
        };
        if (!('text' in pr.example)) out.template = encoder.template;
        if (isPreference(pr.example)) {
          const both = encoder.encodePair(pr.example);
          pr.rendered = render(both.chosen);
          const rejectedSample = render(both.rejected);
          const [prompt, chosen] = splitAtFirstTrained(pr.rendered.spans), [, rejected] = splitAtFirstTrained(rejectedSample.spans);
          pr.pair = { prompt, chosen, rejected, rejectedSample };
        } else pr.rendered = render(encoder.encode(pr.example));
      }
    } catch (e) {
      if (e instanceof DatasetError && encoder) {
        // A model/option problem (e.g. no chat template where one is required): say so once, show rows unrendered.
        out.notes.push(e.message);
        encoder = null;
      } else if (e instanceof RowError) pr.error = e.message;
      else throw e;
    }
  }
  out.badRows = [...bad.first];
  if (out.rows.length === 0) out.notes.push(`${file}: the dataset is empty${bad.count ? ' (no readable rows)' : ''}`);
  return out;
}

/** The spans before the first trained one (a pair's prompt), and the rest (its answer). */
function splitAtFirstTrained(all: Span[]): [Span[], Span[]] {
  const k = all.findIndex((s) => s.trained);
  return k < 0 ? [all, []] : [all.slice(0, k), all.slice(k)];
}

/**
 * Splits a sample into runs of equally-flagged tokens. Each run's text is the difference between
 * decoding the ids up to its end and up to its start, so runs concatenate to the decoded sample
 * even for tokenizers whose decode treats a leading space specially.
 */
function spans(tok: TextTokenizer, ids: Int32Array, trained: Uint8Array, seqLen?: number): Span[] {
  const limit = seqLen ?? Infinity;
  const out: Span[] = [];
  const all = Array.from(ids);
  let prevText = '';
  let start = 0;
  for (let j = 1; j <= ids.length; j++) {
    const boundary = j === ids.length || trained[j] !== trained[start] || (j >= limit) !== (start >= limit);
    if (!boundary) continue;
    const text = tok.decode(all.slice(0, j), { skipSpecialTokens: false });
    const piece = text.startsWith(prevText) ? text.slice(prevText.length) : tok.decode(all.slice(start, j), { skipSpecialTokens: false });
    out.push({ text: piece, trained: trained[start] === 1, truncated: start >= limit });
    prevText = text;
    start = j;
  }
  return out;
}

/** A preview shows this much of one text value (the row is trained on whole). */
const PREVIEW_TEXT = 100_000;
/** And this many levels of nesting (a Parquet schema may nest deeper than any JSON row may). */
const PREVIEW_DEPTH = 32;

function jsonSafe(v: unknown, depth = 0): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return v.length > PREVIEW_TEXT ? `${v.slice(0, PREVIEW_TEXT)}… (${v.length - PREVIEW_TEXT} more characters)` : v;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v && typeof v === 'object' && depth >= PREVIEW_DEPTH) return '<nested too deep to show>';
  if (Array.isArray(v)) return v.map((x) => jsonSafe(x, depth + 1));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x, depth + 1)]));
  return v;
}
