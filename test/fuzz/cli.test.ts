// The CLI's side of the fuzz corpus (corpus.ts CLI_CASES): no input reachable from `finch` aborts,
// blocks or floods the process. Each command ends within CLI_MS with its exit code and a message
// naming the bad file (no stack trace), and its memory, sampled every RSS_EVERY_MS, stays under
// RSS_BOUND (a watchdog kills it past RSS_KILL). CLI_MS is the start of a tsx process on a busy
// 2-core machine many times over: a command that waits on a FIFO never ends.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { FINCH_BIN, tempDir } from '../helpers/fixtures.js';
import { makeBadFiles } from './bad-files.js';
import { CLI_CASES } from './corpus.js';
import { mib, watchMemory } from './watch.js';

const CLI_MS = 120_000;
const RSS_EVERY_MS = 50;
const RSS_BOUND = 512 * 2 ** 20;
const RSS_KILL = 4 * 2 ** 30;

function run(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string; ms: number; peak: number; killed: boolean }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [FINCH_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const memory = watchMemory(child.pid!, RSS_EVERY_MS, RSS_KILL);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`finch ${args.join(' ')}\` still ran after ${CLI_MS / 1000} s (blocked?); stderr so far: ${stderr.slice(-500)}`));
    }, CLI_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      memory.stop();
      const m = memory.result();
      resolve({ code, signal, stderr, ms: performance.now() - t0, peak: m.peak, killed: m.killed });
    });
  });
}

test('fuzz corpus, CLI: every bad input ends `finch` with its message, no stack trace, within bounds', {
  skip: process.platform === 'win32' ? 'FIFOs and /dev/zero are POSIX' : false,
}, async (t) => {
  const root = tempDir('finch-fuzz-cli-');
  const closeSockets = await makeBadFiles(root);
  const outs = tempDir('finch-fuzz-out-');
  const seen: { name: string; ms: number; peak: number }[] = [];
  try {
    for (const [i, c] of CLI_CASES.entries()) {
      await t.test(c.name, async () => {
        const r = await run(c.args((p) => join(root, p), join(outs, `out-${i}`)));
        seen.push({ name: c.name, ms: r.ms, peak: r.peak });
        assert.equal(r.code, c.exit, `exit ${r.code} (signal ${r.signal}), expected ${c.exit}: ${r.stderr.slice(-800)}`);
        assert.match(r.stderr, c.message);
        assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for bad input');
        assert.ok(!r.killed && r.peak <= RSS_BOUND, `peak memory ${mib(r.peak)} over ${mib(RSS_BOUND)}`);
      });
    }
  } finally {
    closeSockets();
    const slowest = [...seen].sort((a, b) => b.ms - a.ms)[0];
    const heaviest = [...seen].sort((a, b) => b.peak - a.peak)[0];
    console.log(`# fuzz corpus, CLI: ${CLI_CASES.length} commands; slowest ${((slowest?.ms ?? 0) / 1000).toFixed(1)} s (${slowest?.name}); ` +
      `peak RSS ${mib(heaviest?.peak ?? 0)} (${heaviest?.name}; bound ${mib(RSS_BOUND)})`);
  }
});
