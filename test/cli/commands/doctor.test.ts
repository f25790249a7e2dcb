// `finch doctor --json`: one object with the documented keys.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

test('finch doctor --json prints providers, adapters (vendor, name, backend, software) and the auto choice with its adapter', () => {
  const out = execFileSync(process.execPath, ['bin/finch.mjs', 'doctor', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const r = JSON.parse(out) as { providers: string[]; adapters: { vendor: string; name: string; backend: string; software: boolean }[]; auto: string; auto_reason: string; auto_adapter: string | null; ram_mb: number };
  assert.ok(r.providers.includes('cpu'));
  assert.ok(Array.isArray(r.adapters));
  for (const a of r.adapters) {
    assert.equal(typeof a.vendor, 'string');
    assert.equal(typeof a.name, 'string');
    assert.equal(typeof a.software, 'boolean');
    assert.ok(['Vulkan', 'D3D12', 'Metal'].includes(a.backend));
  }
  assert.ok(['cpu', 'webgpu', 'dml', 'cuda', 'coreml'].includes(r.auto));
  // auto never lands on a software adapter: where every adapter is software (CI: lavapipe), it is not webgpu.
  if (r.adapters.every((a) => a.software)) assert.notEqual(r.auto, 'webgpu');
  // The adapter is named exactly when auto picks WebGPU.
  assert.equal(r.auto_adapter === null, r.auto !== 'webgpu');
  assert.ok(r.auto_reason.length > 0 && r.ram_mb > 0);
});
