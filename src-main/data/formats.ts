// Dataset formats: detection from a row's columns, user column mappings, and conversion of each
// row to the canonical Example (a conversation or raw text).
//
//   alpaca      instruction, input (optional), output, system (optional)
//               -> [system], user: instruction + "\n\n" + input (input omitted when empty), assistant: output
//   sharegpt    conversations: [{from: human|gpt|system, value}]       -> the turns, in order
//   messages    messages: [{role: system|user|assistant, content}]      -> the turns, in order
//   completion  prompt, completion, system (optional)                   -> [system], user: prompt, assistant: completion
//               (prompt/completion may also be message lists, TRL's conversational form)
//   text        text                                                    -> raw text, every token trained
//
// A column map renames the fields above for datasets that use other names, e.g. MetaMathQA
// {prompt: 'query', completion: 'response'}, GSM8K {prompt: 'question', completion: 'answer'}.

import { DatasetError, RowError } from './errors.js';
import type { Row } from './read/types.js';
import type { ChatMessage, Example } from './types.js';

export type FormatName = 'alpaca' | 'sharegpt' | 'messages' | 'completion' | 'text';
export const FORMAT_NAMES: readonly FormatName[] = ['messages', 'sharegpt', 'alpaca', 'completion', 'text']; // detection order

export type Field = 'instruction' | 'input' | 'output' | 'system' | 'conversations' | 'messages' | 'prompt' | 'completion' | 'text';
export const FIELDS: readonly Field[] = ['instruction', 'input', 'output', 'system', 'conversations', 'messages', 'prompt', 'completion', 'text'];

/** Canonical field -> the dataset's column name. */
export type ColumnMap = Partial<Record<Field, string>>;

interface FormatDef {
  required: readonly Field[];
  optional: readonly Field[];
  convert(get: (f: Field) => unknown): Example;
}

const FORMATS: Record<FormatName, FormatDef> = {
  alpaca: {
    required: ['instruction', 'output'],
    optional: ['input', 'system'],
    convert(get) {
      const instruction = text(get('instruction'), 'instruction');
      const input = optionalText(get('input'), 'input');
      const prompt = input && input.trim() ? `${instruction}\n\n${input}` : instruction;
      return { messages: [...systemTurn(get), { role: 'user', content: prompt }, { role: 'assistant', content: text(get('output'), 'output') }] };
    },
  },
  sharegpt: {
    required: ['conversations'],
    optional: ['system'],
    convert: (get) => ({ messages: [...systemTurn(get), ...turns(get('conversations'), 'conversations')] }),
  },
  messages: {
    required: ['messages'],
    optional: ['system'],
    convert: (get) => ({ messages: [...systemTurn(get), ...turns(get('messages'), 'messages')] }),
  },
  completion: {
    required: ['prompt', 'completion'],
    optional: ['system'],
    convert(get) {
      const p = get('prompt');
      const c = get('completion');
      const prompt: ChatMessage[] = Array.isArray(p) ? turns(p, 'prompt') : [{ role: 'user', content: text(p, 'prompt') }];
      const completion: ChatMessage[] = Array.isArray(c) ? turns(c, 'completion') : [{ role: 'assistant', content: text(c, 'completion') }];
      return { messages: [...systemTurn(get), ...prompt, ...completion] };
    },
  },
  text: {
    required: ['text'],
    optional: [],
    convert(get) {
      const t = text(get('text'), 'text');
      if (t.length === 0) throw new RowError('empty text');
      return { text: t };
    },
  },
};

export interface ResolvedFormat {
  name: FormatName;
  /** Field -> column, for every field of the format (optional ones may be absent from a row). */
  columns: ColumnMap;
  /** True when the user's column map chose or renamed the columns. */
  mapped: boolean;
}

export interface FormatOptions {
  /** 'auto' (default) detects from the first row's columns. */
  format?: FormatName | 'auto';
  map?: ColumnMap;
}

/** Picks the format for a dataset from its first row; throws a DatasetError naming the columns found. */
export function resolveFormat(file: string, first: Row, opts: FormatOptions = {}): ResolvedFormat {
  const map = opts.map ?? {};
  const found = Object.keys(first);
  const has = (f: Field) => first[map[f] ?? f] !== undefined;
  for (const [f, col] of Object.entries(map)) {
    if (!FIELDS.includes(f as Field)) throw new DatasetError(`column map: unknown field "${f}"; fields are ${FIELDS.join(', ')}`, file);
    if (first[col!] === undefined) {
      throw new DatasetError(`${file}: the column map names "${col}" for ${f}, but the data has no such column (columns found: ${found.join(', ')})`, file);
    }
  }
  // Fields named in the map (other than system) pin the format.
  const implied = [...new Set(Object.keys(map).filter((f) => f !== 'system').map((f) => formatOfField(f as Field)))];
  if (implied.length > 1) throw new DatasetError(`column map mixes fields of the ${implied.join(' and ')} formats; map the fields of one format`, file);
  let name = opts.format && opts.format !== 'auto' ? opts.format : implied[0];
  if (name && implied[0] && name !== implied[0]) {
    throw new DatasetError(`column map fields belong to the ${implied[0]} format, not ${name}`, file);
  }
  name ??= FORMAT_NAMES.find((n) => FORMATS[n].required.every(has));
  if (!name) {
    const hint = suggestMap(found);
    throw new DatasetError(
      `${file}: cannot tell the dataset format from its columns (columns found: ${found.join(', ')}). ` +
        `Supported: ${describeFormats()}. ` +
        (hint ? `Map your columns, e.g. --map ${formatColumnMap(hint)}.` : 'Map your columns with --map FIELD=COLUMN,...'),
      file,
    );
  }
  const def = FORMATS[name];
  const missing = def.required.filter((f) => !has(f));
  if (missing.length) {
    throw new DatasetError(
      `${file}: the ${name} format needs column${missing.length > 1 ? 's' : ''} ${missing.map((f) => map[f] ?? f).join(', ')} ` +
        `(columns found: ${found.join(', ')}); map them with --map ${missing.map((f) => `${f}=COLUMN`).join(',')}`,
      file,
    );
  }
  const columns: ColumnMap = {};
  for (const f of [...def.required, ...def.optional]) columns[f] = map[f] ?? f;
  return { name, columns, mapped: Object.keys(map).length > 0 };
}

/** Converts one row; throws RowError (a bad row) when a field is missing or malformed. */
export function toExample(row: Row, fmt: ResolvedFormat): Example {
  return FORMATS[fmt.name].convert((f) => {
    const col = fmt.columns[f];
    const v = col === undefined ? undefined : row[col];
    if (v === undefined && FORMATS[fmt.name].required.includes(f)) throw new RowError(`missing column "${col}"`);
    return v;
  });
}

/** Parses "prompt=query,completion=response". */
export function parseColumnMap(spec: string): ColumnMap {
  const map: ColumnMap = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const field = part.slice(0, eq).trim() as Field;
    const col = part.slice(eq + 1).trim();
    if (eq < 0 || !col || !FIELDS.includes(field)) {
      throw new Error(`invalid column map entry "${part}": expected FIELD=COLUMN with FIELD one of ${FIELDS.join(', ')}`);
    }
    map[field] = col;
  }
  return map;
}

export function formatColumnMap(map: ColumnMap): string {
  return Object.entries(map).map(([f, c]) => `${f}=${c}`).join(',');
}

const PROMPT_NAMES = ['query', 'question', 'problem', 'instruction', 'input', 'prompt', 'source', 'context'];
const COMPLETION_NAMES = ['response', 'answer', 'solution', 'output', 'completion', 'target', 'chosen'];

/** A likely prompt/completion mapping for unrecognised columns (shown to the user, never applied silently). */
export function suggestMap(columns: readonly string[]): ColumnMap | null {
  const lower = new Map(columns.map((c) => [c.toLowerCase(), c]));
  const p = PROMPT_NAMES.find((n) => lower.has(n));
  const c = COMPLETION_NAMES.find((n) => lower.has(n));
  return p && c ? { prompt: lower.get(p)!, completion: lower.get(c)! } : null;
}

export function describeFormats(): string {
  return FORMAT_NAMES.map((n) => `${n} (${FORMATS[n].required.join(', ')})`).join(', ');
}

function formatOfField(f: Field): FormatName {
  return FORMAT_NAMES.find((n) => FORMATS[n].required.includes(f) || FORMATS[n].optional.includes(f))!;
}

// ---- field conversion ----

function text(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) throw new RowError(`${field} is empty (null)`);
  throw new RowError(`${field} must be text, got ${Array.isArray(v) ? 'a list' : typeof v}`);
}

function optionalText(v: unknown, field: string): string | null {
  return v === null || v === undefined ? null : text(v, field);
}

function systemTurn(get: (f: Field) => unknown): ChatMessage[] {
  const s = optionalText(get('system'), 'system');
  return s && s.trim() ? [{ role: 'system', content: s }] : [];
}

const ROLES: Record<string, ChatMessage['role']> = {
  system: 'system', developer: 'system',
  user: 'user', human: 'user',
  assistant: 'assistant', gpt: 'assistant', model: 'assistant', chatgpt: 'assistant', bot: 'assistant', bard: 'assistant', bing: 'assistant',
};

/** A list of turns in OpenAI ({role, content}) or ShareGPT ({from, value}) shape. */
function turns(v: unknown, field: string): ChatMessage[] {
  if (typeof v === 'string') {
    // Some exports (and CSV) store the list as a JSON string.
    try {
      v = JSON.parse(v);
    } catch {
      throw new RowError(`${field} must be a list of messages, got text`);
    }
  }
  if (!Array.isArray(v)) throw new RowError(`${field} must be a list of messages`);
  if (v.length === 0) throw new RowError(`${field} is an empty list`);
  return v.map((m: unknown, i): ChatMessage => {
    if (m === null || typeof m !== 'object') throw new RowError(`${field}[${i}] is not a message object`);
    const o = m as Record<string, unknown>;
    const rawRole = o.role ?? o.from;
    const role = typeof rawRole === 'string' ? ROLES[rawRole.toLowerCase()] : undefined;
    if (!role) {
      throw new RowError(
        rawRole === undefined
          ? `${field}[${i}] has no "role" (or ShareGPT "from")`
          : `${field}[${i}] has role "${String(rawRole)}"; Finch trains on system, user and assistant turns`,
      );
    }
    return { role, content: content('content' in o ? o.content : o.value, `${field}[${i}]`) };
  });
}

/** Message content: text, or OpenAI's list of parts of which the text parts are kept. */
function content(v: unknown, where: string): string {
  if (Array.isArray(v)) {
    const parts = v.map((p, i) => {
      const o = p as Record<string, unknown> | null;
      if (o && o.type === 'text' && typeof o.text === 'string') return o.text;
      throw new RowError(`${where}.content[${i}] is not a text part; Finch trains on text only`);
    });
    return parts.join('');
  }
  return text(v, `${where}.content`);
}
