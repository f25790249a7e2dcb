// Runs a PyTorch oracle script (test/oracle/*.py) under Debian's /usr/bin/python3 and exchanges
// tensors with it through JSON files: the test writes its inputs, the script computes the same
// thing with torch and writes its results, the test compares. JSON carries float32 and float64
// values exactly (every float has a shortest decimal form that parses back to the same bits).
// There is no skip: CI installs python3-torch, so a missing torch is a loud failure.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's python, which has python3-torch (another python3 may come first on PATH). */
export const PYTHON = '/usr/bin/python3';
const ORACLE_DIR = new URL('../oracle/', import.meta.url).pathname;

export type OracleDType = 'float32' | 'float64' | 'int32' | 'int64';

/** A tensor as the oracle scripts read and write it (test/oracle/exchange.py). */
export interface OracleTensor {
  dtype: OracleDType;
  shape: number[];
  data: number[];
}

export function tensor(dtype: OracleDType, shape: readonly number[], data: ArrayLike<number> | ArrayLike<bigint>): OracleTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`oracle tensor: ${data.length} values for shape [${shape}]`);
  return { dtype, shape: [...shape], data: Array.from(data as ArrayLike<number>, Number) };
}

const isTensor = (v: unknown): v is OracleTensor =>
  typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v;

/**
 * Runs test/oracle/<script> with `input` (any JSON, tensors as OracleTensor) and returns its output
 * JSON. Throws with the script's stderr when python, torch or the script fails.
 */
export function runOracle<T = Record<string, unknown>>(script: string, input: unknown, timeoutMs = 120_000): T {
  const path = join(ORACLE_DIR, script);
  if (!existsSync(path)) throw new Error(`oracle script ${path} does not exist`);
  if (!existsSync(PYTHON)) {
    throw new Error(`${PYTHON} not found: the PyTorch oracle needs Debian's python3 with torch (apt-get install python3-torch)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'finch-oracle-'));
  try {
    const inPath = join(dir, 'input.json'), outPath = join(dir, 'output.json');
    writeFileSync(`${inPath}.tmp`, JSON.stringify(input));
    renameSync(`${inPath}.tmp`, inPath);
    const r = spawnSync(PYTHON, [path, inPath, outPath], {
      encoding: 'utf8',
      timeout: timeoutMs,
      cwd: ORACLE_DIR,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the source tree
    });
    if (r.error) throw new Error(`could not run ${PYTHON} ${script}: ${r.error.message}`);
    if (r.status !== 0) {
      const hint = /No module named 'torch'/.test(r.stderr)
        ? `\n${PYTHON} has no torch: install Debian's python3-torch (apt-get install python3-torch); CI installs it`
        : '';
      throw new Error(`oracle ${script} failed (exit ${r.status ?? r.signal}):\n${r.stderr.trim()}${hint}`);
    }
    return JSON.parse(readFileSync(outPath, 'utf8')) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The float values of an oracle output tensor (throws naming `what` if it is not one). */
export function values(v: unknown, what: string): number[] {
  if (!isTensor(v)) throw new Error(`oracle output ${what} is not a tensor`);
  return v.data;
}

/**
 * Relative difference of two tensors: max |a - b| over max |b|, so elements near zero (where an
 * element-wise ratio is meaningless) are measured against the tensor's scale.
 */
export function relDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, b = expected[i]!;
    if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
    diff = Math.max(diff, Math.abs(a - b));
    scale = Math.max(scale, Math.abs(b));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Records relative differences per name and asserts each against a tolerance with a readable message. */
export class Comparison {
  readonly worst = new Map<string, number>();

  constructor(private readonly tolerance: number) {}

  check(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>): number {
    if (actual.length !== expected.length) {
      throw new Error(`${name}: ${actual.length} values, oracle has ${expected.length}`);
    }
    const d = relDiff(actual, expected);
    this.worst.set(name, Math.max(this.worst.get(name) ?? 0, d));
    if (!(d <= this.tolerance)) {
      throw new Error(`${name}: relative difference ${d.toExponential(2)} exceeds ${this.tolerance.toExponential(0)}`);
    }
    return d;
  }

  /** One line per name, worst first: for the test log and reports. */
  summary(): string {
    return [...this.worst].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v.toExponential(2)}`).join('\n');
  }

  max(): number {
    return Math.max(0, ...this.worst.values());
  }
}
