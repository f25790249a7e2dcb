import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, presetConfig } from '../../src-main/bench/train-presets.js';
import { CHAT_WEIGHTS_ENV, chatWeights } from '../../src-main/infer/chat-weights.js';
import { parameterCount } from '../../src-main/model/config.js';

const GiB = 2 ** 30;
const llama8b = presetConfig(PRESETS['llama3-8b']!);
const small = presetConfig(PRESETS.small!);

test('the compare chat holds float32 weights while they take at most 40% of memory, else 4-bit', () => {
  assert.ok(Math.abs(parameterCount(llama8b) - 8.03e9) < 0.01e9, `Llama 3 8B's shape: ${parameterCount(llama8b)} parameters`);
  // 32.1 GB of float32: 4-bit on a 24 GiB and a 64 GiB machine, float32 on 128 GiB.
  assert.equal(chatWeights(llama8b, 24 * GiB, undefined), '4bit');
  assert.equal(chatWeights(llama8b, 64 * GiB, undefined), '4bit');
  assert.equal(chatWeights(llama8b, 128 * GiB, undefined), 'float32');
  // The boundary: exactly 40% is still float32, one byte less memory is not.
  const bytes = 4 * parameterCount(small);
  assert.equal(chatWeights(small, bytes / 0.4, 'auto'), 'float32');
  assert.equal(chatWeights(small, bytes / 0.4 - 1, 'auto'), '4bit');
  assert.equal(chatWeights(small, bytes / 0.4 - 1, ''), '4bit', 'an empty variable is auto');
});

test(`${CHAT_WEIGHTS_ENV} overrides the choice, and anything else is refused by name`, () => {
  assert.equal(chatWeights(llama8b, 24 * GiB, 'float32'), 'float32');
  assert.equal(chatWeights(small, 1024 * GiB, '4bit'), '4bit');
  assert.throws(() => chatWeights(small, 24 * GiB, 'int4'), /FINCH_CHAT_WEIGHTS="int4" is not a choice: use auto, float32 or 4bit/);
});
