// Tiny random checkpoints of the families transformers itself writes (test/oracle/hf_family.py
// make: the family's config class, its model, norms perturbed, save_pretrained), with a tokenizer
// of the family's kind trained here and the chat template its instruct models ship
// (test/fixtures/chat-templates). Made once per test process, under the venv's Python.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelType } from '../../src-main/model/types.js';
import { writeTokenizer } from '../../src-main/synthetic/checkpoint.js';
import { builtinCorpus } from '../../src-main/synthetic/corpus.js';
import { type TrainedTokenizer, trainTokenizer, withAddedTokens } from '../../src-main/synthetic/tokenizers.js';
import { VENV_PYTHON } from './prerequisites.js';

const TEMPLATES = new URL('../fixtures/chat-templates/', import.meta.url).pathname;
const ORACLE = new URL('../oracle/hf_family.py', import.meta.url).pathname;

export type NewFamily = Extract<ModelType, 'qwen3' | 'gemma3_text' | 'phi3'>;

/** A family's tokenizer as its models ship it: the kind, the model's own tokens, the template, the special ids. */
interface FamilyTokenizer {
  tok: TrainedTokenizer;
  template: string;
  /** config.json's token ids (generation_config.json's too). */
  ids: { bos_token_id: number | null; eos_token_id: number | number[]; pad_token_id: number | null };
}

const cache = new Map<NewFamily, FamilyTokenizer>();

export function familyTokenizer(family: NewFamily): FamilyTokenizer {
  let t = cache.get(family);
  if (t) return t;
  const corpus = builtinCorpus();
  const template = (name: string) => readFileSync(join(TEMPLATES, name), 'utf8');
  if (family === 'qwen3') {
    // Qwen2's byte-level vocabulary, ChatML specials, <think> and </think> as plain added tokens.
    const tok = withAddedTokens(trainTokenizer('qwen2', corpus, 400), [{ content: '<think>', special: false }, { content: '</think>', special: false }]);
    const id = (s: string) => tok.ids.get(s)!;
    t = { tok, template: template('qwen3.jinja'), ids: { bos_token_id: id('<|endoftext|>'), eos_token_id: [id('<|im_end|>'), id('<|endoftext|>')], pad_token_id: id('<|endoftext|>') } };
  } else if (family === 'gemma3_text') {
    const tok = withAddedTokens(trainTokenizer('gemma', corpus, 400), [{ content: '<start_of_turn>', special: true }, { content: '<end_of_turn>', special: true }]);
    const id = (s: string) => tok.ids.get(s)!;
    t = { tok, template: template('gemma3.jinja'), ids: { bos_token_id: id('<bos>'), eos_token_id: [id('<eos>'), id('<end_of_turn>')], pad_token_id: id('<pad>') } };
  } else {
    // Phi-3: Llama 2's SentencePiece vocabulary and its own role tokens.
    const roles = ['<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>'];
    const base = withAddedTokens(trainTokenizer('sentencepiece', corpus, 400), roles.map((content) => ({ content, special: true })));
    const tok = { ...base, eos: '<|endoftext|>', pad: '<|endoftext|>' };
    const id = (s: string) => tok.ids.get(s)!;
    t = { tok, template: template('phi3.5-mini.jinja'), ids: { bos_token_id: id('<s>'), eos_token_id: [id('<|end|>'), id('<|endoftext|>')], pad_token_id: id('<|endoftext|>') } };
  }
  cache.set(family, t);
  return t;
}

export interface HfCheckpointSpec {
  family: NewFamily;
  /** transformers config fields besides the vocabulary and token ids (shapes, RoPE, windows, ...). */
  config: Record<string, unknown>;
  seed?: number;
}

/**
 * The checkpoint folders of `specs` under `root/<name>` (one transformers run for all that are not
 * there yet): config.json, model.safetensors and generation_config.json from transformers,
 * tokenizer.json and tokenizer_config.json from here.
 */
export function hfCheckpoints<K extends string>(root: string, specs: Record<K, HfCheckpointSpec>): Record<K, string> {
  const dirs = {} as Record<K, string>;
  const todo: object[] = [];
  for (const [name, spec] of Object.entries(specs) as [K, HfCheckpointSpec][]) {
    const dir = dirs[name] = join(root, name);
    if (existsSync(join(dir, 'model.safetensors'))) continue;
    mkdirSync(dir, { recursive: true });
    const { tok, template, ids } = familyTokenizer(spec.family);
    writeTokenizer(dir, tok, spec.family, template);
    todo.push({ out: dir, model_type: spec.family, seed: spec.seed ?? 0, config: { vocab_size: tok.vocabSize, ...ids, ...spec.config } });
  }
  if (todo.length) {
    const specFile = join(root, `specs-${process.pid}-${Date.now()}.json`);
    writeFileSync(specFile, JSON.stringify(todo));
    execFileSync(VENV_PYTHON, [ORACLE, 'make', specFile], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  }
  return dirs;
}
