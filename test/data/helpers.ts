// Shared helpers for data tests: a temporary folder per test file and small writers.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { RowRecord } from '../../src-main/data/read/index.js';

export const FIXTURES = new URL('../fixtures/data/', import.meta.url).pathname;

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'finch-data-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeFile(dir: string, name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

export async function collect(rows: AsyncIterable<RowRecord>): Promise<RowRecord[]> {
  const out: RowRecord[] = [];
  for await (const r of rows) out.push(r);
  return out;
}
