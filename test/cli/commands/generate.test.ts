// `finch generate --4bit`: int8 activations by default, float32 ones with --exact (the Generator's
// two 4-bit paths, the same greedy ids in process and through the command).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Generator } from '../../../src-main/infer/generate.js';
import { loadModel } from '../../../src-main/model/load.js';
import { finch, tempDir, tinyCheckpoint } from '../../helpers/fixtures.js';

test('--4bit generates with int8 activations unless --exact; --exact without --4bit is a usage error', async () => {
  process.env.FINCH_HOME = tempDir('finch-home-'); // the 4-bit weight cache goes here, for the children too
  // Hidden 256: at 64 and 128 ORT's int8 path gave the same greedy ids as the exact one.
  const model = tinyCheckpoint({ hiddenSize: 256 });
  const args = ['generate', '--model', model, '--prompt', 'the shop', '--max-new-tokens', '40', '--json', '--threads', '1', '--4bit'];
  const [fast, exact] = await Promise.all([finch(args), finch([...args, '--exact'])]);
  for (const r of [fast, exact]) assert.equal(r.code, 0, r.stderr);
  const ids = (r: { stdout: string }) => JSON.parse(r.stdout.trim().split('\n').at(-1)!).ids as number[];

  const m = loadModel(model, { quantize: true });
  const promptIds = JSON.parse(exact.stdout.trim().split('\n').at(-1)!).prompt_ids as number[];
  const greedy = async (int8Activations: boolean) => {
    const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: promptIds.length + 40, threads: 1, int8Activations });
    const [r] = await gen.generate({ prompts: [promptIds], maxNewTokens: 40, eosIds: m.config.eosTokenIds.length ? m.config.eosTokenIds : m.tokenizer.eosIds });
    await gen.release();
    return r!.ids;
  };
  const [int8, float] = [await greedy(true), await greedy(false)];
  m.close();
  assert.notDeepEqual(int8, float, 'on this random model the two paths part within 40 tokens (else the test could not tell them apart)');
  assert.deepEqual(ids(fast), int8, 'the default is int8 activations');
  assert.deepEqual(ids(exact), float, '--exact is float32 activations');

  const refused = await finch(['generate', '--model', model, '--prompt', 'x', '--exact']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--exact applies to --4bit weights/);
});
