import { settle } from './dom.ts';
// The renderer off the happy path, with a scripted API: settings refused under their fields (the
// run-configuration schema's rules) and the wizard held back until they are fixed; a dataset that
// needs a mapping holds the wizard too; the demo's result while it is computed and once it is in;
// the library keeping a model added while the machine is still probed; the Settings screen saying
// how the Hugging Face token is kept, and never holding on to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Component } from 'svelte';
import { scriptedApi } from './fake-api.ts';
import { demoBatchId, runTrainEvent, type AppInfo, type DatasetPreview, type DemoResult, type ModelSummary, type RunSummary, type Settings, type SettingsView } from '../../src-shared/api.ts';

const { mount, unmount } = await import('svelte');
const { useApi } = await import('../../src-renderer/src/lib/services/finch.ts');
const { wizard, settingProblems } = await import('../../src-renderer/src/lib/stores/wizard.svelte.ts');
const { demo } = await import('../../src-renderer/src/lib/stores/demo.svelte.ts');
const { library } = await import('../../src-renderer/src/lib/stores/library.svelte.ts');
const { default: SettingsStep } = await import('../../src-renderer/src/lib/components/wizard/SettingsStep.svelte');
const { default: DemoResults } = await import('../../src-renderer/src/lib/components/run/DemoResults.svelte');
const { default: SettingsScreen } = await import('../../src-renderer/src/lib/components/settings/Settings.svelte');

/** Mounts `component` in a fresh element of the page; `done` unmounts and removes it. */
function mountIn<P extends Record<string, any>>(component: Component<P>, props: P): { target: HTMLElement; done: () => void } {
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(component, { target, props });
  return { target, done: () => { void unmount(c); target.remove(); } };
}

const input = (root: HTMLElement, id: string) => root.querySelector(`#${id}`) as HTMLInputElement;
async function type(root: HTMLElement, id: string, value: string): Promise<void> {
  const el = input(root, id);
  el.value = value;
  el.dispatchEvent(new Event('change', { bubbles: true }));
  await settle();
}

test('settingProblems: the schema\'s own words for each refused setting, none for valid ones', () => {
  assert.deepEqual(settingProblems({ ...wizard.knobs, lora: { ...wizard.knobs.lora, rank: 0 }, lr: 5 }), {
    'lora.rank': 'must be an integer from 1 to 1024',
    lr: 'must be a number > 0 and <= 1',
  });
  wizard.reset();
  assert.deepEqual(settingProblems(wizard.knobs), {});
});

test('SettingsStep: rank 0 and learning rate 5 are refused under their fields, and Review waits until they are fixed', async () => {
  const { api } = scriptedApi({ estimateMemory: async () => { throw new Error('not asked while the settings are refused'); } });
  useApi({ api, rpc: null });
  wizard.reset();
  wizard.modelId = 'm';
  wizard.datasetId = 'd';
  wizard.preview = { format: { name: 'completion', columns: { prompt: 'q', completion: 'a' }, mapped: true } } as DatasetPreview;
  assert.equal(wizard.canOpen('review'), true);
  const { target, done } = mountIn(SettingsStep, {});
  await settle();
  await type(target, 'k-rank', '0');
  await type(target, 'k-lr', '5');
  assert.equal(input(target, 'k-rank').getAttribute('aria-invalid'), 'true');
  assert.equal(input(target, 'k-rank').getAttribute('aria-describedby'), 'k-rank-problem');
  assert.equal(target.querySelector('#k-rank-problem')?.textContent, 'Must be an integer from 1 to 1024.');
  assert.equal(target.querySelector('#k-lr-problem')?.textContent, 'Must be a number > 0 and <= 1.');
  assert.equal(input(target, 'k-alpha').getAttribute('aria-invalid'), null);
  assert.equal(wizard.valid, false);
  assert.equal(wizard.canOpen('review'), false);
  assert.equal(await wizard.start(), null, 'Start refuses too');

  await type(target, 'k-rank', '8');
  await type(target, 'k-lr', '0.001');
  assert.equal(target.querySelectorAll('[data-testid=setting-problem]').length, 0);
  assert.equal(wizard.canOpen('review'), true);
  done();
});

test('a dataset that needs a mapping holds the wizard at the dataset step', () => {
  wizard.reset();
  wizard.modelId = 'm';
  wizard.datasetId = 'd';
  wizard.preview = { format: null, formatError: 'cannot tell the dataset format from its columns (columns found: query, response)' } as DatasetPreview;
  assert.equal(wizard.canOpen('dataset'), true);
  assert.equal(wizard.canOpen('settings'), false);
  wizard.preview = { format: { name: 'completion', columns: { prompt: 'query', completion: 'response' }, mapped: true } } as DatasetPreview;
  assert.equal(wizard.canOpen('settings'), true);
  wizard.reset();
});

test('DemoResults: the comparison\'s progress from its batch events, then base and tuned accuracy and the answers side by side', async () => {
  const { api, emit } = scriptedApi({});
  useApi({ api, rpc: null });
  library.runs = [{ id: 'demo-run', kind: 'demo' } as RunSummary];
  emit({ type: 'batch-progress', batchId: demoBatchId('demo-run'), done: 120, total: 400 });
  emit({ type: 'batch-progress', batchId: 'someone-elses-batch', done: 1, total: 2 });
  assert.deepEqual(demo.progress, { 'demo-run': { done: 120, total: 400 } });

  const waiting = mountIn(DemoResults, { result: null, progress: demo.progress['demo-run'] });
  await settle();
  assert.match(waiting.target.textContent ?? '', /Asking the base and the tuned model the held-out problems…\s*120 of 400 answers/);
  assert.equal(waiting.target.querySelector('progress')?.getAttribute('value'), '120');
  waiting.done();

  const rows = Array.from({ length: 6 }, (_, i) => ({ prompt: `What is ${i} + 1?`, reference: String(i + 1), base: 'seven', tuned: String(i + 1), baseCorrect: false, tunedCorrect: true }));
  const result: DemoResult = { baseAccuracy: 0.05, tunedAccuracy: 0.815, rows };
  const shown = mountIn(DemoResults, { result });
  await settle();
  const t = shown.target;
  assert.equal(t.querySelector('[data-testid=demo-base-accuracy]')?.textContent, '5%');
  assert.equal(t.querySelector('[data-testid=demo-tuned-accuracy]')?.textContent, '82%');
  assert.match(t.textContent ?? '', /of 6 held-out word problems answered exactly right/);
  const side = t.querySelector('table[aria-label="Base and fine-tuned answers, side by side"]')!;
  assert.equal(side.querySelectorAll('tbody tr').length, 4);
  const cells = [...side.querySelectorAll('tbody tr')[0]!.querySelectorAll('td')].map((c) => c.textContent?.replace(/\s+/g, ' ').trim());
  assert.deepEqual(cells, ['What is 0 + 1?expected: 1', '✗wrong: seven', '✓right: 1']);
  assert.equal(t.querySelector('details summary')?.textContent, 'All 6 problems');
  shown.done();
});

test('the library: a model added while appInfo still probes the machine stays in the list when appInfo lands', async () => {
  let answerInfo: (i: AppInfo) => void = () => {};
  let models: ModelSummary[] = [];
  const { api } = scriptedApi({
    appInfo: () => new Promise<AppInfo>((resolve) => { answerInfo = resolve; }),
    listModels: async () => models, listDatasets: async () => [], listRuns: async () => [], listAdapters: async () => [],
  });
  useApi({ api, rpc: null });
  const loading = library.reload();
  await settle();
  assert.equal(library.loaded, true, 'the lists do not wait for appInfo');
  models = [{ id: 'm1', name: 'tiny-llama' } as ModelSummary];
  await library.refresh('models'); // addLocalModel's library-changed event
  answerInfo({ totalMemory: 1 } as AppInfo);
  await loading;
  assert.deepEqual(library.models.map((m) => m.name), ['tiny-llama']);
  assert.equal(library.info?.totalMemory, 1);
  library.info = null;
});

test('RunView: a run resumed from an earlier step replaces the steps after it instead of drawing them twice', async () => {
  const { RunView } = await import('../../src-renderer/src/lib/stores/runs.svelte.ts');
  const v = new RunView('r');
  const step = (n: number, loss: number) => runTrainEvent('r', { event: 'step', step: n, total_steps: 8, loss, lr: 1e-3, grad_norm: 1, tokens_per_s: 1, elapsed_s: n, eta_s: 1, rss_mb: 1 });
  for (const [n, loss] of [[1, 6.3], [2, 6.1], [3, 6.0]] as const) v.apply(step(n, loss));
  v.apply(runTrainEvent('r', { event: 'eval', step: 3, eval_loss: 6, perplexity: 400 }));
  // The server stopped; Resume trains again from the start (no checkpoint yet).
  v.apply(step(1, 6.3));
  v.apply(step(2, 6.12));
  assert.deepEqual(v.metrics.map((m) => [m.step, m.loss]), [[1, 6.3], [2, 6.12]]);
  v.apply(step(3, 5.98));
  v.apply(runTrainEvent('r', { event: 'eval', step: 3, eval_loss: 5.9, perplexity: 365 }));
  assert.deepEqual(v.evals.map((e) => [e.step, e.eval_loss]), [[3, 5.9]]);
});

test('Settings: says how the token is kept, saves it without keeping it in the field, and says when a saved one cannot be read here', async () => {
  let view: SettingsView = { hfTokenSet: false, hfTokenStorage: null, hfTokenSaveAs: 'file', hfTokenFromEnv: false, hfEndpoint: null, cacheDir: null, defaultProvider: 'auto' };
  const { api, log } = scriptedApi({
    getSettings: async () => view,
    setSettings: async (patch: Partial<Settings>) => {
      view = { ...view, hfTokenSet: Boolean(patch.hfToken), hfTokenStorage: patch.hfToken ? view.hfTokenSaveAs : null };
      return view;
    },
    appInfo: async () => { throw new Error('not needed'); },
    listModels: async () => [], listDatasets: async () => [], listRuns: async () => [], listAdapters: async () => [],
  });
  useApi({ api, rpc: null });
  const s = mountIn(SettingsScreen, {});
  await settle();
  const status = (root = s.target) => root.querySelector('[data-testid=token-status]')!;
  assert.match(status().textContent ?? '', /No token is saved\./);
  assert.match(s.target.textContent ?? '', /kept in a file only your user account can read/);

  await type(s.target, 'hf-token', 'hf_secret');
  input(s.target, 'hf-token').dispatchEvent(new Event('input', { bubbles: true }));
  await settle();
  (s.target.querySelector('form.token') as HTMLFormElement).requestSubmit();
  await settle();
  assert.deepEqual(log.filter((l) => l.name === 'setSettings').map((l) => l.args[0]), [{ hfToken: 'hf_secret' }]);
  assert.equal(status().getAttribute('data-storage'), 'file');
  assert.match(status().textContent ?? '', /A token is saved, in a file only your user account can read/);
  assert.equal(input(s.target, 'hf-token').value, '', 'the field lets go of the token');
  s.done();

  // `finch serve` on a home where the desktop app saved it encrypted.
  view = { ...view, hfTokenSet: false, hfTokenStorage: 'encrypted', hfTokenFromEnv: true };
  const e = mountIn(SettingsScreen, {});
  await settle();
  assert.match(status(e.target).textContent ?? '', /encrypted by your system’s keychain.*only the desktop app can use: this browser-mode\s+server cannot read it/s);
  assert.match(status(e.target).textContent ?? '', /HF_TOKEN is set in Finch’s environment: it is used before a saved token/);
  e.done();
});
