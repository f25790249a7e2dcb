// services/system.ts and the app's side of the one provider choice: on a machine whose only GPU is
// an AMD Radeon (no CUDA), the app's 'auto' is WebGPU on it, as `finch doctor` decides, with the
// adapter named; an app run and its memory verdict go there, and the run's job is handed the
// probed machine so it decides alike without a probe of its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunConfig, RunSummary, StartDemoResult } from '../../src-shared/api.js';
import { type AdapterList, type GpuAdapter, type MachineProviders, chooseAuto, isSoftwareAdapter } from '../../src-main/engine/runtime/providers.js';
import { createServices } from '../../src-main/services/index.js';
import type { JobHandle, TrainPayload } from '../../src-main/services/jobs.js';
import { appInfo, providers, runProvider } from '../../src-main/services/system.js';

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
  const services = createServices({ listAdapters, spawnJob });
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
    const estimate = await call<{ provider: string; gpuBytes: number | null }>('estimateMemory', cfg);
    assert.equal(estimate.provider, 'webgpu');
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
