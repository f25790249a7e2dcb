// `finch export gguf|ollama` end to end: the JSON line, the files (read by node-llama-cpp's GGUF
// parser), the Modelfile with FROM / ADAPTER / stop tokens and the `ollama create` line; bad
// command lines and missing folders answer with the reason and leave no file.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readGgufFileInfo } from 'node-llama-cpp';
import { savePeftAdapter } from '../../../src-main/model/adapter.js';
import { loadModelConfig } from '../../../src-main/model/config.js';
import { loraParams } from '../../../src-main/model/lora.js';
import { mulberry32 } from '../../../src-main/util/random.js';
import { finch, tempDir, tinyCheckpoint } from '../../helpers/fixtures.js';

const model = tinyCheckpoint({ hiddenSize: 64, intermediateSize: 128 });
const work = tempDir();
const cfg = loadModelConfig(model);
const spec = { rank: 4, alpha: 8, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'] as const };
const rand = mulberry32(3);
const adapter = join(work, 'adapter');
savePeftAdapter(adapter, { spec, baseModel: model, cfg, tensors: new Map(loraParams(cfg, spec).map((p) => [p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => rand() - 0.5)])) });

const metadata = async (file: string) => (await readGgufFileInfo(file, { logWarnings: false })).metadata as unknown as Record<string, Record<string, unknown>>;

test('export gguf: q8_0 merged model and a LoRA-only adapter, one JSON line each', async () => {
  const out = join(work, 'm.gguf');
  const r = await finch(['export', 'gguf', '--model', model, '--adapter', adapter, '--dtype', 'q8_0', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim());
  assert.equal(j.out, out);
  assert.equal(j.dtype, 'q8_0');
  const md = await metadata(out);
  assert.equal(md.general!.architecture, 'llama');
  assert.equal(md.general!.file_type, 7);
  assert.equal((md.llama as Record<string, unknown>).block_count, cfg.numLayers);

  const lora = join(work, 'lora.gguf');
  const l = await finch(['export', 'gguf', '--model', model, '--adapter', adapter, '--lora-only', '--out', lora, '--json']);
  assert.equal(l.code, 0, l.stderr);
  const info = await readGgufFileInfo(lora, { readTensorInfo: true, logWarnings: false });
  const amd = info.metadata as unknown as Record<string, Record<string, unknown>>;
  assert.equal(amd.general!.type, 'adapter');
  assert.equal(amd.adapter!.type, 'lora');
  assert.equal((amd.adapter!.lora as Record<string, unknown>).alpha, 8);
  const names = info.fullTensorInfo!.map((t) => t.name);
  assert.ok(names.includes('blk.0.attn_q.weight.lora_a') && names.includes('blk.1.attn_v.weight.lora_b'));
  const a = info.fullTensorInfo!.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!;
  assert.deepEqual(a.dimensions.map(Number), [cfg.hiddenSize, 4]); // ne: [in, r]
});

test('export ollama: GGUF files, a Modelfile with FROM, ADAPTER and stop tokens, and the create line', async () => {
  const dir = join(work, 'ollama');
  const r = await finch(['export', 'ollama', '--model', model, '--adapter', adapter, '--lora-only', '--out', dir, '--name', 'My Tune', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim());
  assert.deepEqual(readdirSync(dir).sort(), ['Modelfile', 'adapter.gguf', 'model.gguf']);
  const mf = readFileSync(join(dir, 'Modelfile'), 'utf8');
  assert.match(mf, /^FROM \.\/model\.gguf$/m);
  assert.match(mf, /^ADAPTER \.\/adapter\.gguf$/m);
  assert.match(mf, /^PARAMETER stop "<\|eot_id\|>"$/m);
  assert.equal(j.create_command, `ollama create my-tune -f ${JSON.stringify(join(dir, 'Modelfile'))}`);
  assert.equal((await metadata(join(dir, 'model.gguf'))).general!.type, 'model');

  const merged = join(work, 'ollama-merged');
  const m = await finch(['export', 'ollama', '--model', model, '--adapter', adapter, '--out', merged]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /ollama create ollama-merged -f/);
  assert.doesNotMatch(readFileSync(join(merged, 'Modelfile'), 'utf8'), /ADAPTER/);
});

test('bad input: usage errors exit 2; a missing output folder or model exits 1 naming it, no file left', async () => {
  const noDtype = await finch(['export', 'gguf', '--model', model, '--dtype', 'q5_k', '--out', join(work, 'x.gguf')]);
  assert.equal(noDtype.code, 2);
  assert.match(noDtype.stderr, /--dtype must be one of f32, f16, q8_0, q4_0/);
  const loraOnly = await finch(['export', 'gguf', '--model', model, '--lora-only', '--out', join(work, 'x.gguf')]);
  assert.equal(loraOnly.code, 2);
  assert.match(loraOnly.stderr, /--lora-only needs --adapter/);
  const missingDir = await finch(['export', 'gguf', '--model', model, '--out', join(work, 'nowhere', 'x.gguf')]);
  assert.equal(missingDir.code, 1);
  assert.match(missingDir.stderr, /nowhere does not exist/);
  assert.ok(!existsSync(join(work, 'nowhere')));
  const missingModel = await finch(['export', 'gguf', '--model', join(work, 'no-model'), '--out', join(work, 'y.gguf')]);
  assert.equal(missingModel.code, 1);
  assert.match(missingModel.stderr, /no-model/);
  assert.ok(!existsSync(join(work, 'y.gguf')));
  const q4Lora = await finch(['export', 'gguf', '--model', model, '--adapter', adapter, '--lora-only', '--dtype', 'q4_0', '--out', join(work, 'z.gguf')]);
  assert.equal(q4Lora.code, 1);
  assert.match(q4Lora.stderr, /exported as f32 or f16, not q4_0/);
});
