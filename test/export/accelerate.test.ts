// `finch export accelerate`: the settings mapping table, the exported dataset read back equals
// Finch's own tokenised and masked sequences, train.py compiles under Debian's Python, the
// Accelerate configs name the model's decoder layer for FSDP, bad input leaves nothing, and a
// 4-bit run's train.py, without CUDA and bitsandbytes, says so and offers --no-4bit (in the venv
// of .ci/run). A preference run's export: TRL rows holding Finch's pair sides, a DPOTrainer or
// ORPOTrainer script. The launches themselves: accelerate-launch.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { prepareDataset } from '../../src-main/data/dataset.js';
import { AccelerateExportError, exportAccelerate, settingsTable, type ExportedPair, type ExportedRow } from '../../src-main/export/accelerate.js';
import { loadTokenizer } from '../../src-main/model/tokenizer.js';
import { TRAIN_DEFAULTS, type TrainConfig } from '../../src-shared/run-config.js';
import { need, VENV_PYTHON } from '../helpers/prerequisites.js';

const ASSETS = new URL('../../assets/demo/', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'finch-accelerate-'));
after(() => rmSync(root, { recursive: true, force: true }));

const cfg: TrainConfig = {
  ...TRAIN_DEFAULTS,
  model: join(ASSETS, 'model'),
  data: join(ASSETS, 'data', 'test.jsonl'),
  out: join(root, 'run'),
  map: { prompt: 'query', completion: 'response' },
  lora: { rank: 8, alpha: 16, dropout: 0.1, rslora: true, targets: ['q_proj', 'v_proj', 'down_proj'] },
  lr: 3e-4, schedule: 'linear', warmupSteps: 5, epochs: 2, maxSteps: 20, batch: 3, gradAccum: 2,
  weightDecay: 0.01, maxGradNorm: null, evalEvery: 10, seqLen: 96, seed: 7, quantize: true, checkpointLayers: true, valFraction: 0.1,
};

function makeRun(c: TrainConfig): string {
  mkdirSync(c.out, { recursive: true });
  writeFileSync(join(c.out, 'run.json'), JSON.stringify({ config: c, status: 'completed' }));
  return c.out;
}

test('settings table: each run setting lands on its Transformers / PEFT argument', () => {
  const table = Object.fromEntries(settingsTable(cfg).map((r) => [r.hf, [r.finch, r.python]]));
  assert.deepEqual(table['LoraConfig.r'], ['lora.rank', '8']);
  assert.deepEqual(table['LoraConfig.lora_alpha'], ['lora.alpha', '16']);
  assert.deepEqual(table['LoraConfig.lora_dropout'], ['lora.dropout', '0.1']);
  assert.deepEqual(table['LoraConfig.target_modules'], ['lora.targets', '["q_proj", "v_proj", "down_proj"]']);
  assert.deepEqual(table['LoraConfig.use_rslora'], ['lora.rslora', 'True']);
  assert.deepEqual(table['TrainingArguments.learning_rate'], ['lr', '0.0003']);
  assert.deepEqual(table['TrainingArguments.lr_scheduler_type'], ['schedule', '"linear"']);
  assert.deepEqual(table['TrainingArguments.warmup_steps'], ['warmupSteps', '5']);
  assert.deepEqual(table['TrainingArguments.num_train_epochs'], ['epochs', '2']);
  assert.deepEqual(table['TrainingArguments.max_steps'], ['maxSteps', '20']);
  assert.deepEqual(table['TrainingArguments.per_device_train_batch_size'], ['batch', '3']);
  assert.deepEqual(table['TrainingArguments.gradient_accumulation_steps'], ['gradAccum', '2']);
  assert.deepEqual(table['TrainingArguments.weight_decay'], ['weightDecay', '0.01']);
  assert.deepEqual(table['TrainingArguments.max_grad_norm'], ['maxGradNorm', '0']);
  assert.deepEqual(table['TrainingArguments.seed'], ['seed', '7']);
  assert.deepEqual(table['TrainingArguments.eval_steps'], ['evalEvery', '10']);
  assert.deepEqual(table['TrainingArguments.gradient_checkpointing'], ['checkpointLayers', 'True']);
  assert.deepEqual(table['SEQ_LEN (rows are already cut to it)'], ['seqLen', '96']);
  assert.deepEqual(table['BitsAndBytesConfig(load_in_4bit=...)'], ['quantize', 'True']);
  // Defaults: cosine, no step limit, clipping at 1.0, constant -> HF's warmup variant.
  const d = Object.fromEntries(settingsTable({ ...cfg, schedule: 'constant', maxSteps: null, maxGradNorm: 1 }).map((r) => [r.hf, r.python]));
  assert.equal(d['TrainingArguments.lr_scheduler_type'], '"constant_with_warmup"');
  assert.equal(d['TrainingArguments.max_steps'], '-1');
  assert.equal(d['TrainingArguments.max_grad_norm'], '1');
});

test('export: dataset read back gives Finch ids, labels and positions; train.py compiles; configs and README', async () => {
  const run = makeRun(cfg);
  const out = join(root, 'export');
  const r = await exportAccelerate(run, out, { gpus: 4 });
  const tok = loadTokenizer(cfg.model);
  const data = await prepareDataset(cfg.data, tok, { seqLen: cfg.seqLen, pack: cfg.pack, valFraction: cfg.valFraction, seed: cfg.seed, trainOn: cfg.trainOn, template: cfg.template, map: cfg.map });
  for (const [file, set] of [['train.jsonl', data.train], ['validation.jsonl', data.validation]] as const) {
    const rows = readFileSync(join(out, 'data', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ExportedRow);
    assert.equal(rows.length, set.length, file);
    assert.ok(rows.length > 0);
    rows.forEach((row, i) => {
      const b = set.batch([i], { dtype: 'int32' });
      assert.deepEqual(row.input_ids, [...b.inputIds], `${file} row ${i} ids`);
      assert.deepEqual(row.labels, [...b.labels], `${file} row ${i} labels`);
      assert.deepEqual(row.position_ids, [...b.positionIds]);
    });
    // Masks are really there: prompts are not trained, completions are.
    assert.ok(rows.every((x) => x.labels.includes(-100) && x.labels.some((l) => l >= 0)));
  }
  assert.equal(r.trainRows, data.train.length);

  const compiled = spawnSync('/usr/bin/python3', ['-m', 'py_compile', join(out, 'train.py')], { encoding: 'utf8' });
  assert.equal(compiled.status, 0, compiled.stderr);
  const script = readFileSync(join(out, 'train.py'), 'utf8');
  assert.match(script, /r=8,\s+# finch: lora.rank/);
  assert.match(script, /use_rslora=True/);
  assert.match(script, /LOAD_IN_4BIT = True/);
  const ddp = readFileSync(join(out, 'accelerate', 'ddp.yaml'), 'utf8');
  assert.match(ddp, /distributed_type: MULTI_GPU/);
  assert.match(ddp, /num_processes: 4/);
  const fsdp = readFileSync(join(out, 'accelerate', 'fsdp.yaml'), 'utf8');
  assert.match(fsdp, /distributed_type: FSDP/);
  assert.match(fsdp, /fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer/);
  const readme = readFileSync(join(out, 'README.md'), 'utf8');
  assert.match(readme, /accelerate launch --config_file accelerate\/ddp\.yaml train\.py/);
  assert.match(readme, /\| lora\.alpha \| LoraConfig\.lora_alpha \| `16` \|/);
});

test('bad input: a folder that is not a run, or an existing non-empty output, is refused and leaves nothing', async () => {
  await assert.rejects(exportAccelerate(join(root, 'no-run'), join(root, 'x')), /nothing to resume/);
  assert.ok(!existsSync(join(root, 'x')));
  const run = makeRun({ ...cfg, out: join(root, 'run2') });
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'keep.txt'), 'x');
  await assert.rejects(exportAccelerate(run, busy), (e: Error) => e instanceof AccelerateExportError && /not empty/.test(e.message));
  assert.deepEqual(readdirSync(busy), ['keep.txt']);
  await assert.rejects(exportAccelerate(run, join(root, 'missing', 'deeper')), /does not exist/);
});

test('a 4-bit run\'s train.py without CUDA or bitsandbytes says what is missing and offers --no-4bit, which goes past the check', { timeout: 180_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  const out = join(root, 'export-4bit');
  await exportAccelerate(makeRun({ ...cfg, out: join(root, 'run-4bit') }), out);
  const script = join(out, 'train.py');
  const r = spawnSync(VENV_PYTHON, [script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 1, `train.py should stop: exit ${r.status ?? r.signal}\n${r.stderr}`);
  assert.match(r.stderr, /4-bit base \(QLoRA\), which needs a CUDA GPU \(torch\.cuda\.is_available\(\) is False\) and the bitsandbytes package \(pip install bitsandbytes\)/);
  assert.match(r.stderr, /--no-4bit/);
  assert.ok(!existsSync(join(out, 'output')), 'it stopped before anything was written');
  // --no-4bit skips the check and goes on to load the base (a missing folder here: its own error).
  const missing = join(root, 'no-such-model');
  const f = spawnSync(VENV_PYTHON, [script, '--no-4bit', '--model', missing], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
  assert.notEqual(f.status, 0);
  assert.doesNotMatch(f.stderr, /bitsandbytes/);
  assert.match(f.stderr, /no-such-model/);
  const readme = readFileSync(join(out, 'README.md'), 'utf8');
  assert.match(readme, /`--no-4bit` trains the same LoRA on the unquantised base/);
});

const pairsCfg: TrainConfig = {
  ...cfg, method: 'dpo', beta: 0.25, labelSmoothing: 0.1, data: join(ASSETS, 'data', 'preference-test.jsonl'), map: undefined, seqLen: 64, quantize: false,
};

test('settings table: a preference run adds its DPOConfig or ORPOConfig arguments and the starting adapter', () => {
  const dpo = Object.fromEntries(settingsTable({ ...pairsCfg, initAdapter: '/adapters/sft' }).map((r) => [r.hf, [r.finch, r.python]]));
  assert.deepEqual(dpo['DPOConfig.loss_type'], ['method', '["sigmoid"]']);
  assert.deepEqual(dpo['DPOConfig.beta'], ['beta', '0.25']);
  assert.deepEqual(dpo['DPOConfig.label_smoothing'], ['labelSmoothing', '0.1']);
  assert.deepEqual(dpo['INIT_ADAPTER (PeftModel.from_pretrained; also the reference)'], ['initAdapter', '"/adapters/sft"']);
  const orpo = Object.fromEntries(settingsTable({ ...pairsCfg, method: 'orpo', orpoLambda: 0.3 }).map((r) => [r.hf, [r.finch, r.python]]));
  assert.deepEqual(orpo['ORPOConfig.beta'], ['orpoLambda', '0.3']);
  assert.deepEqual(orpo['INIT_ADAPTER (PeftModel.from_pretrained)'], ['initAdapter', 'None']);
  assert.ok(!('DPOConfig.beta' in orpo));
  assert.ok(!settingsTable(cfg).some((r) => /DPOConfig|ORPOConfig|INIT_ADAPTER/.test(r.hf)), 'an SFT run has none of them');
});

test('export of a DPO run: TRL rows whose ids are Finch\'s pair sides and whose text is their rendering; DPOTrainer script; ORPO likewise', async () => {
  const out = join(root, 'export-dpo');
  const r = await exportAccelerate(makeRun({ ...pairsCfg, out: join(root, 'run-dpo') }), out);
  const tok = loadTokenizer(pairsCfg.model);
  const data = await prepareDataset(pairsCfg.data, tok, { seqLen: pairsCfg.seqLen, valFraction: pairsCfg.valFraction, seed: pairsCfg.seed, trainOn: pairsCfg.trainOn, template: pairsCfg.template });
  assert.equal(data.kind, 'pairs');
  if (data.kind !== 'pairs') return;
  for (const [file, set] of [['train.jsonl', data.train], ['validation.jsonl', data.validation]] as const) {
    const rows = readFileSync(join(out, 'data', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ExportedPair);
    assert.equal(rows.length, set.length, file);
    assert.ok(rows.length > 0);
    rows.forEach((row, i) => {
      const { chosen, rejected } = set.sides(i);
      for (const [s, answer] of [[chosen, row.chosen_ids], [rejected, row.rejected_ids]] as const) {
        const ids: number[] = Array.from(data.samples.tokens(s)), trained: Uint8Array = data.samples.trained(s);
        // The side is exactly prompt + answer, and the answer is what Finch trains on.
        assert.deepEqual([...row.prompt_ids, ...answer], ids.slice(0, trained.lastIndexOf(1) + 1), `${file} pair ${i}`);
        assert.equal(trained.indexOf(1, 1), row.prompt_ids.length, `${file} pair ${i}: the answer starts at the first trained token`);
      }
      assert.equal(row.prompt, tok.decode(row.prompt_ids));
      assert.equal(row.chosen, tok.decode(row.chosen_ids));
      assert.equal(row.rejected, tok.decode(row.rejected_ids));
    });
  }
  assert.equal(r.trainRows, data.train.length);
  // The text is the chat template's rendering: the prompt ends with the assistant header, the answer with its end of turn.
  const first = JSON.parse(readFileSync(join(out, 'data', 'train.jsonl'), 'utf8').split('\n')[0]!) as ExportedPair;
  assert.match(first.prompt, /^<\|begin_of_text\|><\|start_header_id\|>user<\|end_header_id\|>\n\n.+<\|start_header_id\|>assistant<\|end_header_id\|>\n\n$/s);
  assert.match(first.chosen, /<\|eot_id\|>$/);

  const script = readFileSync(join(out, 'train.py'), 'utf8');
  const compiled = spawnSync('/usr/bin/python3', ['-m', 'py_compile', join(out, 'train.py')], { encoding: 'utf8' });
  assert.equal(compiled.status, 0, compiled.stderr);
  assert.match(script, /from trl import DPOConfig, DPOTrainer/);
  assert.match(script, /beta=0\.25,\s+# finch: beta/);
  assert.match(script, /label_smoothing=0\.1,\s+# finch: labelSmoothing/);
  assert.match(script, /loss_type=\["sigmoid"\]/);
  assert.match(script, /INIT_ADAPTER = None/);
  assert.match(script, /r=8,\s+# finch: lora.rank/);
  const readme = readFileSync(join(out, 'README.md'), 'utf8');
  assert.match(readme, /pip install torch transformers peft accelerate trl datasets\n/);
  assert.match(readme, /finch eval --method dpo/);
  assert.match(readme, /The DPO reference is the base with the LoRA switched off/);

  const orpoOut = join(root, 'export-orpo');
  await exportAccelerate(makeRun({ ...pairsCfg, method: 'orpo', orpoLambda: 0.3, initAdapter: '/adapters/sft', out: join(root, 'run-orpo') }), orpoOut);
  const orpo = readFileSync(join(orpoOut, 'train.py'), 'utf8');
  assert.equal(spawnSync('/usr/bin/python3', ['-m', 'py_compile', join(orpoOut, 'train.py')], { encoding: 'utf8' }).status, 0);
  assert.match(orpo, /from trl\.experimental\.orpo import ORPOConfig, ORPOTrainer/);
  assert.match(orpo, /beta=0\.3,\s+# finch: orpoLambda/);
  assert.match(orpo, /INIT_ADAPTER = "\/adapters\/sft"/);
  assert.doesNotMatch(orpo, /DPOConfig|label_smoothing/);
});

test('a run whose method does not fit its data is refused', async () => {
  await assert.rejects(exportAccelerate(makeRun({ ...pairsCfg, method: 'sft', out: join(root, 'run-mismatch') }), join(root, 'mismatch')),
    (e: Error) => e instanceof AccelerateExportError && /method is sft but the data holds preference pairs/.test(e.message));
  assert.ok(!existsSync(join(root, 'mismatch')));
});

test('a 4-bit DPO run\'s train.py without CUDA or bitsandbytes says what is missing, as the SFT one does', { timeout: 120_000 }, async (t) => {
  if (!need(t, 'venv')) return;
  const out = join(root, 'export-dpo-4bit');
  await exportAccelerate(makeRun({ ...pairsCfg, quantize: true, out: join(root, 'run-dpo-4bit') }), out);
  const r = spawnSync(VENV_PYTHON, [join(out, 'train.py')], { encoding: 'utf8', timeout: 100_000 });
  assert.equal(r.status, 1, `train.py should stop: exit ${r.status ?? r.signal}\n${r.stderr}`);
  assert.match(r.stderr, /4-bit base \(QLoRA\), which needs a CUDA GPU \(torch\.cuda\.is_available\(\) is False\) and the bitsandbytes package/);
  assert.match(r.stderr, /--no-4bit/);
  assert.ok(!existsSync(join(out, 'output')));
});
