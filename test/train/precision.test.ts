// The frozen path's dtype and the device's weight limit for a chosen provider (train/precision.ts),
// on described adapters and on this machine's own (lavapipe in CI: shader-f16, 128 MiB bindings).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type GpuAdapter, WEBGPU_DEFAULT_BINDING_BYTES, listWebGpuAdapters } from '../../src-main/engine/runtime/providers.js';
import { maxWeightBytes, resolveComputeDtype } from '../../src-main/train/precision.js';
import { INSTALL_HINT } from '../helpers/webgpu.js';

const adapter = (o: Partial<GpuAdapter>): GpuAdapter => ({
  vendor: 'amd', architecture: 'rdna-3', device: 'amd-radeon-rx-7900-xtx', description: 'radv: Mesa 24.2.8', software: false, fallback: false, backend: 'Vulkan',
  maxBufferSize: 4 * 2 ** 30, maxStorageBufferBindingSize: 2 ** 31, shaderF16: true, ...o,
});
const lavapipe = adapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits', description: 'llvmpipe: Mesa 25.0.7', software: true, fallback: true, maxStorageBufferBindingSize: 128 * 2 ** 20 });

test('float16 is refused where the provider or adapter has no float16 kernels, with what to do', () => {
  assert.throws(() => resolveComputeDtype('float16', { provider: 'cpu', adapter: null }), /cpu provider has no float16 kernels.*--provider webgpu, cuda or dml.*--compute-dtype float32/);
  assert.throws(() => resolveComputeDtype('float16', { provider: 'coreml', adapter: null }), /coreml provider has no float16 kernels/);
  assert.throws(() => resolveComputeDtype('float16', { provider: 'webgpu', adapter: adapter({ shaderF16: false }) }), /Radeon RX 7900 XTX has no shader-f16 feature/);
  assert.throws(() => resolveComputeDtype('float16', { provider: 'webgpu', adapter: null }), /shader-f16 cannot be confirmed/);
  assert.equal(resolveComputeDtype('float16', { provider: 'webgpu', adapter: lavapipe }).dtype, 'float16'); // asked for: allowed on a software adapter
  assert.equal(resolveComputeDtype('float16', { provider: 'cuda', adapter: null }).dtype, 'float16');
  assert.equal(resolveComputeDtype('float32', { provider: 'cpu', adapter: null }).dtype, 'float32');
});

test('auto picks float16 only on a hardware WebGPU adapter with shader-f16', () => {
  assert.equal(resolveComputeDtype('auto', { provider: 'webgpu', adapter: adapter({}) }).dtype, 'float16');
  assert.equal(resolveComputeDtype('auto', { provider: 'webgpu', adapter: adapter({ shaderF16: false }) }).dtype, 'float32');
  const soft = resolveComputeDtype('auto', { provider: 'webgpu', adapter: lavapipe });
  assert.equal(soft.dtype, 'float32');
  assert.match(soft.reason, /software/);
  for (const provider of ['cpu', 'cuda', 'dml'] as const) assert.equal(resolveComputeDtype('auto', { provider, adapter: null }).dtype, 'float32');
});

test('the weight limit is the smaller of the adapter\'s binding and buffer limits on WebGPU, none elsewhere', () => {
  assert.equal(maxWeightBytes({ provider: 'webgpu', adapter: adapter({}) }), 2 ** 31);
  assert.equal(maxWeightBytes({ provider: 'webgpu', adapter: adapter({ maxBufferSize: 2 ** 30 }) }), 2 ** 30);
  assert.equal(maxWeightBytes({ provider: 'webgpu', adapter: null }), WEBGPU_DEFAULT_BINDING_BYTES);
  assert.equal(maxWeightBytes({ provider: 'cpu', adapter: null }), Infinity);
  assert.equal(maxWeightBytes({ provider: 'cuda', adapter: null }), Infinity);
});

test('this machine\'s WebGPU adapter: float16 allowed where it offers shader-f16, and its binding limit is the weight limit', async () => {
  const { adapters, error } = await listWebGpuAdapters();
  assert.ok(adapters.length > 0, `${error}\n${INSTALL_HINT}`);
  const a = adapters[0]!;
  console.log(`${a.vendor} ${a.device}: shader-f16 ${a.shaderF16}, maxStorageBufferBindingSize ${a.maxStorageBufferBindingSize}, maxBufferSize ${a.maxBufferSize}`);
  if (a.shaderF16) assert.equal(resolveComputeDtype('float16', { provider: 'webgpu', adapter: a }).dtype, 'float16');
  else assert.throws(() => resolveComputeDtype('float16', { provider: 'webgpu', adapter: a }), /shader-f16/);
  assert.equal(maxWeightBytes({ provider: 'webgpu', adapter: a }), Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize));
});
