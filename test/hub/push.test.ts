// What a push takes and the card it writes, before any network (planPush): a run folder's adapter
// with the run's settings, losses and `finch demo` comparison in the card, its adapter_config.json
// naming the base by Hub id (never a local path), the LoRA targets the adapter's own (Phi-3's
// fused names); an adapter known only by its adapter_config.json; the app's facts winning; a
// merged model folder (the index's shards, never pickle, the card instead of the base's README); a
// GGUF file; and the refusals, each naming the file.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { HubError, hubIdOf, planPush } from '../../src-main/hub/index.js';
import { peftAdapterConfig } from '../../src-main/model/adapter.js';
import { writeSyntheticCheckpoint } from '../../src-main/synthetic/checkpoint.js';
import { tempDir } from '../helpers/fixtures.js';

const COMMIT = 'c'.repeat(40);
const ENDPOINT = 'https://hub.example';

/** The YAML front matter of a card, parsed as the Hub parses it. */
function frontMatter(card: string): unknown {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(card);
  assert.ok(m, `a card starts with front matter:\n${card}`);
  return parse(m[1]!);
}

function throwsHub(f: () => unknown, code: string, message: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof HubError && e.code === code && message.test(e.message), `expected HubError ${code} ${message}`);
}

/** An adapter folder as `finch train` leaves it (PEFT files, finch_adapter.json, run.json, checkpoints/). */
function runFolder(o: { model: string; data: string; demo?: boolean }): string {
  const dir = join(tempDir('finch-push-run-'), 'run');
  mkdirSync(join(dir, 'checkpoints', 'step-00030'), { recursive: true });
  const spec = { rank: 8, alpha: 16, dropout: 0.05, rslora: false, targets: ['q_proj', 'v_proj'] as const };
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peftAdapterConfig({ ...spec, targets: [...spec.targets] }, o.model)));
  writeFileSync(join(dir, 'adapter_model.safetensors'), Buffer.alloc(64));
  writeFileSync(join(dir, 'finch_adapter.json'), '{"template":"model"}');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({
    config: { model: o.model, data: o.data, out: dir, quantize: true, blockSize: 32, lr: 0.0002, warmupSteps: 3, maxSteps: 30, batch: 4, seqLen: 256, lora: spec },
    status: 'completed', step: 30,
    losses: [{ step: 29, loss: 0.9 }, { step: 30, loss: 0.81234 }], evals: [{ step: 30, loss: 0.95 }],
  }));
  if (o.demo) writeFileSync(join(dir, 'demo.json'), JSON.stringify({ base_accuracy: 0.2, tuned_accuracy: 0.65, eval_rows: 40, steps: 30, seconds: 12, rows: [] }));
  return dir;
}

test('a run folder: the adapter files go, the rest stays; the card names the Hub ids, the settings, the losses and the comparison', () => {
  const dir = runFolder({
    model: `/home/me/.finch/hub/models/Qwen/Qwen2.5-0.5B-Instruct/${COMMIT}`,
    data: `/home/me/.finch/hub/datasets/meta-math/MetaMathQA/${COMMIT}/MetaMathQA-395K.json`, demo: true,
  });
  const plan = planPush({ kind: 'adapter', path: dir, repo: 'alice/qwen-math', endpoint: ENDPOINT });
  assert.deepEqual(plan.files.map((f) => f.path), ['adapter_config.json', 'adapter_model.safetensors', 'finch_adapter.json', 'README.md']);
  assert.deepEqual(plan.skipped.map((s) => s.path).sort(), ['checkpoints', 'demo.json', 'run.json']);
  assert.deepEqual(frontMatter(plan.card), {
    base_model: 'Qwen/Qwen2.5-0.5B-Instruct', base_model_relation: 'adapter', library_name: 'peft', pipeline_tag: 'text-generation',
    datasets: ['meta-math/MetaMathQA'], tags: ['finch', 'lora', 'qlora'],
  });
  const lines = plan.card.split('\n');
  for (const line of [
    '# qwen-math',
    'A LoRA adapter for [Qwen/Qwen2.5-0.5B-Instruct](https://hub.example/Qwen/Qwen2.5-0.5B-Instruct), trained with Finch on [meta-math/MetaMathQA](https://hub.example/datasets/meta-math/MetaMathQA).',
    '| Method | QLoRA: the frozen base in 4 bits (blocks of 32), the adapter trained in float32 |',
    '| LoRA | rank 8, alpha 16 (scale 2), dropout 0.05, on q_proj, v_proj |',
    '| Optimizer | AdamW, learning rate 0.0002, cosine schedule, 3 warm-up steps, weight decay 0, gradient norm clipped at 1 |',
    '| Batch | 4 sequences × 1 accumulation step |',
    '| Length | 1 epoch, at most 30 steps |',
    '| Sequence length | 256 tokens |',
    '| Steps trained | 30 |',
    '| Final training loss | 0.8123 |',
    '| Final evaluation loss | 0.95 (perplexity 2.5857) |',
    '| Base vs tuned | 20% → 65% right answers on 40 held-out problems of the demo dataset |',
    'model = AutoPeftModelForCausalLM.from_pretrained("alice/qwen-math")',
  ]) assert.ok(lines.includes(line), `the card has the line\n  ${line}\n${plan.card}`);
  assert.equal(plan.files.at(-1)!.source.toString(), plan.card);
  const config = JSON.parse(plan.files[0]!.source.toString()) as Record<string, unknown>;
  assert.equal(config.base_model_name_or_path, 'Qwen/Qwen2.5-0.5B-Instruct', 'the pushed adapter names its base by Hub id, so PEFT loads it anywhere');
  assert.equal(config.r, 8, 'every other key as written');
});

test('the card names the modules the adapter adapts: a Phi-3 run that listed q_proj, v_proj adapted its fused qkv_proj', () => {
  const dir = runFolder({ model: 'microsoft/Phi-3-mini-4k-instruct', data: 'rows.jsonl' });
  const saved = { rank: 8, alpha: 16, dropout: 0.05, rslora: false, targets: ['qkv_proj' as const] };
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peftAdapterConfig(saved, 'microsoft/Phi-3-mini-4k-instruct')));
  const plan = planPush({ kind: 'adapter', path: dir, repo: 'alice/phi', endpoint: ENDPOINT });
  assert.ok(plan.card.includes('| LoRA | rank 8, alpha 16 (scale 2), dropout 0.05, on qkv_proj |'), plan.card);
});

test('local models and datasets are named by their folder or file only; the caller\'s facts win', () => {
  const dir = runFolder({ model: '/home/me/secret-project/models/my-llama', data: '/home/me/secret-project/data/rows.jsonl' });
  const plan = planPush({ kind: 'adapter', path: dir, repo: 'alice/x', endpoint: ENDPOINT });
  const meta = frontMatter(plan.card) as Record<string, unknown>;
  assert.equal(meta.base_model, undefined, 'no Hub id, no base_model');
  assert.equal(meta.datasets, undefined);
  assert.ok(plan.card.includes('A LoRA adapter for `my-llama` (a local model), trained with Finch on `rows.jsonl` (a local file).'), plan.card);
  const config = plan.files[0]!.source.toString();
  for (const text of [plan.card, config]) assert.ok(!text.includes('secret-project'), 'no local path leaves the machine');
  assert.equal(JSON.parse(config).base_model_name_or_path, 'my-llama');
  assert.ok(plan.card.includes('base = AutoModelForCausalLM.from_pretrained("path/to/my-llama")'), plan.card);

  const app = planPush({
    kind: 'adapter', path: dir, repo: 'alice/x', endpoint: ENDPOINT,
    facts: { baseModel: 'meta-llama/Llama-3.2-1B', datasets: ['org/rows'], comparison: { on: 'rows of org/rows', rows: 10, baseAccuracy: 0.1, tunedAccuracy: 0.5 } },
  });
  assert.deepEqual((frontMatter(app.card) as Record<string, unknown>).base_model, 'meta-llama/Llama-3.2-1B');
  assert.ok(app.card.includes('| Base vs tuned | 10% → 50% right answers on 10 rows of org/rows |'), app.card);
});

test('an adapter without run.json: the card says what adapter_config.json says', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peftAdapterConfig({ rank: 16, alpha: 16, dropout: 0, rslora: true, targets: ['q_proj'] }, 'Qwen/Qwen2.5-0.5B')));
  writeFileSync(join(dir, 'adapter_model.safetensors'), Buffer.alloc(8));
  const plan = planPush({ kind: 'adapter', path: dir, repo: 'alice/peft-made', endpoint: ENDPOINT });
  assert.deepEqual(plan.files.map((f) => f.path), ['adapter_config.json', 'adapter_model.safetensors', 'README.md']);
  assert.equal((frontMatter(plan.card) as Record<string, unknown>).base_model, 'Qwen/Qwen2.5-0.5B');
  assert.ok(plan.card.includes('| Method | LoRA |'));
  assert.ok(plan.card.includes('| LoRA | rank 16, alpha 16 (scale 4, rsLoRA), dropout 0, on q_proj |'), plan.card);
  assert.ok(!plan.card.includes('## Results'), 'no losses known, no results section');
});

test('a merged model folder: config, tokenizer and the shards the index names; never pickle; the card replaces the base\'s README', () => {
  const src = writeSyntheticCheckpoint(join(tempDir(), 'model'), { hiddenSize: 32, numLayers: 2, numHeads: 2, vocabSize: 300, sharded: true }).dir;
  const dir = join(tempDir(), 'merged');
  mkdirSync(dir);
  const kept = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  for (const f of kept) copyFileSync(join(src, f), join(dir, f));
  writeFileSync(join(dir, 'pytorch_model.bin'), 'pickle');
  writeFileSync(join(dir, 'consolidated.safetensors'), 'stray');
  writeFileSync(join(dir, 'README.md'), '# the base model\'s card');
  const plan = planPush({ kind: 'merged', path: dir, repo: 'alice/merged', endpoint: ENDPOINT, facts: { baseModel: 'meta-llama/Llama-3.2-1B' } });
  assert.deepEqual(plan.files.map((f) => f.path).sort(), [...kept, 'README.md'].sort());
  const why = new Map(plan.skipped.map((s) => [s.path, s.reason]));
  assert.match(why.get('pytorch_model.bin')!, /pickle/);
  assert.match(why.get('consolidated.safetensors')!, /not one of the shards model\.safetensors\.index\.json names/);
  assert.match(why.get('README.md')!, /replaced by the model card/);
  const meta = frontMatter(plan.card) as Record<string, unknown>;
  assert.deepEqual([meta.base_model_relation, meta.library_name], ['finetune', 'transformers']);

  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00009-of-00009.safetensors' } }));
  throwsHub(() => planPush({ kind: 'merged', path: dir, repo: 'alice/merged' }), 'integrity', /names model-00009-of-00009\.safetensors, which is not there/);
  throwsHub(() => planPush({ kind: 'merged', path: tempDir(), repo: 'alice/merged' }), 'bad_request', /has no config\.json: it is not a Hugging Face model folder/);
});

test('a GGUF file: the one file, its weights\' type in the card; a file that is not GGUF is refused', () => {
  const dir = tempDir();
  const file = join(dir, 'qwen-math-q8_0.gguf');
  writeFileSync(file, Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), Buffer.alloc(32)]));
  const plan = planPush({ kind: 'gguf', path: file, repo: 'alice/qwen-math-gguf', endpoint: ENDPOINT, facts: { baseModel: 'Qwen/Qwen2.5-0.5B-Instruct' } });
  assert.deepEqual(plan.files.map((f) => f.path), ['qwen-math-q8_0.gguf', 'README.md']);
  assert.deepEqual(frontMatter(plan.card), {
    base_model: 'Qwen/Qwen2.5-0.5B-Instruct', base_model_relation: 'finetune', pipeline_tag: 'text-generation', tags: ['finch', 'lora', 'gguf'],
  });
  assert.ok(plan.card.includes('A GGUF file (q8_0 weights) of a LoRA fine-tune of'), plan.card);
  assert.ok(plan.card.includes('llama-cli --hf-repo alice/qwen-math-gguf --hf-file qwen-math-q8_0.gguf -p "Hello"'));
  const fake = join(dir, 'not.gguf');
  writeFileSync(fake, 'PK\u0003\u0004 a zip');
  throwsHub(() => planPush({ kind: 'gguf', path: fake, repo: 'alice/x' }), 'bad_request', /not\.gguf is not a GGUF file/);
});

test('refusals name the file: pickle-only adapters, folders that are not adapters, missing paths, bad run records', () => {
  const pickle = tempDir();
  writeFileSync(join(pickle, 'adapter_config.json'), '{}');
  writeFileSync(join(pickle, 'adapter_model.bin'), 'pickle');
  throwsHub(() => planPush({ kind: 'adapter', path: pickle, repo: 'alice/x' }), 'bad_request', /adapter_model\.bin \(pickle\) but no adapter_model\.safetensors; Finch never pushes pickle/);
  throwsHub(() => planPush({ kind: 'adapter', path: tempDir(), repo: 'alice/x' }), 'bad_request', /has no adapter_config\.json: it is not a PEFT adapter folder/);
  throwsHub(() => planPush({ kind: 'adapter', path: '/no/such/folder', repo: 'alice/x' }), 'bad_request', /\/no\/such\/folder does not exist/);
  const dir = runFolder({ model: 'm', data: 'd' });
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ config: { model: 'm', data: 'd', out: dir, lr: 7 } }));
  throwsHub(() => planPush({ kind: 'adapter', path: dir, repo: 'alice/x' }), 'bad_request', /run\.json: config\.lr: /);
});

test('hubIdOf: Finch\'s Hub cache folders and ids as given; local paths are not ids', () => {
  assert.equal(hubIdOf(`/x/hub/models/Qwen/Qwen2.5-0.5B/${COMMIT}`, 'models'), 'Qwen/Qwen2.5-0.5B');
  assert.equal(hubIdOf(`C:\\Users\\me\\hub\\datasets\\meta-math\\MetaMathQA\\${COMMIT}\\data\\train.parquet`, 'datasets'), 'meta-math/MetaMathQA');
  assert.equal(hubIdOf(`/x/hub/models/Qwen/Qwen2.5-0.5B/${COMMIT}`, 'datasets'), null);
  assert.equal(hubIdOf('meta-llama/Llama-3.2-1B', 'models'), 'meta-llama/Llama-3.2-1B');
  assert.equal(hubIdOf('/home/me/models/llama', 'models'), null);
  assert.equal(hubIdOf(tempDir(), 'models'), null);
});
