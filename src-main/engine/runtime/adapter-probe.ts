// The WebGPU adapter probe: a process of its own that asks Dawn's Node binding (the `webgpu`
// package) for the adapter of each power preference, hands the list to its parent and ends.
// Its own process, because a broken GPU driver must not take the CLI, the app or a training run
// down with it, and because Dawn's instance here stays apart from the one inside ONNX Runtime.
//
// Two parents start it:
//  - a Node process (the CLI, browser mode, a job): a Node child (providers.ts listWebGpuAdapters),
//    answering with one line on stdout: `FINCH_ADAPTERS {"adapters":[...]}`;
//  - the desktop app's main process: an Electron utility process (electron/jobs.ts), answering with
//    one parentPort message. Spawning `process.execPath` there would start Electron, not Node: the
//    packaged app's fuses refuse ELECTRON_RUN_AS_NODE, and a second Finch only raises the first.

import type { DawnAdapter, ProbeAnswer } from './providers.js';

// The parts of Dawn's binding read here (typed locally: its own types declare WebGPU globals for
// the whole program).
interface Adapter {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  features: { has(name: string): boolean };
}
interface Dawn { create(flags: string[]): { requestAdapter(o: { powerPreference: string }): Promise<Adapter | null> } }

async function probe(): Promise<ProbeAnswer> {
  let dawn: Dawn;
  try {
    dawn = (await import('webgpu')) as unknown as Dawn;
  } catch {
    return { error: 'the `webgpu` package (Dawn\'s Node binding) is not installed' };
  }
  const gpu = dawn.create([]);
  const adapters: DawnAdapter[] = [];
  for (const powerPreference of ['high-performance', 'low-power']) {
    const a = await gpu.requestAdapter({ powerPreference });
    if (!a) continue;
    const i = a.info;
    adapters.push({
      vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
      fallback: !!(i.isFallbackAdapter ?? a.isFallbackAdapter),
      maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize, shaderF16: a.features.has('shader-f16'),
    });
  }
  return { adapters };
}

interface ParentPort { postMessage(m: unknown): void }
const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;

const answer = await probe().catch((e: unknown): ProbeAnswer => ({ error: `Dawn failed: ${String((e as Error)?.message ?? e).split('\n')[0]}` }));
if (parentPort) {
  // The parent ends this process once the message is in (Dawn's threads would keep it alive).
  parentPort.postMessage(answer);
} else {
  process.stdout.write(`FINCH_ADAPTERS ${JSON.stringify(answer)}\n`);
  process.exit(0);
}
