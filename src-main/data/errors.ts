// Dataset errors and the bad-row policy. A dataset problem always names the file and, where it has
// one, the line (text formats) or row (Parquet), and says what to do about it.

/** A problem with a dataset file as a whole (missing columns, empty, unreadable): the run cannot start. */
export class DatasetError extends Error {
  /** `file` is empty for problems that belong to the model or options rather than a file. */
  constructor(message: string, readonly file = '') {
    super(message);
    this.name = 'DatasetError';
  }
}

/** A problem with one row; the BadRowLog decides whether it fails the run or is skipped. */
export class RowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RowError';
  }
}

export type BadRowPolicy = 'fail' | 'skip';

export interface BadRow {
  line: number;
  reason: string;
}

/**
 * Collects bad rows for one file. Under 'fail' it keeps reading until it has `maxListed` errors
 * (or the file ends) and then throws one DatasetError listing them, so a user fixes several at
 * once; under 'skip' it counts them and keeps the first few for the summary.
 */
export class BadRowLog {
  count = 0;
  readonly first: BadRow[] = [];

  constructor(
    readonly file: string,
    readonly policy: BadRowPolicy = 'fail',
    /** Text formats number lines; Parquet numbers rows. */
    readonly unit: 'line' | 'row' = 'line',
    readonly maxListed = 10,
  ) {}

  add(line: number, reason: string): void {
    this.count++;
    if (this.first.length < this.maxListed) this.first.push({ line, reason });
    if (this.policy === 'fail' && this.count >= this.maxListed) throw this.error(true);
  }

  /** Call when the file has been read to the end: throws under 'fail' if anything was bad. */
  finish(): void {
    if (this.policy === 'fail' && this.count > 0) throw this.error(false);
  }

  where(line: number): string {
    return `${this.file} ${this.unit} ${line}`;
  }

  /** One line for the run's notes under 'skip' (null when nothing was skipped). */
  summary(): string | null {
    if (this.count === 0) return null;
    const f = this.first[0]!;
    return `skipped ${this.count} bad row${this.count === 1 ? '' : 's'} in ${this.file} (first: ${this.unit} ${f.line}: ${f.reason})`;
  }

  private error(stoppedEarly: boolean): DatasetError {
    const list = this.first.map((b) => `  ${this.unit} ${b.line}: ${b.reason}`).join('\n');
    const head = stoppedEarly
      ? `${this.file}: stopped after the first ${this.count} bad rows:`
      : `${this.file}: ${this.count} bad row${this.count === 1 ? '' : 's'}:`;
    return new DatasetError(
      `${head}\n${list}\nFix these rows, or skip bad rows (--on-bad-row skip) to train on the rest.`,
      this.file,
    );
  }
}
