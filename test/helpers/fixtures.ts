// Shared on-disk fixtures for end-to-end tests: a small synthetic checkpoint and a MetaMathQA-style
// dataset, written once per process into a temporary folder.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { writeSyntheticCheckpoint, type SyntheticCheckpointOptions } from '../../src-main/synthetic/checkpoint.js';

export const FINCH_BIN = new URL('../../bin/finch.mjs', import.meta.url).pathname;

export function tempDir(prefix = 'finch-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function tinyCheckpoint(opts: SyntheticCheckpointOptions = {}): string {
  const dir = join(tempDir('finch-model-'), 'model');
  writeSyntheticCheckpoint(dir, { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 512, ...opts });
  return dir;
}

/** MetaMathQA-style rows: query/response with "The answer is: N". */
export function mathRows(n: number): { query: string; response: string }[] {
  return Array.from({ length: n }, (_, i) => {
    const a = i % 10, b = (i * 7 + 3) % 10;
    return { query: `What is ${a} plus ${b}?`, response: `${a} plus ${b} makes ${a + b}. The answer is: ${a + b}` };
  });
}

export function writeJsonl(file: string, rows: readonly object[]): string {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** How long `finch()` lets a command run: a hung command fails its test naming the command. */
export const FINCH_TIMEOUT_MS = 300_000;

/**
 * Runs `finch ...args`; `onLine` sees each stdout line as it arrives (and may kill the child).
 * Past `timeoutMs` the command is killed and the promise rejects with the command and its last output.
 */
export function finch(args: string[], onLine?: (line: string, kill: () => void) => void, timeoutMs = FINCH_TIMEOUT_MS): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FINCH_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const tail = (s: string) => s.trim().split('\n').slice(-6).join('\n    ');
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for \`finch ${args.join(' ')}\` to exit; its last output:\n    ${tail(stdout)}\n    ${tail(stderr)}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      pending += c;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        onLine?.(line, () => child.kill('SIGKILL'));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

export const events = (stdout: string): Record<string, unknown>[] =>
  stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

/** Every file below `dir` by relative path ('a/b.json'), with its bytes. */
export function readTree(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) for (const [k, v] of readTree(p, `${prefix}${name}/`)) out.set(k, v);
    else out.set(prefix + name, readFileSync(p));
  }
  return out;
}

/** Points FINCH_HOME (child processes inherit it) at `dir`; the returned function restores it. */
export function useFinchHome(dir: string): () => void {
  const saved = process.env.FINCH_HOME;
  process.env.FINCH_HOME = dir;
  return () => {
    if (saved === undefined) delete process.env.FINCH_HOME;
    else process.env.FINCH_HOME = saved;
  };
}
