// Reading a JSON object file of a model folder (config.json, tokenizer_config.json, ...) with
// messages that name the file; each caller raises its own error class.

import * as fs from 'node:fs';

export type JsonObject = Record<string, unknown>;

/**
 * The object in `file`, or null when it is absent and optional. A missing required file throws
 * `${file} not found: ${missingHint}`; unreadable, invalid or non-object JSON throws too.
 */
export function readJsonObject(file: string, o: { required: boolean; missingHint: string; error: (message: string) => Error }): JsonObject | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!o.required) return null;
      throw o.error(`${file} not found: ${o.missingHint}`);
    }
    throw o.error(`cannot read ${file}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw o.error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw o.error(`${file}: expected a JSON object`);
  return v as JsonObject;
}
