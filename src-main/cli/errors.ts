// How a command reports a failure: the message (it names the file, line or field and what to do)
// and the error's hint when it has one, with the stack only when FINCH_DEBUG=1, and exit code 1.

import { HubError } from '../hub/index.js';
import type { JsonLines } from './progress.js';

export function reportError(command: string, e: unknown): number {
  const err = e as Error & { hint?: unknown };
  console.error(`finch ${command}: ${err?.message ?? String(e)}`);
  if (typeof err?.hint === 'string') console.error(err.hint); // what to do, where the error knows (TrainingError)
  if (process.env.FINCH_DEBUG === '1' && err?.stack) console.error(err.stack);
  return 1;
}

/**
 * A Hub command's failure (finch pull, finch push): a HubError as its message and hint, or as an
 * 'error' line of code, message and hint with --json; exit code 130 when it was cancelled, else 1.
 * Anything else is a bug or a local failure: reportError.
 */
export function reportHubError(command: string, e: unknown, json: JsonLines | null): number {
  if (!(e instanceof HubError)) return reportError(command, e);
  if (json) json.emit('error', { code: e.code, message: e.message, hint: e.hint });
  else console.error(`finch ${command}: ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`);
  return e.code === 'cancelled' ? 130 : 1;
}
