// train/evaluate.ts: readQa, the (prompt, reference) pairs that sample answers, `finch eval
// --exact-match` and the app's batch compare score (a preference pair gives its prompt with the
// chosen answer as the reference, in each of the three pair shapes); and the sample answers a run
// gives at each evaluation, which keep one generator open for the whole run: counted in ONNX
// Runtime sessions (Session.count), a run's evaluations open one session, not one each. A session
// per evaluation was what made a long run's memory step up after every evaluation (docs/memory.md,
// flat memory over long runs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Session } from '../../src-main/engine/runtime/session.js';
import type { Generator } from '../../src-main/infer/generate.js';
import { loadModel } from '../../src-main/model/load.js';
import { LORA_TARGETS, initLora, loraParams } from '../../src-main/model/lora.js';
import { evaluateExactMatch, readQa } from '../../src-main/train/evaluate.js';
import { mathRows, tinyCheckpoint } from '../helpers/fixtures.js';

const fixture = (name: string) => new URL(`../fixtures/data/${name}`, import.meta.url).pathname;

test('readQa reads a preference pair as its prompt and the chosen answer, whatever the pair\'s shape', async () => {
  for (const file of ['preference-text.jsonl', 'preference-messages.jsonl', 'preference-sharegpt.json']) {
    const qa = await readQa(fixture(file), {});
    assert.ok(qa.length >= 2, file);
    assert.deepEqual(qa[0]!.prompt.at(-1), { role: 'user', content: 'What is 2 plus 3?' }, file);
    assert.equal(qa[0]!.reference, '2 plus 3 is 5. The answer is: 5', file);
  }
  // A system column, and a multi-turn ShareGPT prompt, stay in the prompt.
  assert.deepEqual((await readQa(fixture('preference-text.jsonl'), {}))[1]!.prompt[0], { role: 'system', content: 'You are a careful calculator.' });
  const turns = (await readQa(fixture('preference-sharegpt.json'), {}))[1]!;
  assert.deepEqual(turns.prompt.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  assert.equal(turns.reference, 'Doubled it is 18.');
});

test('evaluateExactMatch with `keep` opens one session across calls; without it, each call releases its own', async () => {
  const m = loadModel(tinyCheckpoint());
  try {
    const spec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: LORA_TARGETS };
    const adapter = { spec, tensors: initLora(loraParams(m.config, spec), 7) };
    const qa = mathRows(2).map((r) => ({ prompt: [{ role: 'user' as const, content: r.query }], reference: r.response }));
    const o = { maxNewTokens: 3, batch: 2, threads: 1, skipBase: true };
    const counted = async (f: () => Promise<unknown>) => {
      const [c, r] = [Session.count.created, Session.count.released];
      await f();
      return { created: Session.count.created - c, released: Session.count.released - r };
    };
    const keep: { generator: Generator | null } = { generator: null };
    const answers: unknown[] = [];
    const kept = await counted(async () => {
      for (let i = 0; i < 3; i++) answers.push((await evaluateExactMatch(m, qa, adapter, { ...o, keep })).rows);
    });
    assert.deepEqual(kept, { created: 1, released: 0 }, 'three evaluations, one session, still open');
    assert.deepEqual(await counted(() => keep.generator!.release()), { created: 0, released: 1 });
    const fresh = await counted(async () => {
      for (let i = 0; i < 3; i++) answers.push((await evaluateExactMatch(m, qa, adapter, o)).rows);
    });
    assert.deepEqual(fresh, { created: 3, released: 3 }, 'without keep every call releases what it opened');
    for (const a of answers) assert.deepEqual(a, answers[0], 'the kept generator answers as a fresh one does');
  } finally {
    m.close();
  }
});
