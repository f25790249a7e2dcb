// GGUF export checked by real llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU build): the
// exported demo model in f32 and f16 continues several prompts (one chat-templated) with Finch's
// own greedy ids for 32 tokens; q8_0 agrees with Finch's float model on >= 90% of positions (q4_0 >= 85%),
// teacher-forced on Finch's continuations; a LoRA GGUF applied to the exported base, and the
// merged export, give Finch's base+adapter ids; llama.cpp tokenizes the prompts to Finch's ids;
// the chat template is carried byte for byte.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getLlama, readGgufFileInfo, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { Generator } from '../../../src-main/infer/generate.js';
import { savePeftAdapter } from '../../../src-main/model/adapter.js';
import { exportGguf, exportGgufAdapter, type GgufDtype } from '../../../src-main/model/gguf/export.js';
import { loadModel, type LoadedModel } from '../../../src-main/model/load.js';
import { loraParams, type LoraSpec } from '../../../src-main/model/lora.js';
import { Rng } from '../../../src-main/util/random.js';
import { loadChatTemplate } from '../../../src-main/model/tokenizer.js';
import { tempDir } from '../model-helpers.js';

const DEMO = new URL('../../../assets/demo/model', import.meta.url).pathname;
const N = 32;
const root = tempDir('finch-gguf-');

let llama: Llama;
let demo: LoadedModel;
let gen: Generator;
const prompts: { text: string; ids: number[] }[] = [];
const finchIds: number[][] = [];

/** Finch's greedy continuation of each prompt, EOS ignored so every row has N tokens. */
async function finchGreedy(g: Generator, ids: number[], adapter?: Map<string, Float32Array>): Promise<number[]> {
  const [r] = await g.generate({ prompts: [ids], maxNewTokens: N, eosIds: [], adapter, loraScales: adapter ? [1] : undefined });
  return r!.ids;
}

/** llama.cpp's greedy continuation, EOG tokens yielded and passed through like any other. */
async function llamaGreedy(model: LlamaModel, ids: number[], lora?: string): Promise<number[]> {
  const ctx = await model.createContext({ contextSize: 256, threads: 1, ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(ids as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(t);
      if (out.length === N) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

before(async () => {
  llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
  demo = loadModel(DEMO);
  const tok = demo.tokenizer;
  const chat = tok.applyChatTemplate([{ role: 'user', content: 'Tom has 3 apples and buys 4 more. How many apples does he have now?' }], { addGenerationPrompt: true });
  for (const text of ['What is 12 plus 7?', 'A farmer has 15 cows. He sells 6 of them.', 'Question: what is 3 times 4?\nAnswer:']) {
    prompts.push({ text, ids: tok.encode(text) });
  }
  prompts.push({ text: chat, ids: tok.encode(chat, { addSpecialTokens: false }) }); // the template writes BOS
  gen = await Generator.create(demo.weights, demo.invFreq, { maxPositions: 256, threads: 1 });
  for (const p of prompts) finchIds.push(await finchGreedy(gen, p.ids));
});

after(async () => {
  await gen?.release();
  demo?.close();
  await llama?.dispose();
});

const exported = new Map<GgufDtype, string>();
function demoGguf(dtype: GgufDtype): string {
  let f = exported.get(dtype);
  if (!f) {
    f = exportGguf({ model: DEMO, dtype, out: join(root, `demo-${dtype}.gguf`) }).out;
    exported.set(dtype, f);
  }
  return f;
}

test('llama.cpp tokenizes the prompts to Finch ids and adds BOS as Finch does; chat template byte for byte', async () => {
  const file = demoGguf('f32');
  const model = await llama.loadModel({ modelPath: file });
  try {
    assert.equal(model.tokens.shouldPrependBosToken, demo.tokenizer.addsBos);
    for (const p of prompts) {
      const body = demo.tokenizer.encode(p.text, { addSpecialTokens: false });
      assert.deepEqual(model.tokenize(p.text, true), body, `tokens of ${JSON.stringify(p.text)}`);
    }
    const odd = 'Ünïcödé 1234567 — “quotes”\n\n\ttabs  and   spaces 🙂';
    assert.deepEqual(model.tokenize(odd, true), demo.tokenizer.encode(odd, { addSpecialTokens: false }));
    const info = await readGgufFileInfo(file);
    const md = info.metadata as unknown as { tokenizer: { chat_template: string } };
    assert.equal(md.tokenizer.chat_template, loadChatTemplate(DEMO));
  } finally {
    await model.dispose();
  }
});

for (const dtype of ['f32', 'f16'] as const) {
  test(`${dtype} GGUF: llama.cpp continues every prompt with Finch's ${N} greedy ids`, async () => {
    const model = await llama.loadModel({ modelPath: demoGguf(dtype) });
    try {
      for (const [i, p] of prompts.entries()) {
        assert.deepEqual(await llamaGreedy(model, p.ids), finchIds[i], `prompt ${JSON.stringify(p.text)}`);
      }
    } finally {
      await model.dispose();
    }
  });
}

/** Positions where llama.cpp's greedy choice on `file` equals Finch's, teacher-forced on Finch's continuations. */
async function teacherForcedAgreement(file: string): Promise<{ agree: number; total: number }> {
  const model = await llama.loadModel({ modelPath: file });
  let agree = 0, total = 0;
  try {
    for (const [i, p] of prompts.entries()) {
      const ctx = await model.createContext({ contextSize: 256, threads: 1 });
      const seq = [...p.ids, ...finchIds[i]!];
      const input = seq.map((t, j) => (j >= p.ids.length - 1 && j < seq.length - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
      const out = await ctx.getSequence().controlledEvaluate(input as never);
      for (let j = p.ids.length - 1; j < seq.length - 1; j++) {
        total++;
        if (out[j]?.next.token === seq[j + 1]) agree++;
      }
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
  return { agree, total };
}

// q4_0 has no bar in the issue; 85% (measured: 98%) guards against a broken block layout, which gives noise.
for (const [dtype, bar] of [['q8_0', 0.9], ['q4_0', 0.85]] as const) {
  test(`${dtype} GGUF: greedy choice agrees with Finch float on >= ${bar * 100}% of positions, teacher-forced`, async (t) => {
    const { agree, total } = await teacherForcedAgreement(demoGguf(dtype));
    t.diagnostic(`${dtype}: ${agree} of ${total} positions agree (${((100 * agree) / total).toFixed(1)}%)`);
    assert.equal(total, N * prompts.length);
    assert.ok(agree / total >= bar, `${dtype} agrees on ${agree} of ${total} positions`);
  });
}

test('LoRA GGUF over the exported base, and the merged export, give Finch base+adapter greedy ids', async () => {
  const spec: LoraSpec = { rank: 8, alpha: 16, dropout: 0, rslora: false, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
  const tensors = new Map<string, Float32Array>();
  for (const p of loraParams(demo.config, spec)) {
    const r = Rng.forName(5, p.name);
    tensors.set(p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => r.normal() * (p.which === 'A' ? 0.06 : 0.03)));
  }
  const adapterDir = join(root, 'adapter');
  savePeftAdapter(adapterDir, { spec, baseModel: DEMO, tensors, cfg: demo.config });

  const tuned = await Generator.create(demo.weights, demo.invFreq, { maxPositions: 256, lora: spec, threads: 1 });
  const want: number[][] = [];
  try {
    for (const p of prompts) want.push(await finchGreedy(tuned, p.ids, tensors));
  } finally {
    await tuned.release();
  }
  assert.notDeepEqual(want, finchIds, 'the adapter must change the greedy continuations');

  const lora = exportGgufAdapter({ model: DEMO, adapter: adapterDir, dtype: 'f32', out: join(root, 'adapter.gguf') }).out;
  const base = await llama.loadModel({ modelPath: demoGguf('f32') });
  try {
    for (const [i, p] of prompts.entries()) assert.deepEqual(await llamaGreedy(base, p.ids, lora), want[i], `LoRA GGUF, prompt ${i}`);
  } finally {
    await base.dispose();
  }
  const merged = exportGguf({ model: DEMO, adapter: adapterDir, dtype: 'f32', out: join(root, 'merged.gguf') }).out;
  const model = await llama.loadModel({ modelPath: merged });
  try {
    for (const [i, p] of prompts.entries()) assert.deepEqual(await llamaGreedy(model, p.ids), want[i], `merged GGUF, prompt ${i}`);
  } finally {
    await model.dispose();
  }
});
