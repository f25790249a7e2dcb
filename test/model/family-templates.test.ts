// The chat templates Qwen3, Gemma 3 and Phi-3.5 ship (test/fixtures/chat-templates, written into
// tokenizer_config.json as the models have them) render through @huggingface/jinja
// (model/tokenizer.ts) to the prompt format each model documents: Qwen3's ChatML with its <think>
// blocks (an empty one with enable_thinking false, the reasoning kept only in the last turn),
// Gemma's <start_of_turn> markers with the system message before the first user turn and "model"
// for the assistant, Phi-3's <|user|> / <|assistant|> / <|end|>. Where the venv is there,
// transformers' own apply_chat_template (Python Jinja) renders every case to the same text.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTokenizer } from '../../src-main/model/tokenizer.js';
import type { ChatMessage } from '../../src-main/model/types.js';
import { writeTokenizer } from '../../src-main/synthetic/checkpoint.js';
import { familyTokenizer, type NewFamily } from '../helpers/hf-checkpoints.js';
import { need, VENV_PYTHON } from '../helpers/prerequisites.js';
import { tempDir } from './model-helpers.js';

const root = tempDir('finch-templates-');

/** A folder with the family's tokenizer.json and tokenizer_config.json (its real chat template). */
function tokenizerFolder(family: NewFamily): string {
  const dir = join(root, family);
  const { tok, template } = familyTokenizer(family);
  writeTokenizer(dir, tok, family, template);
  return dir;
}

interface Case {
  family: NewFamily;
  what: string;
  messages: ChatMessage[];
  addGenerationPrompt: boolean;
  variables?: Record<string, unknown>;
  expected: string;
}

const SYSTEM: ChatMessage = { role: 'system', content: 'You add numbers.' };
const Q1: ChatMessage = { role: 'user', content: 'What is 2 plus 3?' };
const A1: ChatMessage = { role: 'assistant', content: '5' };
const Q2: ChatMessage = { role: 'user', content: 'And 4 plus 4?' };

const CASES: Case[] = [
  {
    family: 'qwen3', what: 'a generation prompt (thinking on: the model opens its own <think>)', messages: [SYSTEM, Q1], addGenerationPrompt: true,
    expected: '<|im_start|>system\nYou add numbers.<|im_end|>\n<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n',
  },
  {
    family: 'qwen3', what: 'enable_thinking false: an empty <think> block after the generation prompt', messages: [Q1], addGenerationPrompt: true,
    variables: { enable_thinking: false },
    expected: '<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
  },
  {
    family: 'qwen3', what: 'a conversation: reasoning dropped from earlier turns, the last answer after a <think> block', addGenerationPrompt: false,
    messages: [Q1, { role: 'assistant', content: '<think>\n2 and 3 make 5.\n</think>\n\n5' }, Q2, { role: 'assistant', content: '<think>\nTwice 4.\n</think>\n\n8' }],
    expected: '<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n<|im_start|>user\nAnd 4 plus 4?<|im_end|>\n' +
      '<|im_start|>assistant\n<think>\nTwice 4.\n</think>\n\n8<|im_end|>\n',
  },
  {
    family: 'qwen3', what: 'a training row: the final answer follows an empty <think> block', messages: [Q1, A1], addGenerationPrompt: false,
    expected: '<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n5<|im_end|>\n',
  },
  {
    family: 'gemma3_text', what: 'turn markers, the system message before the first user turn, "model" for the assistant',
    messages: [SYSTEM, Q1, A1, Q2], addGenerationPrompt: true,
    expected: '<bos><start_of_turn>user\nYou add numbers.\n\nWhat is 2 plus 3?<end_of_turn>\n<start_of_turn>model\n5<end_of_turn>\n' +
      '<start_of_turn>user\nAnd 4 plus 4?<end_of_turn>\n<start_of_turn>model\n',
  },
  {
    family: 'gemma3_text', what: 'contents are trimmed; no generation prompt', messages: [{ role: 'user', content: '  Hi there \n' }, { role: 'assistant', content: ' Hello! ' }],
    addGenerationPrompt: false,
    expected: '<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n',
  },
  {
    family: 'phi3', what: 'system, user and the assistant prompt', messages: [SYSTEM, Q1], addGenerationPrompt: true,
    expected: '<|system|>\nYou add numbers.<|end|>\n<|user|>\nWhat is 2 plus 3?<|end|>\n<|assistant|>\n',
  },
  {
    family: 'phi3', what: 'a finished conversation ends with the EOS token', messages: [Q1, A1], addGenerationPrompt: false,
    expected: '<|user|>\nWhat is 2 plus 3?<|end|>\n<|assistant|>\n5<|end|>\n<|endoftext|>',
  },
];

for (const c of CASES) {
  test(`${c.family} chat template: ${c.what}`, () => {
    const tok = loadTokenizer(tokenizerFolder(c.family));
    assert.equal(tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.addGenerationPrompt, variables: c.variables }), c.expected);
  });
}

test('Gemma 3\'s template refuses roles that do not alternate, and Finch names the template', () => {
  const tok = loadTokenizer(tokenizerFolder('gemma3_text'));
  assert.throws(() => tok.applyChatTemplate([Q1, Q2]), /chat_template failed to render \(.*Conversation roles must alternate user\/assistant/);
});

test('transformers\' apply_chat_template renders every case to the same text', (t) => {
  if (!need(t, 'venv')) return;
  const cases = CASES.map((c) => ({ dir: tokenizerFolder(c.family), messages: c.messages, add_generation_prompt: c.addGenerationPrompt, variables: c.variables ?? {} }));
  const input = join(root, 'cases.json');
  writeFileSync(input, JSON.stringify(cases));
  const script = [
    'import json, sys',
    'from transformers import AutoTokenizer',
    'out = []',
    'for c in json.load(open(sys.argv[1])):',
    '    tok = AutoTokenizer.from_pretrained(c["dir"])',
    '    out.append(tok.apply_chat_template(c["messages"], tokenize=False, add_generation_prompt=c["add_generation_prompt"], **c["variables"]))',
    'print(json.dumps(out))',
  ].join('\n');
  const r = spawnSync(VENV_PYTHON, ['-c', script, input], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const rendered = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as string[];
  CASES.forEach((c, i) => assert.equal(rendered[i], c.expected, `${c.family}: ${c.what}`));
});
