#!/usr/bin/env node
// `finch` entry point. Finch's sources are TypeScript run by tsx, so a fresh clone works right
// after `npm install` with no build step. Worker threads and child processes that Finch starts
// register tsx themselves (see src-main/engine/runtime/worker.ts).
import { spawn } from 'node:child_process';
import { register } from 'tsx/esm/api';

register();
const { allocatorTuned, withTunedAllocator } = await import('../src-main/engine/runtime/allocator.ts');

// The commands that train run with glibc's malloc threshold fixed (allocator.ts), which is read
// when a process starts: on Linux they start this script again with it, and pass their exit on.
// Ctrl-C reaches both processes (one process group): this one ignores it and the child handles it
// (finch train cancels after the current step); a SIGTERM or SIGHUP sent to this one is passed on.
// A SIGKILL cannot be passed on: the child holds an IPC channel to this process and, when it
// closes, kills itself the same way, so a killed `finch train` stops as if it were one process.
const RELAUNCHED = 'FINCH_ALLOCATOR_RELAUNCHED';
if (process.env[RELAUNCHED] === '1' && process.channel) {
  delete process.env[RELAUNCHED]; // not inherited by this process's own children
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}
if (process.platform === 'linux' && ['train', 'demo'].includes(process.argv[2]) && !allocatorTuned(process.env)) {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...withTunedAllocator(process.env), [RELAUNCHED]: '1' },
  });
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
} else {
  const { main } = await import('../src-main/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
