// `finch train` reads --provider / --strict-provider (and the run config keys of the same names).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFrom } from '../../../src-main/cli/run-options.js';

const required = { model: 'm', data: 'd', out: 'o' };

test('provider defaults to auto; webgpu and strict are read; an unknown provider names the choices', () => {
  assert.equal(configFrom(required).provider, 'auto');
  assert.equal(configFrom(required).strictProvider, false);
  const c = configFrom({ ...required, provider: 'webgpu', 'strict-provider': true });
  assert.equal(c.provider, 'webgpu');
  assert.equal(c.strictProvider, true);
  assert.throws(() => configFrom({ ...required, provider: 'rocm' }), /--provider must be one of auto, cpu, webgpu, dml, cuda, coreml, got "rocm"/);
});

test('--compute-dtype defaults to float32, reads float16 and auto, and names the choices otherwise', () => {
  assert.equal(configFrom(required).computeDtype, 'float32');
  assert.equal(configFrom({ ...required, 'compute-dtype': 'float16' }).computeDtype, 'float16');
  assert.equal(configFrom({ ...required, 'compute-dtype': 'auto' }).computeDtype, 'auto');
  assert.throws(() => configFrom({ ...required, 'compute-dtype': 'bf16' }), /--compute-dtype must be one of float32, float16, auto, got "bf16"/);
});
