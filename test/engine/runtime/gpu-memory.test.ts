// Reading the GPUs' memory from recorded system outputs (test/fixtures/gpu-memory), never this
// machine's, and matching a provider decision to the GPU it runs on.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type GpuMemory, type GpuMemoryReading, gpuForRun, parseNvidiaSmi, readGpuMemory, readSysfsGpus } from '../../../src-main/engine/runtime/gpu-memory.js';
import { type GpuAdapter, isSoftwareAdapter } from '../../../src-main/engine/runtime/providers.js';

const FIXTURES = new URL('../../fixtures/gpu-memory/', import.meta.url).pathname;
const fixture = (f: string) => readFileSync(FIXTURES + f, 'utf8');
const MiB = 2 ** 20;
const adapter = (vendor: string, device: string, software = false): GpuAdapter => {
  const a = { vendor, architecture: software ? 'software' : 'x', device, description: '', fallback: software, maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, shaderF16: true };
  return { ...a, software: isSoftwareAdapter(a), backend: 'Vulkan' };
};

test('amdgpu sysfs: VRAM total and used in bytes; connectors and cards without VRAM files are skipped', () => {
  assert.deepEqual(readSysfsGpus(FIXTURES + 'sysfs-amd'), [
    { vendor: 'amd', name: 'card0 (PCI 0x1002:0x744c)', totalBytes: 25753026560, usedBytes: 1342177280, source: 'sysfs', unified: false },
  ]);
  assert.deepEqual(readSysfsGpus(FIXTURES + 'no-such-dir'), []);
});

test('nvidia-smi: MiB per GPU, names with commas kept, an unreadable line named', () => {
  assert.deepEqual(parseNvidiaSmi(fixture('nvidia-smi-one.csv')), [
    { vendor: 'nvidia', name: 'NVIDIA GeForce RTX 4070', totalBytes: 12282 * MiB, usedBytes: 734 * MiB, source: 'nvidia-smi', unified: false },
  ]);
  const two = parseNvidiaSmi(fixture('nvidia-smi-two.csv'));
  assert.deepEqual(two.map((g) => [g.name, g.totalBytes / MiB, g.usedBytes / MiB]), [['NVIDIA GeForce RTX 4090', 24564, 20480], ['NVIDIA RTX A2000, Laptop GPU', 8192, 512]]);
  assert.throws(() => parseNvidiaSmi('0, NVIDIA X, [N/A], [N/A]\n'), /unreadable line "0, NVIDIA X, \[N\/A\], \[N\/A\]"/);
});

test('readGpuMemory: sysfs and nvidia-smi on Linux, unified memory on Apple silicon, and why a source gave nothing', async () => {
  const linux = await readGpuMemory({ platform: 'linux', arch: 'x64', sysfsRoot: FIXTURES + 'sysfs-amd', nvidiaSmi: async () => fixture('nvidia-smi-one.csv') });
  assert.deepEqual(linux.gpus.map((g) => [g.vendor, g.source]), [['amd', 'sysfs'], ['nvidia', 'nvidia-smi']]);
  assert.deepEqual(linux.notes, []);
  const none = await readGpuMemory({ platform: 'linux', arch: 'x64', sysfsRoot: FIXTURES + 'no-such-dir', nvidiaSmi: async () => null });
  assert.deepEqual(none, { gpus: [], notes: ['nvidia-smi did not answer (no NVIDIA driver)'] });
  const mac = await readGpuMemory({ platform: 'darwin', arch: 'arm64', hostTotal: 16 * 2 ** 30, hostFree: 10 * 2 ** 30 });
  assert.deepEqual(mac.gpus, [{ vendor: 'apple', name: 'Apple silicon GPU', totalBytes: 16 * 2 ** 30, usedBytes: 6 * 2 ** 30, source: 'unified', unified: true }]);
});

test('gpuForRun: the provider decision picks the GPU by vendor; several pick the fullest; unknown says why', async () => {
  const reading: GpuMemoryReading = await readGpuMemory({ platform: 'linux', arch: 'x64', sysfsRoot: FIXTURES + 'sysfs-amd', nvidiaSmi: async () => fixture('nvidia-smi-two.csv') });
  assert.equal(gpuForRun({ provider: 'cpu', adapter: null }, reading), null);
  assert.equal(gpuForRun({ provider: 'webgpu', adapter: adapter('amd', 'amd-radeon-rx-7900-xtx-radv-navi31') }, reading)?.gpu?.source, 'sysfs');
  // CUDA: two NVIDIA GPUs; the 4090 has 4 GiB free, the A2000 7.5 GiB: the verdict is judged on the 4090.
  const cuda = gpuForRun({ provider: 'cuda', adapter: null }, reading)!;
  assert.equal(cuda.gpu?.name, 'NVIDIA GeForce RTX 4090');
  assert.match(cuda.note, /the fullest of 2 such GPUs/);
  const intel = gpuForRun({ provider: 'webgpu', adapter: adapter('intel', 'intel-arc-a770') }, reading)!;
  assert.equal(intel.gpu, null);
  assert.match(intel.note, /GPU memory unknown: Intel's drivers publish no GPU memory size/);
  const soft = gpuForRun({ provider: 'webgpu', adapter: adapter('mesa', 'llvmpipe', true) }, reading)!;
  assert.equal(soft.gpu, null);
  assert.match(soft.note, /software WebGPU adapter/);
  // DirectML names no adapter: one GPU read is the one; GPUs of two vendors leave it unknown.
  const one: GpuMemory[] = parseNvidiaSmi(fixture('nvidia-smi-one.csv'));
  assert.equal(gpuForRun({ provider: 'dml', adapter: null }, { gpus: one, notes: [] })?.gpu?.name, 'NVIDIA GeForce RTX 4070');
  assert.match(gpuForRun({ provider: 'dml', adapter: null }, reading)!.note, /dml may run on any of/);
  assert.match(gpuForRun({ provider: 'cuda', adapter: null }, { gpus: [], notes: ['nvidia-smi did not answer (no NVIDIA driver)'] })!.note,
    /GPU memory unknown: .*\(nvidia-smi did not answer \(no NVIDIA driver\)\)/);
});
