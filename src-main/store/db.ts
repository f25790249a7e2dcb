// Finch's library database (better-sqlite3): models, datasets, runs with their metrics, evaluations,
// checkpoints and logs, adapters, comparisons, settings. Run folders under FINCH_HOME stay the
// source of truth for weights; the database remembers what the app showed and did.
//
// Versioned migrations: MIGRATIONS[i] takes a database from user_version i to i + 1, each in one
// transaction. Never edit a released migration; add the next one (test/store/db.test.ts migrates a
// database file written by schema 2, test/fixtures/finch-db-schema2, and checks its rows survive).

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

export const MIGRATIONS: readonly string[] = [
  // 1: the library, runs and their per-step metrics, checkpoints, settings.
  `
  CREATE TABLE models (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    repo TEXT, revision TEXT, model_type TEXT NOT NULL, parameters INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    dtype TEXT NOT NULL, has_chat_template INTEGER NOT NULL, added_at TEXT NOT NULL
  );
  CREATE TABLE datasets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL, repo TEXT, split TEXT,
    file_kind TEXT NOT NULL, size_bytes INTEGER NOT NULL, format TEXT, map_json TEXT, added_at TEXT NOT NULL
  );
  CREATE TABLE runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, origin TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued','running','paused','completed','failed','cancelled','interrupted')),
    model_id TEXT REFERENCES models(id) ON DELETE SET NULL, dataset_id TEXT REFERENCES datasets(id) ON DELETE SET NULL,
    model_name TEXT NOT NULL, dataset_name TEXT NOT NULL, config_json TEXT, train_config_json TEXT, provider TEXT,
    dir TEXT NOT NULL UNIQUE, adapter_path TEXT, step INTEGER NOT NULL DEFAULT 0, total_steps INTEGER,
    loss REAL, eval_loss REAL, best_eval_loss REAL, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    duration_s REAL NOT NULL DEFAULT 0, error_json TEXT, demo_json TEXT
  );
  CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
    loss REAL NOT NULL, lr REAL NOT NULL, grad_norm REAL NOT NULL, tokens_per_s REAL NOT NULL, rss_mb REAL NOT NULL,
    PRIMARY KEY (run_id, step)
  );
  CREATE TABLE evals (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
    eval_loss REAL, perplexity REAL, PRIMARY KEY (run_id, step)
  );
  CREATE TABLE checkpoints (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL, path TEXT NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (run_id, step)
  );
  CREATE TABLE settings (key TEXT PRIMARY KEY, value_json TEXT NOT NULL);
  `,
  // 2: the compare view (adapters, saved comparisons), eval sample answers, run logs.
  `
  ALTER TABLE evals ADD COLUMN samples_json TEXT NOT NULL DEFAULT '[]';
  CREATE TABLE run_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    at TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL
  );
  CREATE INDEX run_logs_run ON run_logs(run_id, id);
  CREATE TABLE adapters (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, base_model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    origin TEXT NOT NULL, run_id TEXT REFERENCES runs(id) ON DELETE CASCADE, rank INTEGER NOT NULL, alpha REAL NOT NULL,
    targets_json TEXT NOT NULL, added_at TEXT NOT NULL
  );
  CREATE TABLE comparisons (
    id TEXT PRIMARY KEY, model_id TEXT NOT NULL, left_json TEXT NOT NULL, right_json TEXT NOT NULL,
    left_label TEXT NOT NULL, right_label TEXT NOT NULL, messages_json TEXT NOT NULL,
    left_output TEXT NOT NULL, right_output TEXT NOT NULL, sampling_json TEXT, max_new_tokens INTEGER,
    rating TEXT, notes TEXT NOT NULL, created_at TEXT NOT NULL
  );
  `,
  // 3: preference runs' reward metrics per step and per evaluation (train-events.ts RewardMetrics as JSON; NULL for SFT).
  `
  ALTER TABLE metrics ADD COLUMN rewards_json TEXT;
  ALTER TABLE evals ADD COLUMN rewards_json TEXT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens (creating) the database at `file` and migrates it to `upTo` (default: the current
 * version). WAL lets readers (a second window, the CLI) read while a run writes metrics.
 */
export function openDb(file: string, upTo = SCHEMA_VERSION): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    db.close();
    throw new Error(`${file}: this database was made by a newer Finch (schema ${current}, this build knows ${SCHEMA_VERSION}); update Finch or point FINCH_HOME elsewhere`);
  }
  for (let v = current; v < upTo; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}
