// `bench train`'s host<->device bytes per step on WebGPU (lavapipe in CI): with the LoRA state kept
// on the device only the batch, the lr and step scalars and the loss and gradient norm cross; fed
// from the host (--host-state), the parameters and both moments go up and come back every step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFinchStep } from '../../src-main/bench/train.js';
import { PRESETS, presetConfig } from '../../src-main/bench/train-presets.js';
import { benchEnv } from '../../src-main/bench/timing.js';
import { LORA_TARGETS, loraParams } from '../../src-main/model/lora.js';

test('bench train on WebGPU: the state kept on the device leaves only batch, scalars and loss to cross per step', { timeout: 600_000 }, async () => {
  const p = PRESETS.tiny!;
  const B = p.batch, T = p.seq;
  // input_ids, position_ids (int64), attn_bias [B,1,T,T], targets (int32); lr, step up; loss, grad_norm down.
  const batchBytes = B * T * 8 * 2 + B * T * T * 4 + B * T * 4;
  const scalarBytes = 4 * 4;
  const params = loraParams(presetConfig(p), { rank: p.rank, alpha: p.alpha, dropout: 0, rslora: false, targets: LORA_TARGETS });
  const stateBytes = 3 * params.reduce((s, q) => s + q.shape.reduce((a, d) => a * d, 1) * 4, 0); // parameter, m, v
  const measure = (hostState: boolean) =>
    runFinchStep(p, { threads: 1, steps: 2, quantize: false, provider: 'webgpu', strict: true, hostState }, benchEnv(1));
  const kept = await measure(false);
  const fed = await measure(true);
  assert.equal(kept.state_on_device, true);
  assert.equal(fed.state_on_device, false);
  assert.equal(kept.host_device_bytes_per_step, batchBytes + scalarBytes);
  // Fed from the host, the state crosses twice per step (in, and updated back out).
  assert.equal(fed.host_device_bytes_per_step, batchBytes + scalarBytes + 2 * stateBytes);
  assert.ok(Number.isFinite(kept.loss) && Math.abs(kept.loss - fed.loss) <= 1e-6 * Math.abs(fed.loss), `loss ${kept.loss} kept vs ${fed.loss} fed`);
  console.log(`tiny preset on WebGPU: ${kept.host_device_bytes_per_step} B/step kept on the device, ${fed.host_device_bytes_per_step} B/step fed from the host`);
});
