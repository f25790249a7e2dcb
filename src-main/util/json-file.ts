// Reading a JSON object file of a model folder (config.json, tokenizer_config.json, ...) with
// messages that name the file; each caller raises its own error class. The bytes come through
// util/regular-file.ts: a regular file only, at most `limit` bytes (default READ_LIMITS.config),
// nested at most MAX_JSON_DEPTH deep.

import { type FileProblem, READ_LIMITS, parseJsonText, readRegularFile, readRegularFileSync } from './regular-file.js';

export type JsonObject = Record<string, unknown>;

export interface JsonObjectOptions {
  required: boolean;
  missingHint: string;
  error: (message: string) => Error;
  /** Most bytes read (default READ_LIMITS.config). */
  limit?: number;
  /** For the too-large message (default "a JSON config file"). */
  what?: string;
}

/**
 * The object in `file`, or null when it is absent and optional. A missing required file throws
 * `${file} not found: ${missingHint}`; a file that is not a regular file, too large, unreadable,
 * invalid, too deep or not an object throws too.
 */
export function readJsonObject(file: string, o: JsonObjectOptions): JsonObject | null {
  let bytes: Buffer;
  try {
    bytes = readRegularFileSync(file, o.limit ?? READ_LIMITS.config, { what: o.what ?? 'a JSON config file', error: missingAs(file, o) });
  } catch (e) {
    if (e === ABSENT) return null;
    throw e;
  }
  return toObject(bytes, file, o);
}

/** readJsonObject without blocking the event loop (the server's reads). */
export async function readJsonObjectAsync(file: string, o: JsonObjectOptions): Promise<JsonObject | null> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(file, o.limit ?? READ_LIMITS.config, { what: o.what ?? 'a JSON config file', error: missingAs(file, o) });
  } catch (e) {
    if (e === ABSENT) return null;
    throw e;
  }
  return toObject(bytes, file, o);
}

/** Thrown (and caught above) for an optional file that is absent. */
const ABSENT = new Error('absent');

const missingAs = (file: string, o: JsonObjectOptions) => (message: string, problem: FileProblem): Error => {
  if (problem !== 'missing') return o.error(message);
  return o.required ? o.error(`${file} not found: ${o.missingHint}`) : ABSENT;
};

function toObject(bytes: Buffer, file: string, o: JsonObjectOptions): JsonObject {
  const text = bytes.toString('utf8');
  const v = parseJsonText(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, file, { error: (m) => o.error(m) });
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw o.error(`${file}: expected a JSON object`);
  return v as JsonObject;
}
