// The shared value lists (src-shared/choices.ts) hold the same values as the back-end modules that
// act on them, so the schema accepts exactly what the trainer can do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPUTE_DTYPE_CHOICES, FORMAT_FIELDS, FORMAT_NAMES, LORA_TARGET_NAMES, PROVIDER_CHOICES, SCHEDULES, TEMPLATE_CHOICES, TRAIN_ON } from '../../src-shared/choices.js';
import { FIELDS, FORMAT_NAMES as DETECTION_ORDER } from '../../src-main/data/formats.js';
import type { TemplateChoice, TrainOn } from '../../src-main/data/template.js';
import { PROVIDER_CHOICES as ENGINE_PROVIDERS } from '../../src-main/engine/runtime/providers.js';
import type { Provider } from '../../src-main/engine/runtime/session.js';
import type { LoraTarget } from '../../src-main/model/lora.js';
import type { ComputeDtypeChoice } from '../../src-main/train/precision.js';
import type { ScheduleName } from '../../src-main/train/schedule.js';

/** true only when A and B are the same union. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameTypes: [
  Same<TrainOn, (typeof TRAIN_ON)[number]>, Same<TemplateChoice, (typeof TEMPLATE_CHOICES)[number]>, Same<ScheduleName, (typeof SCHEDULES)[number]>,
  Same<LoraTarget, (typeof LORA_TARGET_NAMES)[number]>, Same<ComputeDtypeChoice, (typeof COMPUTE_DTYPE_CHOICES)[number]>,
  Same<Provider | 'auto', (typeof PROVIDER_CHOICES)[number]>,
] = [true, true, true, true, true, true];

test('the shared lists hold the values the data, engine and training modules act on', () => {
  assert.ok(sameTypes.every(Boolean));
  const sorted = (xs: readonly string[]) => [...xs].sort();
  assert.deepEqual(sorted(FORMAT_NAMES), sorted(DETECTION_ORDER), 'formats (data/formats.ts keeps its detection order)');
  assert.deepEqual([...FORMAT_FIELDS], [...FIELDS]);
  assert.deepEqual([...PROVIDER_CHOICES], [...ENGINE_PROVIDERS]);
});
