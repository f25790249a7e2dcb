// The back end's jobs (a training run, the generation engine) as Electron utility processes.
//
// Why a utility process: it is Electron's own child-process type, a full Node.js environment
// (onnxruntime-node is an N-API addon and loads there like in any Node process; native threads,
// WebGPU through Dawn, DirectML and CUDA providers all live inside the addon), started from the
// Electron binary itself, so a packaged Finch needs no separate Node.js. It runs beside the main
// process: session.run blocking it for seconds never touches the window, and a native crash in
// ONNX Runtime ends that process only: its 'exit' reaches the services, which mark the run failed.
// A Node child process (child_process.fork, the services' default for the CLI and browser mode)
// would also work but needs ELECTRON_RUN_AS_NODE and is invisible to Electron's process metrics.
//
// The job's entry is the services' job-host module; it talks through `process.parentPort` in a
// utility process and through `process.send` in a Node child (job-host.ts handles both).
// The WebGPU adapter probe (engine/runtime/adapter-probe.ts) runs here too: it must be a process
// of its own, and the only Node processes a packaged Electron can start are utility processes
// (its fuses refuse ELECTRON_RUN_AS_NODE, so spawning process.execPath starts Finch, not Node).

import { utilityProcess } from 'electron';
import { type AdapterList, type ProbeAnswer, adapterListFrom } from '../engine/runtime/providers.js';
import type { JobHandle, SpawnJob } from '../services/jobs.js';
import { withTunedAllocator } from '../engine/runtime/allocator.js';

export interface UtilityJobOptions {
  /** The module to run: dist/electron/job-host.js (adapter-probe.js) in a build, TypeScript with a loader from the sources. */
  entry: string;
  /** Node options for the process (a TypeScript loader in development). */
  execArgv?: string[];
}

export function utilityJobs(o: UtilityJobOptions): SpawnJob {
  return (kind, payload) => {
    const child = utilityProcess.fork(o.entry, [], {
      serviceName: kind === 'train' ? 'Finch training' : 'Finch generation',
      stdio: 'inherit',
      env: withTunedAllocator(process.env), // a training job's activations are returned to the system on free (allocator.ts)
      ...(o.execArgv ? { execArgv: o.execArgv } : {}),
    });
    let exited = false;
    const pending: unknown[] = [];
    let spawned = false;
    // Messages posted before the process has spawned are queued until it has.
    child.once('spawn', () => {
      spawned = true;
      for (const m of pending.splice(0)) child.postMessage(m);
    });
    const exitListeners: ((code: number | null, signal: string | null) => void)[] = [];
    child.once('exit', (code: number) => {
      exited = true;
      for (const l of exitListeners) l(code, null);
    });
    const handle: JobHandle = {
      get pid() { return child.pid; },
      send: (msg) => {
        if (exited) return;
        if (spawned) child.postMessage(msg);
        else pending.push(msg);
      },
      onMessage: (l) => { child.on('message', (m) => l(m as Parameters<typeof l>[0])); },
      onExit: (l) => { exitListeners.push(l); },
      kill: () => { if (!exited) child.kill(); },
    };
    handle.send({ op: 'start', kind, payload });
    return handle;
  };
}

/** Lists WebGPU adapters through a utility process running the adapter probe; it is ended once it answers. */
export function utilityAdapterList(o: UtilityJobOptions, timeoutMs = 30_000): () => Promise<AdapterList> {
  return () => new Promise((resolve) => {
    const child = utilityProcess.fork(o.entry, [], {
      serviceName: 'Finch GPU probe',
      stdio: 'inherit',
      ...(o.execArgv ? { execArgv: o.execArgv } : {}),
    });
    let answered = false;
    const answer = (list: AdapterList) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      child.kill();
      resolve(list);
    };
    const timer = setTimeout(() => answer({ adapters: [], error: `listing WebGPU adapters gave no answer in ${timeoutMs / 1000} s` }), timeoutMs);
    child.once('message', (m: ProbeAnswer) => answer(adapterListFrom(m, process.platform)));
    child.once('exit', (code: number) => answer({ adapters: [], error: `listing WebGPU adapters failed: the probe process ended (exit code ${code}) without an answer` }));
  });
}
