// The fuzz runners' watchdog: samples a process's resident memory from /proc (Linux) and kills it
// past a hard cap, so a flood found by the corpus fails the test instead of taking the machine.
import { readFileSync } from 'node:fs';

export const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

export interface MemoryWatch {
  stop(): void;
  result(): { start: number; peak: number; samples: number; killed: boolean };
}

export function watchMemory(pid: number, everyMs: number, killAbove: number): MemoryWatch {
  const rss = () => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  };
  let start = 0;
  try { start = rss(); } catch { /* gone already: the caller's checks say so */ }
  let peak = start, samples = 0, killed = false;
  const timer = setInterval(() => {
    try {
      const now = rss();
      samples++;
      peak = Math.max(peak, now);
      if (now > killAbove && !killed) {
        killed = true;
        process.kill(pid, 'SIGKILL');
      }
    } catch { /* the process has exited */ }
  }, everyMs);
  return { stop: () => clearInterval(timer), result: () => ({ start, peak, samples, killed }) };
}
