// Failures of the services as contract data. Services throw ServiceError with a code and a hint
// where they know what to do; errors of the modules below (model folders, datasets, the trainer,
// the Hub) are mapped by their class here, once. Anything else is 'internal' with its message.

import type { ApiError, ErrorCode } from '../../src-shared/api.js';

export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(readonly code: ErrorCode, message: string, readonly hint: string | null = null, /** The argument at fault ("0.seqLen"). */ readonly field?: string) {
    super(message);
  }
}

/** Error class name -> code, for the modules' own error classes (matched by name: no imports of heavy modules here). */
const BY_CLASS: Record<string, ErrorCode> = {
  ModelFolderError: 'bad_model',
  ModelConfigError: 'bad_model',
  ConfigWeightsMismatchError: 'bad_model',
  SafetensorsError: 'bad_model',
  HfCacheError: 'bad_model',
  TokenizerError: 'bad_model',
  FileAccessError: 'invalid_argument', // a path that is no regular file, or too large (a missing one is ENOENT: not_found)
  DatasetError: 'bad_dataset',
  RowError: 'bad_dataset',
  AdapterError: 'bad_adapter',
  MergeError: 'bad_adapter',
  GgufError: 'bad_model',
  AccelerateExportError: 'conflict',
  TrainingError: 'job_failed',
};

export function toApiError(e: unknown): ApiError {
  if (e instanceof ServiceError) return { code: e.code, message: e.message, hint: e.hint, ...(e.field ? { field: e.field } : {}) };
  if (e instanceof Error && e.name === 'HubError') {
    // src-main/hub's errors carry a code and a hint already (401/403 say how to get access).
    const code = (e as Error & { code: string }).code, hint = (e as Error & { hint?: string }).hint || null;
    const mapped: ErrorCode = code === 'unauthorized' || code === 'forbidden' ? 'hub_auth' : code === 'cancelled' ? 'cancelled'
      : code === 'no_space' ? 'disk_full' : code === 'bad_request' ? 'invalid_argument' : code === 'conflict' ? 'conflict' : 'hub';
    return { code: mapped, message: e.message, hint };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const sys = (err as NodeJS.ErrnoException).code;
  if (sys === 'ENOSPC') return { code: 'disk_full', message: err.message, hint: 'free some disk space and try again' };
  if (sys === 'ENOENT') return { code: 'not_found', message: err.message, hint: null };
  if (sys === 'EACCES' || sys === 'EPERM') return { code: 'conflict', message: err.message, hint: 'check the permissions of that path' };
  // The trainer's errors carry a hint where they know what to do (train/checkpoint.ts TrainingError).
  const hint = typeof (err as Error & { hint?: unknown }).hint === 'string' ? (err as Error & { hint: string }).hint : null;
  return { code: BY_CLASS[err.name] ?? 'internal', message: err.message, hint };
}
