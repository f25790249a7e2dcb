// Qwen3, Gemma 3 and Phi-3 out to llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU build), on tiny
// checkpoints transformers writes (test/helpers/hf-checkpoints.ts) with each family's tokenizer
// kind and chat template: `finch export gguf` writes architectures "qwen3", "gemma3" and "phi3"
// that llama.cpp loads, tokenizes like Finch (BOS included) and continues with Finch's greedy ids;
// a random adapter merged into the export, and the same adapter as a GGUF LoRA (--lora-only) over
// the exported base, give Finch's base + adapter ids. The configs carry what llama.cpp must be told
// or given in the weights: Gemma's (1 + w) norms, q/k norms, a query_pre_attn_scalar other than
// llama.cpp's own (folded into q_norm), sliding layers every other layer with their own RoPE base,
// linear scaling of the full layers and logit soft-capping; Phi-3's fused projections, partial
// rotary and LongRoPE (long factors: the context is longer than the original 32 positions).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getLlama, readGgufFileInfo, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { Generator } from '../../../src-main/infer/generate.js';
import { savePeftAdapter } from '../../../src-main/model/adapter.js';
import { exportGguf, exportGgufAdapter } from '../../../src-main/model/gguf/export.js';
import { loadModel, type LoadedModel } from '../../../src-main/model/load.js';
import { DEFAULT_LORA, loraParams, resolveLora } from '../../../src-main/model/lora.js';
import { loadChatTemplate } from '../../../src-main/model/tokenizer.js';
import { Rng } from '../../../src-main/util/random.js';
import { type HfCheckpointSpec, hfCheckpoints } from '../../helpers/hf-checkpoints.js';
import { need, problem } from '../../helpers/prerequisites.js';
import { tempDir } from '../model-helpers.js';

const root = tempDir('finch-gguf-new-');
const N = 16, CONTEXT = 128;
const TEXTS = ['The quick brown fox jumps over 12 lazy dogs.', 'Hello   world!\nNew line, ünïcode and 3.14159'];

const shape = { hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2, initializer_range: 0.25 };
const CHECKPOINTS = {
  qwen3: { family: 'qwen3', config: { ...shape, num_hidden_layers: 2, head_dim: 32, max_position_embeddings: 512 } },
  gemma3: {
    family: 'gemma3_text', seed: 1,
    config: {
      ...shape, num_hidden_layers: 3, head_dim: 16, sliding_window: 6, sliding_window_pattern: 2, query_pre_attn_scalar: 24, max_position_embeddings: 512,
      rope_theta: 100000, rope_local_base_freq: 1000, rope_scaling: { rope_type: 'linear', factor: 2 }, final_logit_softcapping: 5.5,
      // Untied: a random tied head on sqrt(D)-scaled embeddings echoes the last token forever.
      tie_word_embeddings: false,
    },
  },
  phi3: {
    family: 'phi3', seed: 2,
    config: {
      ...shape, num_hidden_layers: 2, max_position_embeddings: 512, original_max_position_embeddings: 32, partial_rotary_factor: 0.5, tie_word_embeddings: true,
      rope_scaling: { type: 'longrope', short_factor: [1, 1.5, 2, 3], long_factor: [1.2, 2.5, 4, 9] },
    },
  },
} satisfies Record<string, HfCheckpointSpec>;
type Name = keyof typeof CHECKPOINTS;
const ARCH: Record<Name, string> = { qwen3: 'qwen3', gemma3: 'gemma3', phi3: 'phi3' };

let llama: Llama;
let dirs: Record<Name, string>;
before(async () => {
  llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' as never });
  if (!problem('venv')) dirs = hfCheckpoints(root, CHECKPOINTS);
});
after(async () => {
  await llama?.dispose();
});

async function finchGreedy(m: LoadedModel, ids: number[], adapter?: { spec: ReturnType<typeof resolveLora>; tensors: Map<string, Float32Array> }): Promise<number[]> {
  const gen = await Generator.create(m.weights, m.invFreq, { maxPositions: CONTEXT, lora: adapter?.spec ?? null, threads: 1 });
  try {
    const [r] = await gen.generate({ prompts: [ids], maxNewTokens: N, eosIds: [], adapter: adapter?.tensors, loraScales: adapter ? [1] : undefined });
    return r!.ids;
  } finally {
    await gen.release();
  }
}

async function llamaGreedy(model: LlamaModel, ids: number[], lora?: string): Promise<number[]> {
  const ctx = await model.createContext({ contextSize: CONTEXT, threads: 1, ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(ids as Token[], { temperature: 0, yieldEogToken: true })) if (out.push(t) === N) break;
    return out;
  } finally {
    await ctx.dispose();
  }
}

for (const name of Object.keys(CHECKPOINTS) as Name[]) {
  test(`${name}: llama.cpp loads the GGUF as "${ARCH[name]}", tokenizes like Finch and continues with Finch's greedy ids`, async (t) => {
    if (!need(t, 'venv')) return;
    const m = loadModel(dirs[name]);
    const file = exportGguf({ model: dirs[name], dtype: 'f32', out: join(root, `${name}.gguf`) }).out;
    const info = await readGgufFileInfo(file);
    const md = info.metadata as unknown as { general: { architecture: string }; tokenizer: { chat_template: string } };
    assert.equal(md.general.architecture, ARCH[name]);
    assert.equal(md.tokenizer.chat_template, loadChatTemplate(dirs[name]), 'the chat template, byte for byte');
    const model = await llama.loadModel({ modelPath: file });
    try {
      assert.equal(model.tokens.shouldPrependBosToken, m.tokenizer.addsBos, 'BOS flag');
      for (const text of TEXTS) assert.deepEqual(model.tokenize(text, true), m.tokenizer.encode(text, { addSpecialTokens: false }), `tokens of ${JSON.stringify(text)}`);
      // llama.cpp's SentencePiece tokenizer puts a "▁" before the text after every special token
      // (Phi-3's "<|user|>\nWhat"), Hugging Face's only at the start: their chat prompts differ
      // (docs/gguf.md). Byte-level (Qwen3) and prefix-less (Gemma) vocabularies agree.
      if (name !== 'phi3') {
        const chat = m.tokenizer.applyChatTemplate([{ role: 'user', content: 'What is 2 plus 3?' }], { addGenerationPrompt: true });
        assert.deepEqual(model.tokenize(chat, true), m.tokenizer.encode(chat, { addSpecialTokens: false }), 'the chat prompt\'s tokens, special ones included');
      }
      const ids = m.tokenizer.encode(TEXTS[0]!);
      const want = await finchGreedy(m, ids);
      assert.deepEqual(await llamaGreedy(model, ids), want, 'greedy ids');
      assert.ok(new Set(want).size > 2, `a continuation that says something: ${want}`);
    } finally {
      await model.dispose();
      m.close();
    }
  });

  test(`${name}: a merged adapter, and the adapter as a GGUF LoRA over the exported base, give Finch's base + adapter ids`, async (t) => {
    if (!need(t, 'venv')) return;
    const m = loadModel(dirs[name]);
    try {
      const spec = resolveLora(m.config, { ...DEFAULT_LORA, rank: 8, alpha: 16, dropout: 0 });
      const tensors = new Map<string, Float32Array>();
      for (const p of loraParams(m.config, spec)) {
        const r = Rng.forName(5, p.name);
        tensors.set(p.name, Float32Array.from({ length: p.shape[0] * p.shape[1] }, () => r.normal() * (p.which === 'A' ? 0.1 : 0.05)));
      }
      const adapterDir = join(root, `${name}-adapter`);
      savePeftAdapter(adapterDir, { spec, baseModel: dirs[name], tensors, cfg: m.config });
      const ids = m.tokenizer.encode(TEXTS[1]!);
      const want = await finchGreedy(m, ids, { spec, tensors });
      assert.notDeepEqual(want, await finchGreedy(m, ids), 'the adapter changes the greedy continuation');

      const merged = await llama.loadModel({ modelPath: exportGguf({ model: dirs[name], adapter: adapterDir, dtype: 'f32', out: join(root, `${name}-merged.gguf`) }).out });
      try {
        assert.deepEqual(await llamaGreedy(merged, ids), want, 'merged GGUF');
      } finally {
        await merged.dispose();
      }
      const lora = exportGgufAdapter({ model: dirs[name], adapter: adapterDir, dtype: 'f32', out: join(root, `${name}-lora.gguf`) }).out;
      const base = await llama.loadModel({ modelPath: exportGguf({ model: dirs[name], dtype: 'f32', out: join(root, `${name}-base.gguf`) }).out });
      try {
        assert.deepEqual(await llamaGreedy(base, ids, lora), want, 'GGUF LoRA over the base');
      } finally {
        await base.dispose();
      }
    } finally {
      m.close();
    }
  });
}
