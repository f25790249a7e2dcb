// The dispatcher's failures: a module's own error class becomes its code (a safetensors file or a
// config that does not match its weights is bad_model, a file that is no regular file is
// invalid_argument); 'internal' is kept for bugs, and each one is logged once with what a
// maintainer needs (the call, its arguments, the stack) under a reference the user is given.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiCalls } from '../../src-shared/api.js';
import { EventBus } from '../../src-main/services/bus.js';
import { createDispatcher, describeArgs, type InternalErrorEntry } from '../../src-main/services/dispatch.js';
import { SafetensorsError } from '../../src-main/model/safetensors.js';
import { ConfigWeightsMismatchError } from '../../src-main/model/validate.js';
import { FileAccessError } from '../../src-main/util/regular-file.js';

function dispatcherThrowing(error: unknown) {
  const logged: InternalErrorEntry[] = [];
  const services = new Proxy({} as ApiCalls, { get: () => async () => { throw error; } });
  return { d: createDispatcher(services, new EventBus(), { logInternal: (e) => logged.push(e) }), logged };
}

test('module errors map to their codes and are not logged', async () => {
  const cases: [Error, string][] = [
    [new SafetensorsError('/m/model.safetensors: tensor w is out of range'), 'bad_model'],
    [new ConfigWeightsMismatchError('config.json does not match'), 'bad_model'],
    [new FileAccessError('/x is a FIFO (named pipe), not a regular file', 'not-a-file', '/x'), 'invalid_argument'],
    [new FileAccessError('/x not found', 'missing', '/x'), 'not_found'],
  ];
  for (const [error, code] of cases) {
    const { d, logged } = dispatcherThrowing(error);
    const r = await d.dispatch('listModels', []);
    assert.ok(!r.ok && r.error.code === code, `${error.name}: ${JSON.stringify(r)}`);
    assert.equal(r.error.message, error.message);
    assert.deepEqual(logged, []);
  }
});

test('an internal error is logged once with the call, its arguments and the stack; the user gets its reference', async () => {
  const bug = new TypeError('Cannot read properties of undefined (reading \'length\')');
  const { d, logged } = dispatcherThrowing(bug);
  const r = await d.dispatch('previewDataset', [{ path: '/data/x.jsonl', rows: 5 }]);
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'internal');
  assert.equal(logged.length, 1);
  const e = logged[0]!;
  assert.equal(e.call, 'previewDataset');
  assert.equal(e.args, '[{"path":"/data/x.jsonl","rows":5}]');
  assert.match(e.error, /^TypeError: Cannot read properties/);
  assert.match(e.stack!, /at /);
  assert.match(e.ref, /^E[0-9a-z]+-1$/);
  assert.match(r.error.hint!, new RegExp(`a bug in Finch; please report it with the log entry of ${e.ref}`));
});

test('logged arguments are cut: long strings and long lists', () => {
  assert.equal(describeArgs([{ text: 'x'.repeat(1000) }]), `[{"text":"${'x'.repeat(300)}… (1000 characters)"}]`);
  assert.ok(describeArgs([Array.from({ length: 10_000 }, (_, i) => i)]).length <= 4097);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.match(describeArgs(cyclic), /^\(not serializable/);
});
