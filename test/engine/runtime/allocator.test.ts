// The glibc malloc threshold set for the processes that train (allocator.ts): added once, beside
// the user's own tunables, and never over a threshold the user set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MMAP_THRESHOLD_TUNABLE, allocatorTuned, withTunedAllocator } from '../../../src-main/engine/runtime/allocator.js';

test('withTunedAllocator adds the threshold once and keeps the other tunables', () => {
  const bare = withTunedAllocator({ PATH: '/bin' });
  assert.equal(bare.GLIBC_TUNABLES, MMAP_THRESHOLD_TUNABLE);
  assert.equal(bare.PATH, '/bin');
  assert.ok(allocatorTuned(bare));
  assert.deepEqual(withTunedAllocator(bare), bare, 'a child of a tuned process is not tuned twice');
  const other = withTunedAllocator({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
  assert.equal(other.GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${MMAP_THRESHOLD_TUNABLE}`);
});

test("a threshold the user set is kept", () => {
  const env = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072' };
  assert.ok(allocatorTuned(env));
  assert.equal(withTunedAllocator(env).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=131072');
  assert.ok(!allocatorTuned({}));
});
