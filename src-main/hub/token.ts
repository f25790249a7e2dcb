// The one answer to "which Hugging Face token?" for every door (`finch pull`, `finch push`, the app,
// `finch serve`): the token given with the call (--token, a request's field), else the app's stored
// token, else the HF_TOKEN environment variable. No token is an answer too (public downloads).
//
// Until the token store under FINCH_HOME lands, the app's stored token is the 'hfToken' setting in
// FINCH_HOME/finch.db, read here read-only; the services pass their own store's setting instead
// (their database may be another file). When the store lands, only this body changes.

import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { finchHome } from '../store/paths.js';

const given = (t: string | null | undefined): string | undefined => (t && t.trim() ? t.trim() : undefined);

/** The app's stored token in FINCH_HOME/finch.db, or undefined (no database, no setting, unreadable). */
export function appStoredToken(): string | undefined {
  const file = join(finchHome(), 'finch.db');
  if (!existsSync(file)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const row = db.prepare('SELECT value_json FROM settings WHERE key = ?').get('hfToken') as { value_json: string } | undefined;
    const value: unknown = row ? JSON.parse(row.value_json) : undefined;
    return typeof value === 'string' ? given(value) : undefined;
  } catch {
    return undefined; // a database of another version or in use in a way that refuses readers: as if none were stored
  } finally {
    db?.close();
  }
}

/**
 * The token for a Hub call: `explicit`, else the app's stored token (`stored`, default: the one in
 * FINCH_HOME/finch.db), else HF_TOKEN; undefined when there is none.
 */
export function hubToken(explicit?: string | null, stored: () => string | null | undefined = appStoredToken): string | undefined {
  return given(explicit) ?? given(stored()) ?? given(process.env.HF_TOKEN);
}
