import { settle } from './dom.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedApi } from './fake-api.ts';
import type { DatasetPreview, MemoryEstimateResult, RunConfig } from '../../src-shared/api.ts';
import { inputLimits, type SettingPath } from '../../src-shared/run-config.ts';

const { mount, unmount } = await import('svelte');
const { useApi } = await import('../../src-renderer/src/lib/services/finch.ts');
const { wizard } = await import('../../src-renderer/src/lib/stores/wizard.svelte.ts');
const { default: MemoryMeter } = await import('../../src-renderer/src/lib/components/wizard/MemoryMeter.svelte');
const { default: TokenSpans } = await import('../../src-renderer/src/lib/components/wizard/TokenSpans.svelte');
const { default: LengthHistogram } = await import('../../src-renderer/src/lib/components/wizard/LengthHistogram.svelte');
const { default: SettingsStep } = await import('../../src-renderer/src/lib/components/wizard/SettingsStep.svelte');

test('MemoryMeter: a GPU run shows the GPU\'s bar beside the host\'s, and says when the GPU\'s memory is unknown', async () => {
  const gpuRun = (known: boolean): MemoryEstimateResult => ({
    hostBytes: 500e6, parts: { 'frozen weights (layers)': 5e9 }, gpuBytes: 6e9, availableHostBytes: 8e9, totalHostBytes: 16e9,
    availableGpuBytes: known ? 4e9 : null, totalGpuBytes: known ? 12e9 : null, gpuName: known ? 'NVIDIA GeForce RTX 4070' : null,
    gpuNote: known ? 'NVIDIA GeForce RTX 4070, read from nvidia-smi' : 'GPU memory unknown: Intel\'s drivers publish no GPU memory size',
    unifiedMemory: false, computeDtype: 'float16', provider: 'cuda', verdict: known ? 'will-not-fit' : 'unknown', suggestions: [],
  });
  for (const known of [true, false]) {
    const { api } = scriptedApi({ estimateMemory: async () => gpuRun(known) });
    useApi({ api, rpc: null });
    wizard.reset();
    wizard.modelId = 'm';
    wizard.datasetId = 'd';
    await wizard.runEstimate();
    const target = document.createElement('div');
    document.body.append(target);
    const c = mount(MemoryMeter, { target });
    await settle();
    const bars = [...target.querySelectorAll('[role=meter]')].map((b) => b.getAttribute('aria-label'));
    const text = target.textContent ?? '';
    if (known) {
      assert.deepEqual(bars, ['Estimated use of GPU memory free (NVIDIA GeForce RTX 4070)', 'Estimated use of free memory']);
      assert.match(text, /5\.6 GB\s+of 3\.7 GB GPU memory free \(NVIDIA GeForce RTX 4070\)/);
    } else {
      assert.deepEqual(bars, ['Estimated use of free memory'], 'no bar for a GPU of unknown size');
      assert.equal(target.querySelector('[data-testid=memory-verdict]')!.getAttribute('data-verdict'), 'unknown');
      assert.match(target.querySelector('[data-testid=gpu-unknown]')!.textContent ?? '', /5\.6 GB\s+of GPU memory: GPU memory unknown: Intel's drivers/);
    }
    assert.match(text, /computing in float16/);
    unmount(c);
    target.remove();
  }
});

test('MemoryMeter: says "won’t fit" in words, and its suggestion button applies the change', async () => {
  const est = (cfg: RunConfig): MemoryEstimateResult => ({
    hostBytes: cfg.batch * 300e6, parts: { weights: 100e6, activations: cfg.batch * 300e6 - 100e6 }, gpuBytes: null,
    availableHostBytes: 1e9, totalHostBytes: 2e9, availableGpuBytes: null, totalGpuBytes: null, gpuName: null, gpuNote: null, unifiedMemory: false,
    computeDtype: 'float32', provider: 'cpu', verdict: cfg.batch * 300e6 > 1e9 ? 'will-not-fit' : cfg.batch * 300e6 > 0.8e9 ? 'tight' : 'fits',
    suggestions: [{ text: 'Batch size 1 with gradient accumulation 8', change: { batch: 1, gradAccum: 8 }, hostBytes: 300e6, gpuBytes: null }],
  });
  const { api } = scriptedApi({ estimateMemory: async (c) => est(c) });
  useApi({ api, rpc: null });
  wizard.reset();
  wizard.modelId = 'm';
  wizard.datasetId = 'd';
  wizard.knobs.batch = 8;
  await wizard.runEstimate();
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(MemoryMeter, { target });
  await settle();
  const verdict = target.querySelector('[data-testid=memory-verdict]')!;
  assert.equal(verdict.getAttribute('data-verdict'), 'will-not-fit');
  assert.match(verdict.textContent ?? '', /Won’t fit/);
  assert.match(target.textContent ?? '', /2\.2 GB\s+of 954 MB/);
  const button = [...target.querySelectorAll('button')].find((b) => /Batch size 1/.test(b.textContent ?? ''))!;
  (button as unknown as HTMLButtonElement).click();
  assert.equal(wizard.knobs.batch, 1);
  assert.equal(wizard.knobs.gradAccum, 8);
  await new Promise((r) => setTimeout(r, 350));
  await settle();
  assert.equal(target.querySelector('[data-testid=memory-verdict]')!.getAttribute('data-verdict'), 'fits');
  unmount(c);
  target.remove();
});

test('TokenSpans marks trained and ignored text, with words for screen readers', async () => {
  const target = document.createElement('div');
  const c = mount(TokenSpans, { target, props: { spans: [
    { text: '<|user|>What is 2+2?', trained: false, truncated: false },
    { text: '4', trained: true, truncated: false },
    { text: ' extra', trained: true, truncated: true },
  ] } });
  await settle();
  const pre = target.querySelector('pre')!;
  assert.equal(pre.querySelectorAll('span.trained').length, 2);
  assert.equal(pre.querySelectorAll('span.ignored').length, 1);
  assert.equal(pre.querySelectorAll('span.truncated').length, 1);
  assert.match(pre.textContent ?? '', /\[ignored\] <\|user\|>What is 2\+2\?\[trained\] 4/);
  unmount(c);
});

test('LengthHistogram: one bar per bin, bins past the sequence length flagged, rows to be cut counted', async () => {
  const lengths: NonNullable<DatasetPreview['lengths']> = {
    rows: 10, badRows: 0, min: 10, mean: 60, p50: 50, p95: 140, max: 150, overSeqLen: 3,
    histogram: [{ from: 0, to: 50, count: 4 }, { from: 50, to: 100, count: 3 }, { from: 100, to: 150, count: 3 }],
  };
  const target = document.createElement('div');
  const c = mount(LengthHistogram, { target, props: { lengths, seqLen: 100 } });
  await settle();
  const bars = target.querySelectorAll('.bar');
  assert.equal(bars.length, 3);
  assert.equal(target.querySelectorAll('.bar.over').length, 1);
  assert.equal((bars[0] as unknown as HTMLElement).style.height, '100%');
  assert.match(target.textContent ?? '', /3 rows are longer than the sequence length 100/);
  unmount(c);
});

test('SettingsStep: each number input carries its setting\'s range from the run-configuration schema', async () => {
  const { api } = scriptedApi({ estimateMemory: async () => { throw new Error('not needed'); } });
  useApi({ api, rpc: null });
  wizard.reset();
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(SettingsStep, { target });
  await settle();
  const cases: [string, SettingPath][] = [['k-rank', 'lora.rank'], ['k-alpha', 'lora.alpha'], ['k-dropout', 'lora.dropout'], ['k-lr', 'lr'], ['k-warmup', 'warmupSteps'],
    ['k-epochs', 'epochs'], ['k-steps', 'maxSteps'], ['k-batch', 'batch'], ['k-accum', 'gradAccum'], ['k-seq', 'seqLen'], ['k-eval', 'evalEvery']];
  for (const [id, path] of cases) {
    const input = target.querySelector(`#${id}`)!;
    const limits = inputLimits(path);
    assert.equal(input.getAttribute('min'), String(limits.min), `${id} min`);
    assert.equal(input.getAttribute('max'), limits.max === undefined ? null : String(limits.max), `${id} max`);
    assert.equal(input.getAttribute('step'), String(limits.step), `${id} step`);
  }
  assert.equal(target.querySelector('#k-lr')!.getAttribute('max'), '1');
  unmount(c);
  target.remove();
});

test('ModelStep names each model\'s family; SettingsStep says how Phi-3\'s fused projections take their targets', async () => {
  const model = (id: string, modelType: string) => ({
    id, name: id, path: `/m/${id}`, source: 'local' as const, repo: null, revision: null, modelType, parameters: 1e9, sizeBytes: 2e9, dtype: 'bfloat16', hasChatTemplate: true, addedAt: '',
  });
  const models = [model('q', 'qwen3'), model('g', 'gemma3_text'), model('p', 'phi3'), model('l', 'llama')];
  const { api } = scriptedApi({ listModels: async () => models, estimateMemory: async () => { throw new Error('not needed'); } });
  useApi({ api, rpc: null });
  const { library } = await import('../../src-renderer/src/lib/stores/library.svelte.ts');
  const { default: ModelStep } = await import('../../src-renderer/src/lib/components/wizard/ModelStep.svelte');
  await library.refresh('models');
  wizard.reset();
  const target = document.createElement('div');
  document.body.append(target);
  const step = mount(ModelStep, { target });
  await settle();
  const families = [...target.querySelectorAll('[data-testid=model-family]')].map((e) => (e.textContent ?? '').split(' · ')[0]);
  assert.deepEqual(families, ['Qwen3', 'Gemma 3', 'Phi-3', 'Llama']);
  unmount(step);
  for (const [id, note] of [['p', true], ['g', false]] as const) {
    wizard.modelId = id;
    const settings = mount(SettingsStep, { target });
    await settle();
    assert.equal(!!target.querySelector('[data-testid=fused-targets]'), note, `model ${id}`);
    unmount(settings);
  }
  target.remove();
});

test('SettingsStep: the method follows the data (preference pairs: DPO, SFT off), shows its settings with the schema\'s limits, and can continue an adapter of this model', async () => {
  const preview = (name: 'preference' | 'completion'): DatasetPreview => ({
    file: '/d.jsonl', fileKind: 'jsonl', columns: ['prompt', 'chosen', 'rejected'], format: { name, columns: {}, mapped: false }, formatError: null, suggestedMap: null,
    template: 'model', notes: [], rows: [], sample: null, lengths: null, badRows: [],
  });
  let next = preview('preference');
  const { api } = scriptedApi({ estimateMemory: async () => { throw new Error('not needed'); }, previewDataset: async () => next });
  useApi({ api, rpc: null });
  const { library } = await import('../../src-renderer/src/lib/stores/library.svelte.ts');
  library.adapters = [
    { id: 'a1', name: 'sft run', path: '/runs/sft/adapter', baseModelId: 'm', origin: 'run', runId: 'r1', rank: 8, alpha: 16, targets: ['q_proj'], addedAt: '' },
    { id: 'a2', name: 'other model', path: '/runs/x/adapter', baseModelId: 'other', origin: 'run', runId: 'r2', rank: 8, alpha: 16, targets: ['q_proj'], addedAt: '' },
  ];
  wizard.reset();
  wizard.chooseModel('m');
  wizard.chooseDataset('d');
  await settle();
  await wizard.loadPreview();
  assert.equal(wizard.knobs.method, 'dpo', 'a preference dataset picks DPO');

  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(SettingsStep, { target });
  await settle();
  const radio = (id: string) => target.querySelector(`input[name=method][value=${id}]`) as unknown as HTMLInputElement;
  assert.equal(radio('sft').disabled, true);
  assert.equal(radio('dpo').checked, true);
  assert.equal(radio('orpo').disabled, false);
  for (const [id, path] of [['k-beta', 'beta'], ['k-smoothing', 'labelSmoothing']] as [string, SettingPath][]) {
    assert.equal(target.querySelector(`#${id}`)!.getAttribute('min'), String(inputLimits(path).min), id);
    assert.equal(target.querySelector(`#${id}`)!.getAttribute('max'), String(inputLimits(path).max), id);
  }
  radio('orpo').click();
  await settle();
  assert.equal(wizard.knobs.method, 'orpo');
  assert.equal(target.querySelector('#k-beta'), null);
  assert.ok(target.querySelector('#k-orpo-lambda'));
  // Only this model's adapters are offered; choosing one sets initAdapter to its folder.
  const select = target.querySelector('#k-init-adapter') as unknown as HTMLSelectElement;
  assert.deepEqual([...select.options].map((o) => o.value), ['', '/runs/sft/adapter']);
  select.value = '/runs/sft/adapter';
  select.dispatchEvent(new Event('change', { bubbles: true }));
  assert.equal(wizard.knobs.initAdapter, '/runs/sft/adapter');

  // Data with single answers turns the method back to SFT.
  next = preview('completion');
  await wizard.loadPreview();
  assert.equal(wizard.knobs.method, 'sft');
  unmount(c);
  target.remove();
  library.adapters = [];
});
