import { settle } from './dom.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const { mount, unmount } = await import('svelte');
const { default: ErrorNote } = await import('../../src-renderer/src/lib/components/common/ErrorNote.svelte');
const { ApiError } = await import('../../src-renderer/src/lib/api/errors.ts');

test('ErrorNote shows the API message and its hint, not a stack', async () => {
  const target = document.createElement('div');
  const err = new ApiError('not_found', 'No model folder at /tmp/x', 'Pick the folder that holds config.json.');
  const c = mount(ErrorNote, { target, props: { error: err } });
  await settle();
  assert.equal(target.querySelector('[role=alert] .message')?.textContent, 'No model folder at /tmp/x');
  assert.equal(target.querySelector('.hint')?.textContent, 'Pick the folder that holds config.json.');
  assert.doesNotMatch(target.textContent ?? '', /at .*\.ts:\d+/);
  unmount(c);
});
