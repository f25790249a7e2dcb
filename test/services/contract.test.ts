// One contract suite, run over every transport the renderer can use: the in-process dispatcher,
// the WebSocket of `finch serve` (JSON-RPC 2.0), and Electron IPC (the real ipc.ts and preload.ts
// over a faked electron module). Each answers the same calls the same way: every call refuses bad
// arguments naming the failing field, failures arrive as {code, message, hint}, and the library,
// preview, memory verdict, comparisons and settings work against real files (the bundled demo).
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { API_CALLS, type CallName, type DesktopApi, type RunConfig } from '../../src-shared/api.js';
import { CALL_ARGS, RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { failure, startApp, type TestApp, type Transport } from '../helpers/app.js';
import { tempDir } from '../helpers/fixtures.js';

const CFG: RunConfig = { ...RUN_DEFAULTS, modelId: 'm', datasetId: 'd' };

/** For every call: arguments its schema must refuse, and the field the error must name. */
const BAD: Record<CallName, [unknown[], string]> = {
  appInfo: [[1], ''],
  getSettings: [['x'], ''],
  setSettings: [[{ hfToken: 5 }], '0.hfToken'],
  listModels: [[1], ''],
  addLocalModel: [[{ path: '' }], '0.path'],
  downloadModel: [[{ repo: 'not a repo id!' }], '0.repo'],
  cancelDownload: [[42], '0'],
  removeModel: [['id', { deleteFiles: 'yes' }], '1.deleteFiles'],
  modelDetails: [[null], '0'],
  listDatasets: [[1], ''],
  addDataset: [[{ path: 'x.jsonl', format: 'csvish' }], '0.format'],
  listHubDatasetFiles: [[{ repo: '' }], '0.repo'],
  downloadDataset: [[{ repo: 'meta-math/MetaMathQA' }], '0.file'],
  removeDataset: [['id', {}], '1.deleteFiles'],
  previewDataset: [[{ path: 'x.jsonl', rows: 0 }], '0.rows'],
  estimateMemory: [[{ ...CFG, lora: { ...CFG.lora, rank: 0 } }], '0.lora.rank'],
  startRun: [[{ ...CFG, learningRate: 1 }], '0'],
  pauseRun: [[], ''],
  resumeRun: [[''], '0'],
  cancelRun: [[{}], '0'],
  listRuns: [[1], ''],
  runDetails: [[1], '0'],
  deleteRun: [['x', null], '1'],
  startDemo: [[{ steps: -1 }], '0.steps'],
  listAdapters: [[1], ''],
  importAdapter: [[{ path: 'x' }], '0.baseModelId'],
  exportAdapter: [[{ source: { kind: 'base' }, dest: 'x' }], '0.source'],
  exportMerged: [[{ modelId: 'm', source: { kind: 'run' }, dest: 'x' }], '0.source.runId'],
  exportGguf: [[{ modelId: 'm', source: { kind: 'base' }, dest: 'x.gguf', dtype: 'q2_k' }], '0.dtype'],
  exportOllama: [[{ modelId: 'm', source: { kind: 'base' }, dest: 'x', name: 'Has Spaces' }], '0.name'],
  exportAccelerate: [[{ runId: 'r', dest: 'x', gpus: 0 }], '0.gpus'],
  pushToHub: [[{ source: { kind: 'run', runId: 'r' }, what: 'adapter', repo: 'no-owner' }], '0.repo'],
  cancelPush: [[5], '0'],
  generate: [[{ modelId: 'm', left: { side: { kind: 'base' }, messages: [] }, maxNewTokens: 5 }], '0.left.messages'],
  stopGeneration: [[3], '0'],
  batchCompare: [[{ modelId: 'm', left: { kind: 'base' }, right: { kind: 'base' }, datasetId: 'd', rows: 0, maxNewTokens: 4 }], '0.rows'],
  saveComparison: [[{ modelId: 'm', left: { kind: 'base' }, right: { kind: 'base' }, messages: [{ role: 'user', content: 'hi' }], leftOutput: 'a', rightOutput: 'b', rating: 'great', notes: '' }], '0.rating'],
  listComparisons: [[{ runId: 5 }], '0.runId'],
  listWeightCache: [[1], ''],
  removeWeightCacheEntry: [['../../finch.db'], '0'],
  clearWeightCache: [['all'], ''],
  pickPath: [[{ kind: 'folder' }], '0.kind'],
};

test('a call whose one argument has only optional fields may leave it out (JSON-RPC without params)', () => {
  const optional = API_CALLS.filter((name) => CALL_ARGS[name].safeParse([{}]).success);
  assert.deepEqual(optional, ['setSettings', 'startDemo', 'listComparisons']);
  for (const name of optional) assert.deepEqual(CALL_ARGS[name].safeParse([]).data, [{}], name);
});

for (const transport of ['dispatcher', 'websocket', 'ipc'] as Transport[]) {
  describe(`DesktopApi over ${transport}`, () => {
    let app: TestApp;
    let api: DesktopApi;
    before(async () => {
      app = await startApp(transport);
      api = app.api;
    });
    after(() => app.close());

    test('every call refuses bad arguments, naming the failing field', async () => {
      for (const name of API_CALLS) {
        const [args, field] = BAD[name];
        const e = await failure((api[name] as (...a: unknown[]) => Promise<unknown>)(...args));
        assert.equal(e.code, 'invalid_argument', `${name}: ${e.message}`);
        assert.equal(e.field, field, `${name}: ${e.message}`);
        assert.match(e.message, new RegExp(`^${name}: argument ${field.replace(/\./g, '\\.') || '\\(list\\)'}`), e.message);
      }
      assert.match((await failure(api.pauseRun(...([] as unknown as [string])))).message, /takes 1 argument, got 0/);
      const unknown = await failure(api.startRun({ ...CFG, learningRate: 1 } as never));
      assert.match(unknown.message, /unknown field "learningRate"/);
    });

    test('failures are data with a code, a sentence and a hint', async () => {
      const missing = await failure(api.addLocalModel({ path: '/nonexistent/model' }));
      assert.equal(missing.code, 'not_found');
      assert.match(missing.message, /\/nonexistent\/model/);
      assert.ok(missing.hint && missing.hint.length > 10);
      // The model step shows this sentence when a folder holds a family Finch does not train.
      const gpt2 = tempDir('finch-gpt2-');
      writeFileSync(join(gpt2, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
      writeFileSync(join(gpt2, 'model.safetensors'), ''); // the config is read before the weights
      const unsupported = await failure(api.addLocalModel({ path: gpt2 }));
      assert.equal(unsupported.code, 'bad_model');
      assert.match(unsupported.message, /model_type "gpt2" is not supported; Finch supports llama, mistral, qwen2, qwen3, gemma3_text, phi3 and gemma3 \(.*Qwen3, Gemma 3, Phi-3/, unsupported.message);
      const noRun = await failure(api.runDetails('no-such-run'));
      assert.equal(noRun.code, 'not_found');
      const notRunning = await failure(api.pauseRun('no-such-run'));
      assert.equal(notRunning.code, 'not_found');
    });

    test('appInfo: providers, what auto picks, memory; pickPath answers null without dialogs', async () => {
      const info = await api.appInfo();
      assert.ok(info.providers.some((p) => p.name === 'cpu' && p.available));
      assert.ok(info.providers.find((p) => p.name === info.auto.provider)?.available);
      assert.ok(info.totalMemory > 0 && info.cpus > 0 && info.auto.reason.length > 0);
      assert.equal(info.finchHome, app.home);
      assert.equal(await api.pickPath({ kind: 'model-folder' }), null);
    });

    test('library: the demo model and dataset, details, dataset preview, memory verdict', async () => {
      const demo = await api.startDemo({ start: false });
      assert.equal(demo.run, null);
      assert.deepEqual((await api.listModels()).map((m) => m.id), [demo.model.id]);
      assert.deepEqual((await api.listDatasets()).map((d) => d.id), [demo.dataset.id]);
      assert.equal((await api.startDemo({ start: false })).model.id, demo.model.id, 'the demo joins the library once');
      const details = await api.modelDetails(demo.model.id);
      assert.equal(details.modelType, 'llama');
      assert.ok(details.parameters > 1e6 && details.weightBytes4bit < details.weightBytes32bit);
      assert.ok(details.files.some((f) => f.name === 'model.safetensors'));

      const p = await api.previewDataset({ datasetId: demo.dataset.id, modelId: demo.model.id, rows: 5, statsRows: 200, seqLen: 64 });
      assert.ok(p.columns.includes('query') && p.columns.includes('response'), p.columns.join());
      assert.equal(p.format?.name, 'completion');
      assert.equal(p.rows.length, 5);
      assert.ok(p.sample && p.sample.spans.some((s) => s.trained) && p.sample.spans.some((s) => !s.trained));
      assert.equal(p.lengths?.rows, 200);
      assert.equal(p.lengths!.histogram.reduce((s, b) => s + b.count, 0), 200);
      assert.ok(p.lengths!.overSeqLen > 0, 'some demo rows are longer than 64 tokens');
      const raw = await api.previewDataset({ path: demo.dataset.path });
      assert.equal(raw.sample, null, 'without a model there is no token view');
      assert.equal(raw.format, null, 'query/response is no known format without the library\'s mapping');
      assert.deepEqual(raw.suggestedMap, { prompt: 'query', completion: 'response' });

      const fits = await api.estimateMemory(demo.config);
      assert.equal(fits.verdict, 'fits');
      assert.ok(fits.hostBytes > 0 && fits.hostBytes < fits.totalHostBytes);
      const huge = await api.estimateMemory({ ...demo.config, quantize: false, batch: 4096, seqLen: 131072 });
      assert.equal(huge.verdict, 'will-not-fit');
      assert.ok(huge.suggestions.length > 1 && huge.suggestions.every((s) => s.hostBytes < huge.hostBytes));
      const all = huge.suggestions.find((s) => s.text.startsWith('all of these'))!;
      assert.equal(all.hostBytes, (await api.estimateMemory({ ...demo.config, quantize: false, batch: 4096, seqLen: 131072, ...all.change })).hostBytes);
    });

    test('the preference demo: its pairs join the library as a preference dataset, previewed as prompt and both answers; its DPO recipe is a run the app accepts', async () => {
      const demo = await api.startDemo({ start: false, method: 'dpo' });
      assert.equal(demo.run, null);
      assert.equal(demo.dataset.format, 'preference');
      assert.equal(demo.config.method, 'dpo');
      assert.equal(demo.config.datasetId, demo.dataset.id);
      assert.equal((await api.startDemo({ start: false, method: 'dpo' })).dataset.id, demo.dataset.id, 'the pairs join the library once');
      const p = await api.previewDataset({ datasetId: demo.dataset.id, modelId: demo.model.id, rows: 3, statsRows: 50, seqLen: 160 });
      assert.equal(p.format?.name, 'preference');
      const pair = p.sample?.pair;
      assert.ok(pair, 'a pair\'s sample splits prompt and answers');
      assert.ok(pair.prompt.every((s) => !s.trained) && pair.chosen.some((s) => s.trained) && pair.rejected.some((s) => s.trained));
      assert.notEqual(pair.chosen.map((s) => s.text).join(''), pair.rejected.map((s) => s.text).join(''));
      assert.equal((await api.estimateMemory(demo.config)).verdict, 'fits');
    });

    test('comparisons and settings are remembered; the token never crosses back', async () => {
      const [model] = await api.listModels();
      const saved = await api.saveComparison({
        modelId: model!.id, left: { kind: 'base' }, right: { kind: 'base' }, messages: [{ role: 'user', content: 'What is 2 plus 2?' }],
        leftOutput: '4', rightOutput: 'four', rating: 'tie', notes: 'same answer',
      });
      assert.equal(saved.leftLabel, 'base model');
      assert.deepEqual((await api.listComparisons({})).map((c) => c.id), [saved.id]);
      assert.deepEqual((await (api.listComparisons as unknown as () => Promise<{ id: string }[]>)()).map((c) => c.id), [saved.id], 'the argument left out');
      const s = await api.setSettings({ hfToken: 'hf_secret', defaultProvider: 'cpu' });
      assert.equal(s.hfTokenSet, true);
      // Saved outside the database, in a file only this user can read (no keychain outside the desktop app).
      assert.deepEqual([s.hfTokenStorage, s.hfTokenSaveAs, (await api.appInfo()).hfTokenStorage], ['file', 'file', 'file']);
      assert.equal(app.services.store.setting('hfToken'), null);
      assert.equal(readFileSync(join(app.home, 'secrets', 'hf-token'), 'utf8'), 'hf_secret');
      if (process.platform !== 'win32') assert.equal(statSync(join(app.home, 'secrets', 'hf-token')).mode & 0o777, 0o600);
      assert.equal(s.defaultProvider, 'cpu');
      assert.ok(!JSON.stringify(await api.getSettings()).includes('hf_secret'));
      assert.ok(!JSON.stringify(await api.appInfo()).includes('hf_secret'));
    });
  });
}
