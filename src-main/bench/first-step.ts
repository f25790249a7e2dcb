// Time to the first training step, for `finch bench load --first-step`: `finch train` (float LoRA
// r=16 on all seven projections, one sequence of `seq` tokens) from process start to the end of
// step 1, with its `ready` event's phases, against PyTorch loading the same checkpoint into float32
// and running one LoRA step of the same shape (peers/torch_load.py with "train_seq").

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonChild } from './timing.js';

export interface FinchFirstStep {
  first_step_s: number;
  /** The trainer's `ready` event: seconds per phase before step 1. */
  ready: Record<string, unknown>;
  loss: number;
  cpu_s: number;
}

export interface PeerFirstStep { first_step_s: number; load_s: number; step_s: number; peak_rss_mb: number; cpu_s: number; loss: number }

/** CPU seconds (user + system, all threads) a live process has used: Linux's /proc/<pid>/stat, else NaN. */
function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Runs `finch train` on `dir` until its first step ends (then stops it). */
async function finchFirstStep(dir: string, threads: number, seq: number, env: NodeJS.ProcessEnv): Promise<FinchFirstStep> {
  const work = mkdtempSync(join(tmpdir(), 'finch-first-step-'));
  try {
    // Short plain-text rows, packed into `seq`-token sequences (several of them, as the held-out part takes some).
    const rows = Array.from({ length: seq }, (_, i) => JSON.stringify({ text: Array.from({ length: 3 }, (_, j) => `word${(i * 31 + j * 7) % 500}`).join(' ') }));
    writeFileSync(join(work, 'train.jsonl'), `${rows.join('\n')}\n`);
    const bin = fileURLToPath(new URL('../../bin/finch.mjs', import.meta.url));
    const args = [bin, 'train', '--model', dir, '--data', join(work, 'train.jsonl'), '--out', join(work, 'out'), '--format', 'text', '--pack',
      '--seq-len', String(seq), '--batch', '1', '--max-steps', '1', '--rank', '16', '--alpha', '32', '--threads', String(threads), '--provider', 'cpu', '--json'];
    const started = Date.now();
    return await new Promise<FinchFirstStep>((done, fail) => {
      const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let ready: Record<string, unknown> | null = null, buffered = '', stderr = '', result: FinchFirstStep | null = null;
      child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        buffered += c;
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          const e = JSON.parse(line) as Record<string, unknown>;
          if (e.event === 'ready') ready = e;
          if (e.event === 'step' && !result) {
            result = { first_step_s: (Date.now() - started) / 1000, ready: ready ?? {}, loss: e.loss as number, cpu_s: cpuSecondsOf(child.pid!) };
            child.kill('SIGTERM'); // the step is what was measured: skip the final evaluation and save
          }
        }
      });
      child.on('error', fail);
      child.on('close', (code) => {
        if (result) done(result);
        else fail(new Error(`finch train exited (${code}) before its first step: ${stderr.trim().split('\n').slice(-4).join('\n')}`));
      });
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Finch and PyTorch from process start to the end of the first LoRA step on the checkpoint in `dir`. */
export async function firstStep(dir: string, threads: number, seq: number, env: NodeJS.ProcessEnv) {
  const peer = await runJsonChild<PeerFirstStep>('/usr/bin/python3',
    [fileURLToPath(new URL('./peers/torch_load.py', import.meta.url)), JSON.stringify({ dir, threads, prompt: [], train_seq: seq, spawned_ms: Date.now() })], env);
  const finch = await finchFirstStep(dir, threads, seq, env);
  return { seq, finch, peer, ratio: finch.first_step_s / peer.first_step_s };
}
