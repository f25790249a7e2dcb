// The one dispatcher every transport calls (Electron IPC, the WebSocket of `finch serve`, tests):
// it validates a call's arguments with the contract's schemas (src-shared/schemas.ts), runs the
// service, and turns every failure into ApiError data: a transport never sees a stack trace.
//
//   const d = createDispatcher(services, bus);
//   await d.dispatch('listRuns', [])          // -> { ok: true, value: [...] }
//   await d.dispatch('pauseRun', [42])        // -> { ok: false, error: { code: 'invalid_argument', field: '0', ... } }
//   const off = d.events.subscribe((e) => send(e));

import type { ZodError } from 'zod';
import { API_CALLS, type ApiCalls, type ApiError, type CallName, type CallResult, type FinchEvent } from '../../src-shared/api.js';
import { CALL_ARGS } from '../../src-shared/schemas.js';
import { toApiError } from './errors.js';

export interface EventSource {
  subscribe(listener: (e: FinchEvent) => void): () => void;
}

export interface Dispatcher {
  /** Never rejects: failures come back as { ok: false, error }. */
  dispatch(name: string, args: unknown): Promise<CallResult>;
  events: EventSource;
}

const KNOWN = new Set<string>(API_CALLS);
export const isCallName = (name: string): name is CallName => KNOWN.has(name);

/** The failing field of a schema error as a path ("0.lora.rank"), and a sentence naming it. */
export function invalidArgument(name: string, err: ZodError, argCount: number): ApiError {
  const issue = err.issues[0]!;
  const field = issue.path.map(String).join('.');
  let message = issue.message;
  if (!field && (issue.code === 'too_small' || issue.code === 'too_big')) {
    const n = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
    message = `takes ${n} argument${n === 1 ? '' : 's'}, got ${argCount}`;
  } else if (issue.code === 'unrecognized_keys') message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return {
    code: 'invalid_argument',
    message: `${name}: argument ${field || '(list)'}: ${message}`,
    hint: err.issues.length > 1 ? `${err.issues.length - 1} more problem(s) after this one` : null,
    field,
  };
}

/** What a maintainer needs of an 'internal' failure (a bug): the call, its arguments, the stack, and the reference the user sees. */
export interface InternalErrorEntry {
  ref: string;
  at: string;
  call: string;
  /** The validated arguments as JSON, long strings cut (paths and names stay whole). */
  args: string;
  error: string;
  stack: string | null;
}

/** One line on stderr: the server's and the app's log. */
const logToStderr = (e: InternalErrorEntry) => console.error(`finch: internal error ${e.ref} in ${e.call}: ${JSON.stringify(e)}`);

/** The arguments of a call for the log: at most 4 KB, strings over 300 characters cut. */
export function describeArgs(args: unknown): string {
  try {
    const text = JSON.stringify(args, (_k, v: unknown) => (typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}… (${v.length} characters)` : v));
    return text.length > 4096 ? `${text.slice(0, 4096)}…` : text;
  } catch (e) {
    return `(not serializable: ${(e as Error).message})`;
  }
}

export interface DispatcherOptions {
  /** Where 'internal' failures are logged (default: one JSON line on stderr). */
  logInternal?: (entry: InternalErrorEntry) => void;
}

export function createDispatcher(services: ApiCalls, events: EventSource, o: DispatcherOptions = {}): Dispatcher {
  const logInternal = o.logInternal ?? logToStderr;
  let internals = 0;
  return {
    events,
    async dispatch(name: string, args: unknown): Promise<CallResult> {
      if (!isCallName(name)) {
        return { ok: false, error: { code: 'unknown_call', message: `no API call named "${name}"`, hint: `the calls are: ${API_CALLS.join(', ')}` } };
      }
      const list = Array.isArray(args) ? args : [args];
      const parsed = CALL_ARGS[name].safeParse(list);
      if (!parsed.success) return { ok: false, error: invalidArgument(name, parsed.error, list.length) };
      try {
        const value = await (services[name] as (...a: unknown[]) => Promise<unknown>)(...(parsed.data as unknown[]));
        return { ok: true, value: value ?? null };
      } catch (e) {
        const error = toApiError(e);
        if (error.code !== 'internal') return { ok: false, error };
        // 'internal' is a bug in Finch: the user gets a reference, the log gets what to fix it with.
        const ref = `E${Date.now().toString(36)}-${++internals}`;
        logInternal({
          ref, at: new Date().toISOString(), call: name, args: describeArgs(parsed.data), error: `${(e as Error)?.name ?? 'Error'}: ${error.message}`,
          stack: e instanceof Error ? e.stack ?? null : null,
        });
        return { ok: false, error: { ...error, hint: `this is a bug in Finch; please report it with the log entry of ${ref}` } };
      }
    },
  };
}
