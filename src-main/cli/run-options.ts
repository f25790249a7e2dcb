// `finch train`'s run options, generated from the run-configuration schema
// (src-shared/run-config.ts): the parseArgs table, how each option's text becomes a value (numbers,
// switches, choices, comma lists, FIELD=COLUMN maps), --config files (YAML or JSON, keys as the long
// option names), and the option lines of --help. Every value is then checked by the schema itself,
// so the command line refuses exactly what the app refuses, with the same "must be ..." sentence.

import YAML from 'yaml';
import { SETTINGS, type Setting, type SettingGroup, type SettingPath, TrainConfig, describeType, setting } from '../../src-shared/run-config.js';
import { READ_LIMITS, readRegularFileSync } from '../util/regular-file.js';

/** A bad command line or config file: the caller prints the message (exit code 2). */
export class UsageError extends Error {}

/** Option values by long name, as parseArgs or a config file gives them. */
export type OptionValues = Partial<Record<string, string | boolean>>;

/** Where every run's files are: TrainConfig's model, data and out. */
const PATHS = [
  { flag: 'model', value: 'DIR', help: 'the Hugging Face model folder' },
  { flag: 'data', value: 'FILE', help: 'the dataset: JSONL, JSON, CSV, TSV or Parquet' },
  { flag: 'out', value: 'DIR', help: 'the run folder: adapter, run.json, checkpoints/ (created if missing)' },
] as const;

type OptionTable = Record<string, { type: 'string' | 'boolean' }>;

/** The parseArgs options of the paths and every run setting. */
export const RUN_OPTIONS: OptionTable = Object.fromEntries([
  ...PATHS.map((p) => [p.flag, { type: 'string' }]),
  ...SETTINGS.map((s) => [s.flag, { type: s.type.kind === 'switch' ? 'boolean' : 'string' }]),
]);

const refusal = (where: string, message: string, raw: unknown) => new UsageError(`${where} ${message}, got ${JSON.stringify(String(raw))}`);

/** An option's text as the value the schema checks (anything unreadable passes through for the schema to refuse). */
function valueOf(s: Setting, raw: string | boolean, where: string): unknown {
  const t = s.type;
  if (t.kind === 'switch' || typeof raw === 'boolean') return raw;
  switch (t.kind) {
    case 'path': return raw;
    case 'number': return raw.trim() === '' ? raw : Number(raw);
    case 'choice': return t.choices.find((c) => String(c) === raw.trim()) ?? raw;
    case 'list': {
      const items = raw.split(',').map((x) => x.trim()).filter(Boolean);
      return items.length === 1 && items[0] === 'all' ? [...t.all] : items;
    }
    case 'map': {
      const map: Record<string, string> = {};
      for (const part of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
        const eq = part.indexOf('=');
        if (eq <= 0) throw refusal(where, `must be ${describeType(t)}`, raw);
        map[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
      }
      return map;
    }
  }
}

/** Sets config.lora.rank for the path 'lora.rank'. */
function put(config: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = config;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  o[keys.at(-1)!] = value;
}

/**
 * Options (the command line, over a config file's) -> a complete TrainConfig: what is not given
 * takes the schema's default. A value out of range is refused naming its option (or the file and
 * key it came from).
 */
export function configFrom(cli: OptionValues, file?: { path: string; values: OptionValues }): TrainConfig {
  const given = { ...file?.values, ...cli };
  const where = (flag: string) => (cli[flag] === undefined && file ? `${file.path}: ${flag}` : `--${flag}`);
  for (const p of PATHS) if (typeof given[p.flag] !== 'string') throw new UsageError(`--${p.flag} is required`);
  const config: Record<string, unknown> = Object.fromEntries(PATHS.map((p) => [p.flag, given[p.flag]]));
  for (const s of SETTINGS) {
    const raw = given[s.flag];
    if (raw !== undefined) put(config, s.path, valueOf(s, raw, where(s.flag)));
  }
  const r = TrainConfig.safeParse(config);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.join('.');
  const s = SETTINGS.find((x) => path === x.path || path.startsWith(`${x.path}.`));
  if (!s) throw new UsageError(`${path || 'config'}: ${issue.message}`);
  // Every check of a setting says "must be ..."; an unknown key of a map is the one zod words itself.
  throw refusal(where(s.flag), issue.message.startsWith('must be ') ? issue.message : `must be ${describeType(s.type)}`, given[s.flag]);
}

/**
 * Reads --config FILE: YAML or JSON, keys as the long option names without dashes (`seq-len: 256`,
 * `4bit: true`); a list may be a YAML list and `map` a mapping. An empty value means the default.
 */
export function readConfigFile(file: string, allowed: readonly string[]): OptionValues {
  // A regular file of at most READ_LIMITS.config bytes: `--config <fifo>` is refused, never waited on.
  const text = readRegularFileSync(file, READ_LIMITS.config, {
    what: 'a run config', error: (m, problem) => new UsageError(problem === 'missing' ? `config file not found: ${file}` : m),
  }).toString('utf8');
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not valid YAML/JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${file}: expected a mapping of option names to values`);
  const out: OptionValues = {};
  for (const [key, val] of Object.entries(doc as Record<string, unknown>)) {
    if (!allowed.includes(key)) throw new UsageError(`${file}: unknown key "${key}" (keys are the long option names of finch train --help)`);
    if (val === null) continue;
    if (typeof val === 'boolean') out[key] = val;
    else if (Array.isArray(val)) out[key] = val.map(String).join(',');
    else if (typeof val === 'object') out[key] = Object.entries(val as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`).join(',');
    else out[key] = String(val);
  }
  return out;
}

// ---- --help --------------------------------------------------------------------------------------

const WIDTH = 100;

/** One option of --help: the flag and its value placeholder, then the text wrapped beside it from `column` on. */
export function optionLine(flag: string, value: string | undefined, text: string, column = 28): string {
  const head = `  --${flag}${value ? ` ${value}` : ''}`;
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && column + line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  const first = head.length < column ? head.padEnd(column) + lines[0] : `${head}\n${' '.repeat(column)}${lines[0]}`;
  return [first, ...lines.slice(1).map((l) => ' '.repeat(column) + l)].join('\n');
}

/** One setting's --help line, for commands that share a run setting's option (--provider). */
export const settingLine = (path: SettingPath, column?: number): string => {
  const s = setting(path);
  return optionLine(s.flag, s.value, settingText(s), column);
};

/** A setting's --help text: what it does, the values it takes, and its default. */
function settingText(s: Setting): string {
  const t = s.type;
  const dflt = s.defaultText ?? (s.default === undefined || s.default === null ? null : String(s.default));
  switch (t.kind) {
    case 'switch': return s.help;
    case 'number': return `${s.help} (${describeType(t)}${dflt !== null ? `; default ${dflt}` : ''})`;
    case 'choice': return `${t.choices.join(' | ')}: ${s.help}${dflt !== null ? ` (default ${dflt})` : ''}`;
    case 'list': return `${s.help}: ${t.choices.join(',')}${dflt !== null ? ` (default ${dflt})` : ''}`;
    case 'map': return `${s.help}; FIELD one of ${t.keys.join(', ')}`;
    case 'path': return s.help;
  }
}

/** The --help lines of the paths (--model, --data, --out). */
export const pathsHelp = (): string => PATHS.map((p) => optionLine(p.flag, p.value, p.help)).join('\n');

/** The --help lines of every run setting, under its group's heading. */
export function settingsHelp(): string {
  const groups = new Map<SettingGroup, string[]>();
  for (const s of SETTINGS) groups.set(s.group, [...(groups.get(s.group) ?? []), optionLine(s.flag, s.value, settingText(s))]);
  return [...groups].map(([group, lines]) => `${group}:\n${lines.join('\n')}`).join('\n');
}
