// Does config.json describe the weights beside it? Checked when a model folder is opened, from the
// safetensors headers alone (no tensor data is read), so a wrong hidden_size or layer count is
// reported at once, naming the tensor and the config field, instead of surfacing later as a byte
// count inside graph building.
// The expected names and shapes follow the state dicts of transformers' *ForCausalLM classes of
// each family ([out, in] for linear layers): Llama, Mistral, Qwen2, Qwen3, Gemma 3, Phi-3.

import { familyOf } from './family.js';
import type { ModelConfig } from './types.js';

/** One weight a config implies: HF name, shape, and the config field(s) behind each dimension. */
export interface ExpectedWeight {
  name: string;
  shape: number[];
  /** Per dimension, the config field it comes from ("hidden_size", "num_key_value_heads × head_dim"). */
  dims: string[];
  /** Why the config implies this weight, completing "tensor X is missing: ..." */
  because: string;
}

export class ConfigWeightsMismatchError extends Error {
  override name = 'ConfigWeightsMismatchError';
}

/** The HF state-dict names and shapes of a causal LM of the config's family (family.ts), in HF's module order. */
export function expectedWeights(cfg: ModelConfig): ExpectedWeight[] {
  const { hiddenSize: d, numHeads: h, numKvHeads: kv, headDim: hd, intermediateSize: f, vocabSize: v } = cfg;
  const fam = familyOf(cfg);
  const D = 'hidden_size', F = 'intermediate_size', Q = 'num_attention_heads × head_dim', KV = 'num_key_value_heads × head_dim';
  const layers = `num_hidden_layers is ${cfg.numLayers} and every layer has one`;
  const everyModel = `every ${cfg.modelType} checkpoint has one`;
  const qkvBias = cfg.modelType === 'qwen2' ? 'Qwen2 models have q/k/v biases' : 'attention_bias is true';
  const out: ExpectedWeight[] = [{ name: 'model.embed_tokens.weight', shape: [v, d], dims: ['vocab_size', D], because: everyModel }];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const norm = (name: string, size = d, field = D) => out.push({ name: `${p}.${name}.weight`, shape: [size], dims: [field], because: layers });
    if (fam.projections.includes('qkv_proj')) {
      out.push({ name: `${p}.self_attn.qkv_proj.weight`, shape: [(h + 2 * kv) * hd, d], dims: [`(num_attention_heads + 2 × num_key_value_heads) × head_dim`, D], because: layers });
    } else {
      const attn: [string, number, string][] = [['q_proj', h * hd, Q], ['k_proj', kv * hd, KV], ['v_proj', kv * hd, KV]];
      for (const [proj, rows, field] of attn) {
        out.push({ name: `${p}.self_attn.${proj}.weight`, shape: [rows, d], dims: [field, D], because: layers });
        if (cfg.attentionBias) out.push({ name: `${p}.self_attn.${proj}.bias`, shape: [rows], dims: [field], because: qkvBias });
      }
    }
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [d, h * hd], dims: [D, Q], because: layers });
    if (cfg.attentionOutputBias) out.push({ name: `${p}.self_attn.o_proj.bias`, shape: [d], dims: [D], because: 'attention_bias is true' });
    if (fam.qkNorm) {
      norm('self_attn.q_norm', hd, 'head_dim');
      norm('self_attn.k_norm', hd, 'head_dim');
    }
    const mlp: [string, number, number, string, string][] = fam.projections.includes('gate_up_proj')
      ? [['gate_up_proj', 2 * f, d, `2 × ${F}`, D], ['down_proj', d, f, D, F]]
      : [['gate_proj', f, d, F, D], ['up_proj', f, d, F, D], ['down_proj', d, f, D, F]];
    for (const [proj, rows, cols, rowField, colField] of mlp) {
      out.push({ name: `${p}.mlp.${proj}.weight`, shape: [rows, cols], dims: [rowField, colField], because: layers });
      if (cfg.mlpBias) out.push({ name: `${p}.mlp.${proj}.bias`, shape: [rows], dims: [rowField], because: 'mlp_bias is true' });
    }
    norm('input_layernorm');
    norm('post_attention_layernorm');
    if (fam.sandwichNorms) {
      norm('pre_feedforward_layernorm');
      norm('post_feedforward_layernorm');
    }
  }
  out.push({ name: 'model.norm.weight', shape: [d], dims: [D], because: everyModel });
  if (!cfg.tieWordEmbeddings) {
    out.push({ name: 'lm_head.weight', shape: [v, d], dims: ['vocab_size', D], because: 'tie_word_embeddings is false (set it to true if the model shares its embedding matrix)' });
  }
  return out;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;
const LAYER = /^model\.layers\.(\d+)\./;

/** The tensor headers of an opened checkpoint (model/safetensors.ts's Checkpoint). */
export interface WeightHeaders {
  source: string;
  tensors(): readonly { name: string; shape: readonly number[] }[];
}

/**
 * Throws ConfigWeightsMismatchError when the weights are not the ones `cfg` describes: a missing
 * tensor, a shape off in some dimension, layers or biases the config does not know, or a tokenizer
 * with more ids than the embedding has rows. `configFile` names the config in the message.
 */
export function checkWeightsMatchConfig(cfg: ModelConfig, weights: WeightHeaders, configFile: string, tokenizerVocab?: number): void {
  const fail = (msg: string): never => {
    throw new ConfigWeightsMismatchError(`${configFile} does not match the weights in ${weights.source}: ${msg}`);
  };
  const shapeOf = new Map(weights.tensors().map((t) => [t.name, t.shape]));
  const expected = expectedWeights(cfg);

  // Pre-quantized checkpoints (GPTQ, AWQ) store packed integers under other names.
  const packed = [...shapeOf.keys()].find((n) => /\.(qweight|qzeros|weight_packed)$/.test(n));
  if (packed) {
    fail(`the weights are pre-quantized (${packed}: GPTQ/AWQ packing), which Finch does not read; use the original float16/bfloat16 checkpoint (--4bit quantizes it on load)`);
  }

  // Layer count first: it explains a whole family of missing (or unused) tensors at once.
  let layersInWeights = 0;
  for (const name of shapeOf.keys()) {
    const m = LAYER.exec(name);
    if (m) layersInWeights = Math.max(layersInWeights, Number(m[1]) + 1);
  }
  if (layersInWeights !== cfg.numLayers && layersInWeights > 0) {
    fail(`num_hidden_layers is ${cfg.numLayers} but the weights hold ${layersInWeights} layers (model.layers.0 … model.layers.${layersInWeights - 1}); set num_hidden_layers to ${layersInWeights}`);
  }

  for (const w of expected) {
    const actual = shapeOf.get(w.name);
    if (!actual) {
      fail(`tensor ${w.name} is missing: ${w.because}`);
    }
    if (actual!.length !== w.shape.length || actual!.some((n, i) => n !== w.shape[i])) {
      const off = w.shape.map((n, i) => (actual![i] !== n ? i : -1)).filter((i) => i >= 0);
      const fields = actual!.length !== w.shape.length ? w.dims : off.map((i) => w.dims[i]!);
      const implied = actual!.length === w.shape.length
        ? off.map((i) => (w.dims[i]!.includes('×') ? `${w.dims[i]} = ${actual![i]}` : `${w.dims[i]} ${actual![i]}`)).join(', ')
        : '';
      fail(`tensor ${w.name} is ${shapeText(actual!)}, but the config gives ${shapeText(w.shape)} (${w.dims.join(' by ')}): ` +
        `${[...new Set(fields)].join(' and ')} ${fields.length > 1 ? 'do' : 'does'} not match the weights` + (implied ? ` (they were made with ${implied})` : ''));
    }
  }

  // Biases the config does not mention would be silently ignored: a different model.
  const known = new Set(expected.map((w) => w.name));
  for (const name of shapeOf.keys()) {
    if (known.has(name) || !name.endsWith('.bias') || !LAYER.test(name)) continue;
    if (cfg.modelType === 'qwen2' && name.endsWith('o_proj.bias')) fail(`tensor ${name} is in the weights, but Qwen2 models have no o_proj bias: is model_type right?`);
    const field = /\.mlp\./.test(name) ? 'mlp_bias' : 'attention_bias';
    fail(`tensor ${name} is in the weights, but ${field} is false; set ${field} to true if the model has these biases`);
  }

  if (tokenizerVocab !== undefined && tokenizerVocab > cfg.vocabSize) {
    fail(`the tokenizer has ${tokenizerVocab} token ids but vocab_size is ${cfg.vocabSize} (the embedding's rows): ids from ${cfg.vocabSize} up would have no embedding; is tokenizer.json from this model?`);
  }
}
