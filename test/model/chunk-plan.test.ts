// How a training graph cuts its largest activations, at the edges of what a config may declare:
// a vocabulary cut into a million pieces (rows so many that each logits piece is one token wide)
// is planned without overflowing the stack (no Math.max over the pieces).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkPlan } from '../../src-main/model/chunk-plan.js';
import { parseModelConfig } from '../../src-main/model/config.js';

test('a plan of 2^20 vocabulary pieces and a device buffer limit is made, piece by piece', () => {
  const cfg = parseModelConfig({ model_type: 'llama', vocab_size: 2 ** 20, hidden_size: 4096, intermediate_size: 2 ** 14, num_hidden_layers: 2, num_attention_heads: 32, num_key_value_heads: 8 });
  const plan = chunkPlan(cfg, 4096, 131_072, 64, 32 * 2 ** 20, 128 * 2 ** 20);
  assert.equal(plan.vocabSizes.length, 2 ** 20);
  assert.ok(plan.vocabSizes.every((w) => w === 1));
  assert.equal(plan.mlpSizes.reduce((a, b) => a + b, 0), 2 ** 14);
  assert.equal(plan.attentionHeads, 1);
});
