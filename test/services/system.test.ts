// services/system.ts and the app's side of the one provider choice: on a machine whose only GPU is
// an AMD Radeon (no CUDA), the app's 'auto' is WebGPU on it, as `finch doctor` decides, with the
// adapter named; an app run and its memory verdict go there, and the run's job is handed the
// probed machine so it decides alike without a probe of its own.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunConfig, RunSummary, StartDemoResult } from '../../src-shared/api.js';
import { type AdapterList, type GpuAdapter, type MachineProviders, chooseAuto, isSoftwareAdapter } from '../../src-main/engine/runtime/providers.js';
import { createServices } from '../../src-main/services/index.js';
import type { JobHandle, TrainPayload } from '../../src-main/services/jobs.js';
import { appInfo, estimateMemory, providers, runDecision, runProvider } from '../../src-main/services/system.js';
import { type GpuMemory, parseNvidiaSmi, readGpuMemory } from '../../src-main/engine/runtime/gpu-memory.js';
import { DEMO_MODEL } from '../../src-main/services/demo.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { readFileSync } from 'node:fs';

const gpu = (a: Omit<GpuAdapter, 'software' | 'fallback' | 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'shaderF16'>): GpuAdapter => {
  const base = { ...a, fallback: false, maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 31, shaderF16: true };
  return { ...base, software: isSoftwareAdapter(base) };
};
const radeon = gpu({ vendor: 'amd', architecture: 'rdna-3', device: 'amd-radeon-rx-7900-xtx-radv-navi31', description: 'radv: Mesa 24.2.8', backend: 'Vulkan' });
const lavapipe = { ...gpu({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7', backend: 'Vulkan' }), software: true, fallback: true };
const linux = (adapters: GpuAdapter[], installed = ['cpu', 'webgpu']): MachineProviders =>
  ({ built: ['cpu', 'webgpu', 'cuda'], installed, adapters, adapterError: adapters.length ? null : 'Dawn found no WebGPU adapter', platform: 'linux' });
const O = { version: '0', finchHome: '/h', browserMode: false, hfTokenSet: false, hfTokenStorage: null };

test('appInfo: auto is chooseAuto\'s decision, with the adapter named and its backend', () => {
  const info = appInfo(O, linux([lavapipe, radeon]));
  assert.deepEqual(info.auto, {
    provider: 'webgpu', reason: chooseAuto(linux([lavapipe, radeon])).reason,
    adapter: { name: 'AMD Radeon RX 7900 XTX', backend: 'Vulkan', vendor: 'amd', architecture: 'rdna-3', software: false },
  });
  const cpu = appInfo(O, linux([lavapipe]));
  assert.equal(cpu.auto.provider, 'cpu');
  assert.equal(cpu.auto.adapter, null);
  assert.match(cpu.auto.reason, /software adapter skipped/);
});

test('the provider list: WebGPU names its adapter (or says it is software, or why there is none); CUDA needs its libraries', () => {
  const note = (m: MachineProviders, name: string) => providers(m).find((p) => p.name === name)!;
  assert.deepEqual(note(linux([radeon]), 'webgpu'), { name: 'webgpu', available: true, note: 'AMD Radeon RX 7900 XTX — WebGPU over Vulkan' });
  assert.match(note(linux([lavapipe]), 'webgpu').note, /^only a software adapter \(llvmpipe LLVM 15 0 6 256 bits\): slower than the CPU$/);
  assert.deepEqual(note(linux([]), 'webgpu'), { name: 'webgpu', available: false, note: 'Dawn found no WebGPU adapter' });
  assert.equal(note(linux([]), 'cuda').available, false);
  assert.equal(note(linux([], ['cpu', 'webgpu', 'cuda']), 'cuda').available, true);
  assert.equal(note(linux([]), 'dml').available, false);
});

test('an app run goes where its choice says, else the settings\' default; auto as the doctor decides', () => {
  assert.equal(runProvider('auto', 'auto', linux([radeon])), 'webgpu');
  assert.equal(runProvider('auto', 'auto', linux([lavapipe])), 'cpu');
  assert.equal(runProvider('auto', 'cpu', linux([radeon])), 'cpu');
  assert.equal(runProvider('webgpu', 'cpu', linux([lavapipe])), 'webgpu');
});

test('the services probe once, lazily; a run and its memory verdict go to the Radeon; its job gets the probed machine', { timeout: 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'finch-system-'));
  process.env.FINCH_HOME = home;
  let probes = 0;
  const listAdapters = async (): Promise<AdapterList> => { probes++; return { adapters: [radeon], error: null }; };
  const jobs: TrainPayload[] = [];
  const spawnJob = (kind: string, payload: unknown): JobHandle => {
    if (kind === 'train') jobs.push(payload as TrainPayload);
    return { pid: undefined, send: () => {}, onMessage: () => {}, onExit: () => {}, kill: () => {} };
  };
  // The GPU memory as amdgpu's sysfs reports it (a recorded tree), not this machine's.
  const readGpu = () => readGpuMemory({ platform: 'linux', arch: 'x64', sysfsRoot: new URL('../fixtures/gpu-memory/sysfs-amd', import.meta.url).pathname, nvidiaSmi: async () => null });
  const services = createServices({ listAdapters, spawnJob, readGpuMemory: readGpu });
  try {
    const call = async <T>(name: string, ...args: unknown[]): Promise<T> => {
      const r = await services.dispatcher.dispatch(name, args);
      if (!r.ok) throw new Error(`${name}: ${r.error.message}`);
      return r.value as T;
    };
    const demo = await call<StartDemoResult>('startDemo', { start: false });
    assert.equal(probes, 0, 'nothing asked yet: no probe');
    const info = await call<{ auto: { provider: string; adapter: { name: string } | null } }>('appInfo');
    assert.equal(info.auto.provider, 'webgpu');
    assert.equal(info.auto.adapter?.name, 'AMD Radeon RX 7900 XTX');
    const cfg: RunConfig = { ...demo.config, provider: 'auto', maxSteps: 2, samplePrompts: 0 };
    const estimate = await call<{ provider: string; gpuBytes: number | null; availableGpuBytes: number | null }>('estimateMemory', cfg);
    assert.equal(estimate.provider, 'webgpu');
    assert.equal(estimate.availableGpuBytes, 25753026560 - 1342177280, 'judged against the Radeon\'s free VRAM');
    assert.ok(estimate.gpuBytes !== null && estimate.gpuBytes > 0, 'a GPU estimate for a GPU run');
    const run = await call<RunSummary>('startRun', cfg);
    assert.equal(run.provider, 'webgpu');
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0]!.config.provider, 'webgpu');
    assert.deepEqual(jobs[0]!.machine?.adapters, [radeon]);
    assert.equal(probes, 1, 'one probe for all of it');
  } finally {
    services.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('estimateMemory: a config no machine holds is answered "will-not-fit" at once, from the floor every plan needs', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'finch-estimate-')), 'huge');
  mkdirSync(dir);
  // Every field within Finch's limits; 4096 rows of 131072 tokens would cut the vocabulary into 2^20 pieces.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 2 ** 20, hidden_size: 4096, intermediate_size: 2 ** 18, num_hidden_layers: 8, num_attention_heads: 32, num_key_value_heads: 8 }));
  const c = { ...RUN_DEFAULTS, modelId: 'm', datasetId: 'd', batch: 4096, seqLen: 131_072, quantize: false } as RunConfig;
  const t0 = performance.now();
  const e = await estimateMemory(dir, c, { provider: 'cpu', adapter: null }, { gpus: [], notes: [] });
  const ms = performance.now() - t0;
  assert.equal(e.verdict, 'will-not-fit');
  assert.deepEqual(Object.keys(e.parts), ['inputs (ids, mask)', 'frozen weights (layers)']);
  assert.equal(e.parts['inputs (ids, mask)'], 4096 * 131_072 * 131_072 * 4);
  assert.equal(e.hostBytes, Object.values(e.parts).reduce((a, b) => a + b, 0));
  assert.ok(e.suggestions.length > 0 && e.suggestions.every((s) => s.hostBytes < e.hostBytes));
  assert.ok(ms < 2_000, `answered in ${ms.toFixed(0)} ms`);
  rmSync(dir, { recursive: true });
});

test('the memory verdict of a GPU run: the GPU it runs on, in the dtype the trainer would pick; unknown said as such', async () => {
  const cfg: RunConfig = { ...RUN_DEFAULTS, modelId: 'm', datasetId: 'd', provider: 'auto', quantize: true };
  const host = { free: 16 * 2 ** 30, total: 32 * 2 ** 30 };
  const rtx = parseNvidiaSmi(readFileSync(new URL('../fixtures/gpu-memory/nvidia-smi-one.csv', import.meta.url), 'utf8'));
  const cuda = runDecision('cuda', 'auto', linux([], ['cpu', 'cuda']));
  const onRtx = await estimateMemory(DEMO_MODEL, cfg, cuda, { gpus: rtx, notes: [] }, host);
  assert.equal(onRtx.provider, 'cuda');
  assert.equal(onRtx.verdict, 'fits');
  assert.equal(onRtx.gpuName, 'NVIDIA GeForce RTX 4070');
  assert.equal(onRtx.availableGpuBytes, (12282 - 734) * 2 ** 20);
  assert.equal(onRtx.computeDtype, 'float32', 'auto is float16 only on a shader-f16 WebGPU adapter');
  // The same GPU with all but a little of its memory taken: the GPU side decides.
  const full: GpuMemory = { ...rtx[0]!, usedBytes: rtx[0]!.totalBytes - Math.round(onRtx.gpuBytes! / 2) };
  const tight = await estimateMemory(DEMO_MODEL, cfg, cuda, { gpus: [full], notes: [] }, host);
  assert.equal(tight.verdict, 'will-not-fit');
  assert.ok(tight.hostBytes < 0.7 * host.free, 'the host side alone would fit');
  // No NVIDIA GPU could be read: unknown, with the reason.
  const unknown = await estimateMemory(DEMO_MODEL, cfg, cuda, { gpus: [], notes: ['nvidia-smi did not answer (no NVIDIA driver)'] }, host);
  assert.equal(unknown.verdict, 'unknown');
  assert.equal(unknown.availableGpuBytes, null);
  assert.match(unknown.gpuNote!, /GPU memory unknown: .*nvidia-smi did not answer/);
  // auto on the Radeon (shader-f16): float16, as the trainer would run it: fewer GPU bytes than a float32 request.
  const radeonRun = runDecision('auto', 'auto', linux([radeon]));
  const vram: GpuMemory = { vendor: 'amd', name: 'card0', totalBytes: 24 * 2 ** 30, usedBytes: 0, source: 'sysfs', unified: false };
  const f16 = await estimateMemory(DEMO_MODEL, { ...cfg, computeDtype: 'auto' }, radeonRun, { gpus: [vram], notes: [] }, host);
  const f32 = await estimateMemory(DEMO_MODEL, { ...cfg, computeDtype: 'float32' }, radeonRun, { gpus: [vram], notes: [] }, host);
  assert.equal(f16.computeDtype, 'float16');
  assert.ok(f16.gpuBytes! < f32.gpuBytes!, `float16 ${f16.gpuBytes} < float32 ${f32.gpuBytes}`);
  // Unified memory (Apple): the GPU's and the host's needs come out of the host's free memory together.
  const apple: GpuMemory = { vendor: 'apple', name: 'Apple silicon GPU', totalBytes: host.total, usedBytes: host.total - host.free, source: 'unified', unified: true };
  const coreml = await estimateMemory(DEMO_MODEL, cfg, { provider: 'coreml', adapter: null }, { gpus: [apple], notes: [] }, { free: coreHalf(onRtx), total: host.total });
  assert.equal(coreml.unifiedMemory, true);
  assert.equal(coreml.verdict, 'will-not-fit', 'GPU + host bytes exceed the free memory although each alone fits');
  // A software WebGPU adapter (lavapipe) keeps its buffers in host memory: judged like unified memory, not 'unknown'.
  const soft = await estimateMemory(DEMO_MODEL, cfg, runDecision('webgpu', 'auto', linux([lavapipe])), { gpus: [], notes: [] }, { free: coreHalf(onRtx), total: host.total });
  assert.deepEqual([soft.unifiedMemory, soft.verdict], [true, 'will-not-fit']);
  // The CPU: no GPU side at all.
  const cpu = await estimateMemory(DEMO_MODEL, { ...cfg, provider: 'cpu' }, runDecision('cpu', 'auto', linux([radeon])), { gpus: [vram], notes: [] }, host);
  assert.deepEqual([cpu.gpuBytes, cpu.availableGpuBytes, cpu.gpuNote], [null, null, null]);
});

/** Free memory that holds the GPU part and the host part of a run each, but not both. */
function coreHalf(e: { gpuBytes: number | null; hostBytes: number }): number {
  return Math.max(e.gpuBytes!, e.hostBytes) + Math.min(e.gpuBytes!, e.hostBytes) / 2;
}
