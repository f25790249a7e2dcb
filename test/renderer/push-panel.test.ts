// The Export step's push panel: a repository id it checks before sending, what to upload (the
// GGUF weights asked only for a GGUF file), the request it sends, progress from the events of its
// own repository only, cancel, the result with its link, a refusal with its hint, and the last batch
// comparison offered for the card when it set the base model against this very adapter.
import { settle } from './dom.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedApi } from './fake-api.ts';
import type { PushRequest, PushResult } from '../../src-shared/api.ts';

const { mount, unmount } = await import('svelte');
const { useApi } = await import('../../src-renderer/src/lib/services/finch.ts');
const { compare } = await import('../../src-renderer/src/lib/stores/compare.svelte.ts');
const { push } = await import('../../src-renderer/src/lib/stores/push.svelte.ts');
const { default: PushPanel } = await import('../../src-renderer/src/lib/components/export/PushPanel.svelte');

const SIDE = { kind: 'run', runId: 'r1' } as const;
const RESULT: PushResult = {
  repo: 'alice/math', url: 'https://huggingface.co/alice/math', commit: 'abcdef0123456789', private: false, created: true,
  files: [{ name: 'math-q8_0.gguf', bytes: 2048 }, { name: 'README.md', bytes: 900 }], alreadyStored: [],
};

function type(root: Element, selector: string, value: string): void {
  const input = root.querySelector(selector) as unknown as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
}
function choose(root: Element, selector: string): void {
  const input = root.querySelector(selector) as unknown as HTMLInputElement;
  input.checked = true;
  input.dispatchEvent(new Event('change', { bubbles: true }));
}
const submitButton = (root: Element) => root.querySelector('button[type=submit]') as unknown as HTMLButtonElement;

test('PushPanel: checks the id, sends what was chosen, follows its own progress, cancels, and shows where it went', async () => {
  let finish!: (r: PushResult) => void;
  const { api, emit, log } = scriptedApi({
    pushToHub: () => new Promise<PushResult>((resolve) => { finish = resolve; }),
    cancelPush: async () => undefined,
  });
  useApi({ api, rpc: null });
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(PushPanel, { target, props: { side: SIDE, modelId: 'm1' } });
  await settle();

  type(target, '#push-repo', 'just-a-name');
  await settle();
  assert.equal(submitButton(target).disabled, true, 'an id without an owner is not sent');
  assert.equal(target.querySelector('#push-repo')!.getAttribute('aria-invalid'), 'true');
  type(target, '#push-repo', 'alice/math');
  assert.equal(target.querySelector('#push-dtype'), null, 'GGUF weights only for a GGUF file');
  choose(target, 'input[value=gguf]');
  await settle();
  assert.ok(target.querySelector('#push-dtype'));
  assert.equal(submitButton(target).disabled, false);
  submitButton(target).click();
  await settle();
  const sent = log.find((l) => l.name === 'pushToHub')!.args[0] as PushRequest;
  assert.deepEqual(sent, { source: SIDE, what: 'gguf', repo: 'alice/math', private: false, modelId: 'm1', dtype: 'q8_0' });
  assert.match(target.textContent ?? '', /Pushing…/);

  emit({ type: 'export-progress', dest: 'https://huggingface.co/bob/other', done: 9, total: 10, repo: 'bob/other', phase: 'committing' });
  emit({ type: 'export-progress', dest: 'https://huggingface.co/alice/math', done: 512, total: 2048, repo: 'alice/math', phase: 'uploading' });
  await settle();
  const bar = target.querySelector('progress[aria-label="Push progress"]') as unknown as HTMLProgressElement;
  assert.equal(bar.getAttribute('max'), '2048');
  assert.equal(String(bar.value), '512');
  assert.match(target.textContent ?? '', /Uploading: 512 B of 2\.0 KB/);
  assert.doesNotMatch(target.textContent ?? '', /Committing/, 'another repository\'s events are not this push\'s');

  ([...target.querySelectorAll('button')].find((b) => b.textContent === 'Cancel') as unknown as HTMLButtonElement).click();
  await settle();
  assert.deepEqual(log.find((l) => l.name === 'cancelPush')!.args, ['alice/math']);

  finish(RESULT);
  await settle();
  const done = target.querySelector('[role=status]')!;
  assert.equal(done.querySelector('a')!.getAttribute('href'), 'https://huggingface.co/alice/math');
  assert.match(done.textContent ?? '', /Pushed to alice\/math \(public\) · commit abcdef0123/);
  assert.match(done.textContent ?? '', /math-q8_0\.gguf · 2\.0 KB/);
  assert.equal(target.querySelector('progress'), null);
  unmount(c);
  target.remove();
});

test('PushPanel: a refusal shows its message and hint; the last batch comparison of this adapter goes in the card when ticked', async () => {
  const { api, log } = scriptedApi({
    pushToHub: async () => { throw Object.assign(new Error('the token may not write to bob/math'), { code: 'hub_auth', hint: '"bob" must be the token\'s account' }); },
  });
  useApi({ api, rpc: null });
  compare.left = { kind: 'base' };
  compare.right = { ...SIDE };
  compare.batchDatasetId = 'd1';
  compare.batch = {
    rows: [1, 2, 3, 4].map((i) => ({ prompt: `p${i}`, reference: 'r', left: 'a', right: 'b', leftCorrect: i === 1, rightCorrect: i !== 4 })),
    leftAccuracy: 0.25, rightAccuracy: 0.75, differing: [1, 2],
  };
  const target = document.createElement('div');
  document.body.append(target);
  const c = mount(PushPanel, { target, props: { side: SIDE, modelId: 'm1' } });
  await settle();
  assert.match(target.textContent ?? '', /Put the last batch comparison in the card \(base 25% → tuned 75% on 4 rows\)/);
  type(target, '#push-repo', 'bob/math');
  choose(target, 'input[type=checkbox]'); // keep private
  await settle();
  submitButton(target).click();
  await settle();
  const sent = log.find((l) => l.name === 'pushToHub')!.args[0] as PushRequest;
  assert.deepEqual(sent, { source: SIDE, what: 'adapter', repo: 'bob/math', private: true, comparison: { datasetId: 'd1', rows: 4, baseAccuracy: 0.25, tunedAccuracy: 0.75 } });
  const alert = target.querySelector('[role=alert]')!;
  assert.match(alert.textContent ?? '', /the token may not write to bob\/math/);
  assert.match(alert.textContent ?? '', /"bob" must be the token's account/);
  assert.equal(push.running, false);

  compare.right = { kind: 'run', runId: 'another' };
  await settle();
  assert.doesNotMatch(target.textContent ?? '', /batch comparison/, 'a comparison of another adapter is not offered');
  unmount(c);
  target.remove();
});
