// One error shape for the UI, whichever transport failed: a code, a sentence for people, and the
// API's hint on what to do. Components show `message` and `hint`, never a stack trace.

import type { ApiError as ApiErrorData, ErrorCode } from '../../../../src-shared/api.ts';

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode | 'disconnected' | 'closed',
    message: string,
    readonly hint: string | null,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** From a JSON-RPC error object: `data` carries the API's { code, message, hint, field } when it has one. */
  static fromRpc(e: { code: number; message: string; data?: unknown }): ApiError {
    const data = (e.data && typeof e.data === 'object' ? e.data : {}) as Partial<Record<keyof ApiErrorData, unknown>>;
    const code = typeof data.code === 'string' ? (data.code as ErrorCode)
      : e.code === -32602 ? 'invalid_argument' : e.code === -32601 ? 'unknown_call' : 'internal';
    return new ApiError(code, typeof data.message === 'string' ? data.message : e.message,
      typeof data.hint === 'string' ? data.hint : null, typeof data.field === 'string' ? data.field : undefined);
  }

  toData(): ApiErrorData {
    const code: ErrorCode = this.code === 'disconnected' || this.code === 'closed' ? 'internal' : this.code;
    return { code, message: this.message, hint: this.hint, ...(this.field ? { field: this.field } : {}) };
  }
}

/** Any thrown value as { message, hint } for display. Electron's IPC prefixes
 * "Error invoking remote method 'x': Error: "; that prefix is noise to a person and is dropped. */
export function describeError(err: unknown): { message: string; hint: string | null; code: string | null } {
  if (err && typeof err === 'object') {
    const o = err as { message?: unknown; hint?: unknown; code?: unknown };
    const message = typeof o.message === 'string' ? o.message.replace(/^Error invoking remote method '[^']*': (\w*Error: )?/, '') : String(err);
    return { message, hint: typeof o.hint === 'string' ? o.hint : null, code: typeof o.code === 'string' ? o.code : null };
  }
  return { message: String(err), hint: null, code: null };
}
