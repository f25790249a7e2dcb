// Shared bits of the model-folder tests: temp folders and running the python oracles next to
// this file under Debian's /usr/bin/python3 (which has torch).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { PYTHON } from '../helpers/torch.js';

const ORACLES = new URL('../oracle/', import.meta.url).pathname; // the PyTorch oracle scripts

/** A fresh temp folder, removed when the test file ends. */
export function tempDir(prefix = 'finch-model-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Runs test/model/<script> with args; throws with its stderr on failure. */
export function runPythonScript(script: string, args: string[], timeoutMs = 120_000): string {
  const r = spawnSync(PYTHON, [join(ORACLES, script), ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw new Error(`could not run ${PYTHON} ${script}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status ?? r.signal}):\n${r.stderr.trim()}`);
  return r.stdout;
}
