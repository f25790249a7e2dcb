// The one provider choice (`auto`): never a software WebGPU adapter, a hardware one first, then
// DirectML, CUDA, the CPU, always with the reason; adapters named for people; and the probe that
// lists them. Adapter descriptions are as Dawn's Node binding (webgpu 0.6.2) reports them: vendor,
// architecture and device as normalized identifiers (the device is the driver's device name,
// lower case with dashes), description the driver ("<driver name>: <driver info>" on Vulkan).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DawnAdapter, type GpuAdapter, type MachineProviders, PROVIDER_CHOICES, adapterLabel, adapterListFrom, adapterName, chooseAuto, decideProvider,
  isSoftwareAdapter, listWebGpuAdapters, parseProviderChoice, probeCommand, resolveProvider, usableGpuProviders, useMachineProviders, webGpuBackend,
} from '../../../src-main/engine/runtime/providers.js';
import { PROVIDERS } from '../../../src-main/engine/runtime/session.js';

const adapter = (a: Partial<GpuAdapter> & Pick<DawnAdapter, 'vendor' | 'architecture' | 'device' | 'description'>): GpuAdapter => {
  const base = { fallback: false, maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27, shaderF16: true, backend: 'Vulkan' as const, ...a };
  return { ...base, software: isSoftwareAdapter(base) };
};

// Measured here: Dawn on Mesa 25's lavapipe; a fallback adapter.
const lavapipe = adapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', fallback: true });
// SwiftShader's Vulkan device; its fallback flag cannot be relied on, so the name alone must be enough.
const swiftshader = adapter({ vendor: 'google', architecture: 'swiftshader', device: 'swiftshader-device-subzero', description: 'SwiftShader driver 5.0.0' });
// WARP, Windows' CPU implementation of D3D12 ("Microsoft Basic Render Driver").
const warp = adapter({ vendor: 'microsoft', architecture: '', device: 'microsoft-basic-render-driver', description: 'D3D12 driver version 10.0.22621.3672', backend: 'D3D12', fallback: true });
const radeon = adapter({ vendor: 'amd', architecture: 'rdna-3', device: 'amd-radeon-rx-7900-xtx-radv-navi31', description: 'radv: Mesa 24.2.8-1~bpo12+1' });
const nvidia = adapter({ vendor: 'nvidia', architecture: 'lovelace', device: 'nvidia-geforce-rtx-4090', description: 'NVIDIA: 550.54.14' });
const arc = adapter({ vendor: 'intel', architecture: 'gen-12hp', device: 'intel-r-arc-tm-a770-graphics-dg2', description: 'Intel open-source Mesa driver: Mesa 24.2.8' });
// Apple silicon under Metal: no PCI ids, so Dawn names the architecture by the Metal 3 GPU family
// (the same for M1 to M4) and the device by its Metal name ("Apple M2 Max").
const apple = adapter({ vendor: 'apple', architecture: 'metal-3', device: 'apple-m2-max', description: 'Metal driver on macOS Version 14.5 (Build 23F79)', backend: 'Metal' });

const machine = (m: Partial<MachineProviders> & Pick<MachineProviders, 'adapters'>): MachineProviders =>
  ({ built: ['cpu', 'webgpu', 'cuda'], installed: ['cpu', 'webgpu'], adapterError: null, platform: 'linux', ...m });

test('the engine owns its provider list; every one of them is a --provider choice, with auto', () => {
  assert.deepEqual(PROVIDER_CHOICES, ['auto', ...PROVIDERS]);
});

test('software adapters are recognised by flag, architecture or name (Dawn\'s identifiers or plain names); hardware ones are not', () => {
  for (const soft of [lavapipe, swiftshader, warp]) assert.equal(soft.software, true, soft.device);
  assert.equal(isSoftwareAdapter({ ...warp, fallback: false }), true, 'WARP by its name alone');
  assert.equal(isSoftwareAdapter({ vendor: 'microsoft', architecture: '', device: 'Microsoft Basic Render Driver', description: '', fallback: false }), true);
  for (const hw of [radeon, nvidia, arc, apple]) assert.equal(hw.software, false, hw.device);
});

test('adapters are named for people: makers\' spellings, no trademark marks, the backend of the system', () => {
  assert.equal(adapterName(radeon), 'AMD Radeon RX 7900 XTX', 'Mesa\'s driver tag "(RADV NAVI31)" left out');
  assert.equal(adapterName(lavapipe), 'llvmpipe LLVM 15 0 6 256 bits');
  assert.equal(adapterName(nvidia), 'NVIDIA GeForce RTX 4090');
  assert.equal(adapterName(arc), 'Intel Arc A770 Graphics DG2');
  assert.equal(adapterName(apple), 'Apple M2 Max');
  assert.equal(adapterName({ ...apple, device: '' }), 'Apple metal-3', 'no device name: vendor and architecture');
  assert.equal(adapterName({ ...nvidia, device: 'NVIDIA GeForce RTX 4090' }), 'NVIDIA GeForce RTX 4090', 'a plain name is kept');
  assert.equal(adapterLabel(radeon), 'AMD Radeon RX 7900 XTX — WebGPU over Vulkan');
  assert.equal(adapterLabel(apple), 'Apple M2 Max — WebGPU over Metal');
  assert.deepEqual([webGpuBackend('linux'), webGpuBackend('win32'), webGpuBackend('darwin')], ['Vulkan', 'D3D12', 'Metal']);
});

test('auto never picks a software adapter: lavapipe, SwiftShader or WARP alone give the CPU, with the reason', () => {
  for (const soft of [lavapipe, swiftshader, warp]) {
    const d = chooseAuto(machine({ adapters: [soft] }));
    assert.equal(d.provider, 'cpu');
    assert.equal(d.adapter, null);
    assert.match(d.reason, new RegExp(`software adapter skipped: ${adapterName(soft)}`));
  }
  const none = chooseAuto(machine({ adapters: [], adapterError: 'Dawn found no WebGPU adapter (no Vulkan driver it accepts)' }));
  assert.equal(none.reason, 'the CPU: no GPU provider is usable here (no WebGPU adapter: Dawn found no WebGPU adapter (no Vulkan driver it accepts))');
});

test('auto picks WebGPU on an AMD, NVIDIA, Intel or Apple GPU, even listed after a software adapter, and names it', () => {
  for (const hw of [radeon, nvidia, arc, apple]) {
    const d = chooseAuto(machine({ adapters: [lavapipe, hw] }));
    assert.equal(d.provider, 'webgpu');
    assert.equal(d.adapter, hw);
    assert.equal(d.reason, `WebGPU on ${adapterName(hw)} over ${hw.backend}: a hardware GPU adapter, auto's first choice`);
  }
});

test('without a hardware adapter: DirectML on Windows, CUDA where its libraries are installed, else the CPU', () => {
  const windows = machine({ built: ['cpu', 'webgpu', 'dml'], installed: ['cpu', 'webgpu', 'dml'], platform: 'win32', adapters: [warp] });
  assert.equal(chooseAuto(windows).provider, 'dml');
  assert.match(chooseAuto(windows).reason, /^DirectML: no hardware WebGPU adapter \(software adapter skipped: Microsoft Basic Render Driver\)/);
  assert.equal(chooseAuto(machine({ installed: ['cpu', 'webgpu', 'cuda'], adapters: [lavapipe] })).provider, 'cuda');
  assert.equal(chooseAuto(machine({ adapters: [lavapipe] })).provider, 'cpu', 'CUDA built but its libraries not downloaded');
  // A hardware adapter without the webgpu provider in the build is no use.
  assert.equal(chooseAuto(machine({ built: ['cpu'], installed: ['cpu'], adapters: [nvidia] })).provider, 'cpu');
  // A hardware WebGPU adapter comes before DirectML and CUDA.
  const all = machine({ installed: ['cpu', 'webgpu', 'dml', 'cuda'], adapters: [nvidia] });
  assert.deepEqual(usableGpuProviders(all).map((u) => u.provider), ['webgpu', 'dml', 'cuda']);
  assert.equal(chooseAuto(all).provider, 'webgpu');
});

test('an explicit provider: what the machine lacks is an error naming what it has; webgpu takes the hardware adapter, else says it is software', () => {
  const m = machine({ adapters: [lavapipe, radeon] });
  assert.deepEqual(decideProvider('webgpu', m), { provider: 'webgpu', adapter: radeon, reason: 'WebGPU (requested) on AMD Radeon RX 7900 XTX over Vulkan' });
  assert.match(decideProvider('webgpu', machine({ adapters: [lavapipe] })).reason, /a software adapter: slower than --provider cpu/);
  assert.throws(() => decideProvider('webgpu', machine({ adapters: [], adapterError: 'no driver' })), /--provider webgpu: no driver/);
  assert.throws(() => decideProvider('cuda', m), /--provider cuda: ONNX Runtime's CUDA provider libraries are not installed/);
  assert.throws(() => decideProvider('dml', m), /--provider dml: this onnxruntime-node build has no dml execution provider \(it has cpu, webgpu, cuda\)/);
  assert.equal(decideProvider('cpu', m).provider, 'cpu');
});

test('a process handed a machine (a job, by its app) decides from it without probing', async () => {
  useMachineProviders(machine({ adapters: [lavapipe, radeon] }));
  assert.equal((await resolveProvider('auto')).adapter, radeon);
  assert.equal((await resolveProvider('webgpu')).adapter, radeon);
});

test('provider names are validated with the source named', () => {
  assert.equal(parseProviderChoice('webgpu', 'run.yaml'), 'webgpu');
  assert.throws(() => parseProviderChoice('rocm', 'run.yaml'), /run.yaml: provider "rocm" is not one of auto, cpu, webgpu, dml, cuda, coreml/);
});

test('the probe\'s answer: one entry per adapter (both power preferences may name the same), judged, with the system\'s backend', () => {
  const raw = (a: GpuAdapter): DawnAdapter => ({ vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description, fallback: a.fallback,
    maxBufferSize: a.maxBufferSize, maxStorageBufferBindingSize: a.maxStorageBufferBindingSize, shaderF16: a.shaderF16 });
  const list = adapterListFrom({ adapters: [raw(apple), raw(apple)] }, 'darwin');
  assert.deepEqual(list, { adapters: [apple], error: null });
  assert.deepEqual(adapterListFrom({ adapters: [] }, 'linux'), { adapters: [], error: 'Dawn found no WebGPU adapter (no Vulkan driver it accepts)' });
  assert.deepEqual(adapterListFrom({ error: 'the `webgpu` package (Dawn\'s Node binding) is not installed' }, 'linux').adapters, []);
});

test('a Node process runs the probe as this Node binary on adapter-probe.ts; it lists this machine\'s adapter (lavapipe in CI), marked software', async () => {
  const { file, args } = probeCommand();
  assert.equal(file, process.execPath);
  assert.match(args.at(-1)!, /engine\/runtime\/adapter-probe\.ts$/);
  const { adapters, error } = await listWebGpuAdapters();
  assert.equal(error, null);
  assert.ok(adapters.length >= 1);
  for (const a of adapters) {
    assert.equal(typeof a.vendor, 'string');
    assert.ok(a.maxStorageBufferBindingSize > 0);
    assert.equal(a.backend, webGpuBackend(process.platform));
    if (a.device.includes('llvmpipe')) assert.equal(a.software, true);
  }
});
