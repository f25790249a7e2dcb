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
//   preference  chosen, rejected, prompt or conversations (optional), system (optional)
//               -> a pair: the prompt turns and two answers (preference tuning: DPO, ORPO). Three shapes:
//               prompt/chosen/rejected as text (TRL, UltraFeedback-style); chosen/rejected as message
//               lists whose shared first turns are the prompt (Anthropic HH, UltraFeedback binarized;
//               a text prompt column beside them is ignored, as TRL does); ShareGPT conversations with
//               chosen/rejected turns (LLaMA-Factory's dpo_en_demo.json).
//
// A column map renames the fields above for datasets that use other names, e.g. MetaMathQA
// {prompt: 'query', completion: 'response'}, GSM8K {prompt: 'question', completion: 'answer'},
// StackExchange pairs {prompt: 'question', chosen: 'response_j', rejected: 'response_k'}.

import { DatasetError, RowError } from './errors.js';
import type { Row } from './read/types.js';
import type { ChatMessage, Example, PreferencePair } from './types.js';

export type FormatName = 'alpaca' | 'sharegpt' | 'messages' | 'completion' | 'text' | 'preference';
/** Detection order: preference first (its rows may also hold a prompt or conversations column). */
export const FORMAT_NAMES: readonly FormatName[] = ['preference', 'messages', 'sharegpt', 'alpaca', 'completion', 'text'];

export type Field = 'instruction' | 'input' | 'output' | 'system' | 'conversations' | 'messages' | 'prompt' | 'completion' | 'text' | 'chosen' | 'rejected';
export const FIELDS: readonly Field[] = ['instruction', 'input', 'output', 'system', 'conversations', 'messages', 'prompt', 'completion', 'text', 'chosen', 'rejected'];

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
  preference: {
    required: ['chosen', 'rejected'],
    optional: ['prompt', 'conversations', 'system'],
    convert: preferencePair,
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
  // Fields named in the map (other than system) narrow the format to those that have them all.
  const mapped = Object.keys(map).filter((f) => f !== 'system') as Field[];
  const candidates = FORMAT_NAMES.filter((n) => mapped.every((f) => fieldsOf(n).includes(f)));
  if (candidates.length === 0) {
    const owner = (f: Field) => FORMAT_NAMES.find((n) => FORMATS[n].required.includes(f)) ?? FORMAT_NAMES.find((n) => fieldsOf(n).includes(f))!;
    const owners = [...new Set(mapped.map(owner))];
    throw new DatasetError(`column map mixes fields of the ${owners.join(' and ')} formats; map the fields of one format`, file);
  }
  let name = opts.format && opts.format !== 'auto' ? opts.format : undefined;
  if (name && !candidates.includes(name)) {
    throw new DatasetError(`column map fields belong to the ${candidates.join(' or ')} format, not ${name}`, file);
  }
  // Detected: the first format whose required columns are all there; with a map, else the candidate
  // that has the most of them (its missing columns are named below).
  const present = (n: FormatName) => FORMATS[n].required.filter(has).length;
  name ??= candidates.find((n) => present(n) === FORMATS[n].required.length)
    ?? (mapped.length ? candidates.reduce((a, b) => (present(b) > present(a) ? b : a)) : undefined);
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

function fieldsOf(n: FormatName): readonly Field[] {
  return [...FORMATS[n].required, ...FORMATS[n].optional];
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

// ---- preference pairs ----

const sameTurn = (a: ChatMessage, b: ChatMessage) => a.role === b.role && a.content === b.content;

/** A message object ({role, content} or ShareGPT {from, value}) as opposed to text or a list. */
const isMessage = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v) && ('role' in v || 'from' in v);

/** One side of a pair: answer text, one message, or a list of messages (a JSON string holding a list counts as the list). */
function side(v: unknown, field: 'chosen' | 'rejected'): { turns: ChatMessage[]; text: boolean } {
  if (v === null || v === undefined) throw new RowError(`${field} is missing (null): a pair needs both answers`);
  if (isMessage(v)) return { turns: turns([v], field), text: false };
  if (Array.isArray(v)) return { turns: turns(v, field), text: false };
  if (typeof v === 'string' && v.trimStart().startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(v);
      if (Array.isArray(parsed) && parsed.every(isMessage)) return { turns: turns(parsed, field), text: false };
    } catch { /* answer text that happens to start with "[" */ }
  }
  const answer = text(v, field);
  if (!answer.trim()) throw new RowError(`${field} is empty`);
  return { turns: [{ role: 'assistant', content: answer }], text: true };
}

/**
 * A preference row as a pair. The prompt is the ShareGPT conversations, else the prompt column
 * (text: one user turn; or a message list), else, when both answers are conversations that start
 * with the prompt's turns (Anthropic HH), their longest shared first turns. A text prompt column
 * beside such conversations repeats their first turn and is ignored, as TRL does (UltraFeedback
 * binarized has one).
 */
function preferencePair(get: (f: Field) => unknown): PreferencePair {
  const c = side(get('chosen'), 'chosen'), r = side(get('rejected'), 'rejected');
  const conv = get('conversations'), p = get('prompt');
  let prompt: ChatMessage[] | null = null;
  if (conv !== undefined && conv !== null) prompt = turns(conv, 'conversations');
  else if (Array.isArray(p)) prompt = turns(p, 'prompt');
  else if (p !== undefined && p !== null && (c.text || c.turns[0]!.role === 'assistant')) prompt = [{ role: 'user', content: text(p, 'prompt') }];
  let chosen = c.turns, rejected = r.turns;
  if (!prompt) {
    if (c.text || r.text) throw new RowError('prompt is missing: answers given as text need a prompt column (map it with --map prompt=COLUMN)');
    let k = 0;
    while (k < chosen.length - 1 && k < rejected.length - 1 && sameTurn(chosen[k]!, rejected[k]!)) k++;
    if (k === 0) throw new RowError('chosen and rejected share no prompt turns, and the row has no prompt column');
    prompt = chosen.slice(0, k);
    chosen = chosen.slice(k);
    rejected = rejected.slice(k);
  }
  const system = systemTurn(get);
  if (system.length && prompt[0]?.role !== 'system') prompt = [...system, ...prompt];
  if (prompt.length === 0) throw new RowError('the prompt is empty');
  for (const [name, answer] of [['chosen', chosen], ['rejected', rejected]] as const) {
    if (answer.at(-1)!.role !== 'assistant') throw new RowError(`${name} must end with an assistant turn (it ends with a ${answer.at(-1)!.role} turn)`);
  }
  if (chosen.length === rejected.length && chosen.every((m, i) => sameTurn(m, rejected[i]!))) {
    throw new RowError('chosen and rejected are identical: a pair needs two different answers');
  }
  return { prompt, chosen, rejected };
}

