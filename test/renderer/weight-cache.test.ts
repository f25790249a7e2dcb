import { settle } from './dom.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedApi } from './fake-api.ts';
import type { WeightCacheEntry, WeightCacheView } from '../../src-shared/api.ts';

const { mount, unmount } = await import('svelte');
const { useApi } = await import('../../src-renderer/src/lib/services/finch.ts');
const { default: WeightCache } = await import('../../src-renderer/src/lib/components/home/WeightCache.svelte');

const MiB = 2 ** 20;
const entry = (id: string, o: Partial<WeightCacheEntry>): WeightCacheEntry => ({
  id, file: `/home/me/.finch/cache/int4/${id}.safetensors`, checkpoint: `/models/${id}`, modelId: null, modelName: null, blockSize: 32,
  bytes: MiB, createdAt: '2026-11-01T10:00:00Z', lastUsedAt: '2026-11-02T10:00:00Z', readable: true, inUseBy: null, ...o,
});

/** A back end holding a list of entries that remove and clear change (and that can refuse). */
function cacheApi(entries: WeightCacheEntry[]) {
  const view = (): WeightCacheView => ({ dir: '/home/me/.finch/cache/int4', totalBytes: entries.reduce((a, e) => a + e.bytes, 0), entries: [...entries] });
  return scriptedApi({
    listWeightCache: async () => view(),
    removeWeightCacheEntry: async (id) => {
      const e = entries.find((x) => x.id === id)!;
      if (e.inUseBy) throw Object.assign(new Error(`in use by run "${e.inUseBy}"`), { code: 'conflict', hint: 'remove it once the run has ended' });
      entries.splice(entries.indexOf(e), 1);
      return view();
    },
    clearWeightCache: async () => { entries.length = 0; return view(); },
  });
}

const buttons = (root: Element, name: RegExp) => [...root.querySelectorAll('button')].filter((b) => name.test(b.getAttribute('aria-label') ?? b.textContent ?? '')) as unknown as HTMLButtonElement[];

test('WeightCache: total and per-entry sizes, remove asks first and removes one entry, clear all asks and empties it', async () => {
  const entries = [
    entry('aaa', { modelName: 'Llama 3.2 1B', bytes: 600 * MiB }),
    entry('bbb', { checkpoint: '/models/other', bytes: 300 * MiB, blockSize: 64 }),
    entry('ccc', { checkpoint: '', readable: false, bytes: 100 * MiB }),
  ];
  const { api, log } = cacheApi(entries);
  useApi({ api, rpc: null });
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(WeightCache, { target });
  await settle();

  assert.equal(target.querySelector('[data-testid=weight-cache-total]')!.textContent, '1000 MB in 3 entries');
  const rows = [...target.querySelectorAll('tbody tr')];
  assert.deepEqual(rows.map((r) => r.getAttribute('data-entry-id')), ['aaa', 'bbb', 'ccc']);
  assert.match(rows[0]!.textContent ?? '', /Llama 3\.2 1B[\s\S]*600 MB/);
  assert.match(rows[1]!.textContent ?? '', /\/models\/other[\s\S]*64[\s\S]*300 MB/);
  assert.match(rows[2]!.textContent ?? '', /unreadable entry ccc[\s\S]*unreadable/);

  // Remove asks first: the confirmation takes the focus, Keep backs out without a call.
  buttons(target, /^Remove the 4-bit weights of \/models\/other$/)[0]!.click();
  await settle();
  const confirm = target.querySelector('[role=group][aria-label="Confirm removing /models/other"]')!;
  assert.ok(confirm, 'a confirmation appears');
  assert.equal(document.activeElement?.textContent, 'Remove 300 MB');
  buttons(confirm, /^Keep$/)[0]!.click();
  await settle();
  assert.equal(target.querySelector('[role=group]'), null);
  assert.ok(!log.some((l) => l.name === 'removeWeightCacheEntry'));

  buttons(target, /^Remove the 4-bit weights of \/models\/other$/)[0]!.click();
  await settle();
  buttons(target.querySelector('[role=group]')!, /^Remove 300 MB$/)[0]!.click();
  await settle();
  assert.deepEqual(log.filter((l) => l.name === 'removeWeightCacheEntry').map((l) => l.args), [['bbb']]);
  assert.deepEqual([...target.querySelectorAll('tbody tr')].map((r) => r.getAttribute('data-entry-id')), ['aaa', 'ccc']);
  assert.equal(target.querySelector('[data-testid=weight-cache-total]')!.textContent, '700 MB in 2 entries');

  buttons(target, /^Clear all$/)[0]!.click();
  await settle();
  const all = target.querySelector('[role=group][aria-label="Confirm clearing the 4-bit weight cache"]')!;
  assert.equal(document.activeElement?.textContent, 'Delete all 2 (700 MB)');
  buttons(all, /^Delete all/)[0]!.click();
  await settle();
  assert.equal(log.filter((l) => l.name === 'clearWeightCache').length, 1);
  assert.equal(target.querySelector('table'), null);
  assert.match(target.textContent ?? '', /Empty\. A QLoRA run adds its model here\./);
  assert.equal(target.querySelector('[data-testid=weight-cache-total]')!.textContent, '0 B in 0 entries');
  unmount(c);
  target.remove();
});

test('WeightCache: an entry a run is using cannot be removed, a refusal shows its reason, and change and run events reload the list', async () => {
  const entries = [entry('aaa', { modelName: 'tiny', inUseBy: 'qlora one' })];
  const { api, emit, log } = cacheApi(entries);
  useApi({ api, rpc: null });
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(WeightCache, { target });
  await settle();
  const remove = buttons(target, /^Remove the 4-bit weights of tiny$/)[0]!;
  assert.equal(remove.disabled, true);
  assert.match(remove.title, /In use by run "qlora one"/);
  assert.match(target.querySelector('tbody tr')!.textContent ?? '', /in use/);

  // The back end has the last word (the run may have started after the list was loaded).
  remove.disabled = false;
  remove.click();
  await settle();
  buttons(target.querySelector('[role=group]')!, /^Remove 1\.0 MB$/)[0]!.click();
  await settle();
  const alert = target.querySelector('[role=alert]')!;
  assert.match(alert.textContent ?? '', /in use by run "qlora one"[\s\S]*remove it once the run has ended/);
  assert.equal(target.querySelectorAll('tbody tr').length, 1);

  // A 4-bit run elsewhere wrote an entry: the back end says so and the list follows.
  entries.push(entry('ddd', { modelName: 'second' }));
  const lists = log.filter((l) => l.name === 'listWeightCache').length;
  emit({ type: 'library-changed', what: 'weight-cache' });
  await settle();
  assert.equal(log.filter((l) => l.name === 'listWeightCache').length, lists + 1);
  assert.deepEqual([...target.querySelectorAll('tbody tr')].map((r) => r.getAttribute('data-entry-id')), ['aaa', 'ddd']);
  emit({ type: 'library-changed', what: 'models' });
  await settle();
  assert.equal(log.filter((l) => l.name === 'listWeightCache').length, lists + 1, 'other library changes do not reload the cache');
  // The run ends: its entry can be removed now.
  entries[0]!.inUseBy = null;
  emit({ type: 'run-status', runId: 'r1', status: 'completed', error: null });
  await settle();
  assert.equal(log.filter((l) => l.name === 'listWeightCache').length, lists + 2);
  assert.equal(buttons(target, /^Remove the 4-bit weights of tiny$/)[0]!.disabled, false);
  assert.doesNotMatch(target.querySelector('tbody tr')!.textContent ?? '', /in use/);
  unmount(c);
  target.remove();
});
