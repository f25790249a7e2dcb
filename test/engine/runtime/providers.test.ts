// `--provider auto` never picks a software WebGPU adapter, prefers a hardware one, and explains itself;
// adapter descriptions are those Dawn reports for each kind of device.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type GpuAdapter, chooseAuto, isSoftwareAdapter, listWebGpuAdapters, parseProviderChoice } from '../../../src-main/engine/runtime/providers.js';

const adapter = (a: Partial<GpuAdapter> & Pick<GpuAdapter, 'vendor' | 'architecture' | 'device' | 'description'>): GpuAdapter => {
  const base = { fallback: false, maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27, shaderF16: true, ...a };
  return { ...base, software: isSoftwareAdapter(base) };
};

// As Dawn 0.6.2 reported it on Mesa 25 (measured here); a fallback adapter.
const lavapipe = adapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', fallback: true });
// SwiftShader does not always set the fallback flag: the name alone must be enough.
const swiftshader = adapter({ vendor: 'google', architecture: '', device: 'swiftshader-device-(subzero)', description: 'SwiftShader Device (Subzero) (0x0000C0DE)' });
const radeon = adapter({ vendor: 'amd', architecture: 'rdna-3', device: '0x744c', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' });
const nvidia = adapter({ vendor: 'nvidia', architecture: 'ada-lovelace', device: '0x2684', description: 'NVIDIA GeForce RTX 4090' });
const linux = { built: ['cpu', 'webgpu', 'cuda'], platform: 'linux' as const, cuda: false };

test('software adapters are recognised by flag, architecture or name; hardware ones are not', () => {
  assert.equal(lavapipe.software, true);
  assert.equal(swiftshader.software, true);
  assert.equal(isSoftwareAdapter({ vendor: 'microsoft', architecture: '', device: '0x8c', description: 'Microsoft Basic Render Driver', fallback: false }), true, 'WARP');
  assert.equal(radeon.software, false);
  assert.equal(nvidia.software, false);
});

test('auto never picks a software adapter: lavapipe or SwiftShader alone give the CPU, with the reason', () => {
  for (const soft of [lavapipe, swiftshader]) {
    const d = chooseAuto({ ...linux, adapters: [soft] });
    assert.equal(d.provider, 'cpu');
    assert.equal(d.adapter, null);
    assert.match(d.reason, /software adapter skipped/);
  }
});

test('auto picks WebGPU on an AMD Radeon or an NVIDIA GPU, even listed after a software adapter', () => {
  for (const hw of [radeon, nvidia]) {
    const d = chooseAuto({ ...linux, adapters: [lavapipe, hw] });
    assert.equal(d.provider, 'webgpu');
    assert.equal(d.adapter, hw);
    assert.match(d.reason, new RegExp(hw.description.split(' ')[0]!));
  }
});

test('without a hardware adapter: DirectML on Windows, CUDA where installed, else the CPU', () => {
  assert.equal(chooseAuto({ built: ['cpu', 'webgpu', 'dml'], platform: 'win32', cuda: false, adapters: [swiftshader] }).provider, 'dml');
  assert.equal(chooseAuto({ ...linux, cuda: true, adapters: [lavapipe] }).provider, 'cuda');
  assert.equal(chooseAuto({ ...linux, adapters: [] }).provider, 'cpu');
  // A hardware adapter without the webgpu provider in the build is no use.
  assert.equal(chooseAuto({ built: ['cpu'], platform: 'linux', cuda: false, adapters: [nvidia] }).provider, 'cpu');
});

test('provider names are validated with the source named', () => {
  assert.equal(parseProviderChoice('webgpu', 'run.yaml'), 'webgpu');
  assert.throws(() => parseProviderChoice('rocm', 'run.yaml'), /run.yaml: provider "rocm" is not one of auto, cpu, webgpu, dml, cuda, coreml/);
});

test('Dawn lists this machine\'s adapter (lavapipe in CI), marked software', async () => {
  const { adapters, error } = await listWebGpuAdapters();
  assert.equal(error, null);
  assert.ok(adapters.length >= 1);
  for (const a of adapters) {
    assert.equal(typeof a.vendor, 'string');
    assert.ok(a.maxStorageBufferBindingSize > 0);
    if (a.description.includes('llvmpipe')) assert.equal(a.software, true);
  }
});
