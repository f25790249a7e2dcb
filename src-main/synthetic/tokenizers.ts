// Trains small tokenizers in the two layouts real Llama-family checkpoints ship, and writes them
// as tokenizer.json objects that @huggingface/tokenizers (and HF's Rust tokenizers) load:
//   llama3        byte-level BPE like Llama 3: regex split + ByteLevel, BOS via TemplateProcessing,
//                 <|begin_of_text|>, <|eot_id|>, ... as added special tokens
//   qwen2         byte-level BPE like Qwen2: NFC, Qwen's regex, no BOS, ChatML special tokens
//   sentencepiece SentencePiece-style BPE like Llama 2 / Mistral / Phi-3: Metaspace "▁", byte
//                 fallback to <0x00>..<0xFF>, <unk> <s> </s>
//   gemma         SentencePiece-style BPE like Gemma: spaces replaced by "▁" but none prepended,
//                 byte fallback, <pad> <eos> <bos> <unk>
// (withAddedTokens adds a model's own tokens: Qwen3's <think>, Gemma's turn markers, Phi-3's roles.)
// Plus the chat templates that go with them (written for Finch, in the formats those models use).

import * as hfTokenizers from '@huggingface/tokenizers';
import { trainBpe, type BpeWord } from './bpe.js';

export type TokenizerFamily = 'llama3' | 'qwen2' | 'sentencepiece' | 'gemma';

export interface TrainedTokenizer {
  family: TokenizerFamily;
  /** The tokenizer.json object. */
  tokenizerJson: Record<string, unknown>;
  /** Total ids (model vocab + added tokens). */
  vocabSize: number;
  bos: string | null;
  /** tokenizer_config.json's eos_token (the end of an assistant turn in the chat template). */
  eos: string;
  /** Other ids generation should stop on (generation_config.json), as token strings. */
  extraEos: string[];
  pad: string | null;
  unk: string | null;
  ids: Map<string, number>;
}

// Llama 3's split pattern and Qwen2's (single digits), as they appear in those tokenizer.json files.
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const LLAMA3_SPECIALS = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|finetune_right_pad_id|>',
];
const QWEN2_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const SP_SPECIALS = ['<unk>', '<s>', '</s>'];
const GEMMA_SPECIALS = ['<pad>', '<eos>', '<bos>', '<unk>'];

// Typed by hand: the library's .d.ts cannot be resolved under NodeNext (see model/tokenizer.ts).
const SequencePreTokenizer = (
  hfTokenizers as unknown as { SequencePreTokenizer: new (config: object) => { pre_tokenize(text: string): string[] } }
).SequencePreTokenizer;

/** GPT-2's reversible byte -> printable character map used by ByteLevel. */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  return out;
}

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function countWords(pieces: Iterable<string>, into = new Map<string, number>()): Map<string, number> {
  for (const p of pieces) into.set(p, (into.get(p) ?? 0) + 1);
  return into;
}

function byteLevelPreTokenizer(pattern: string) {
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

function trainByteLevel(family: 'llama3' | 'qwen2', corpus: string, vocabSize: number): TrainedTokenizer {
  const specials = family === 'llama3' ? LLAMA3_SPECIALS : QWEN2_SPECIALS;
  const alphabet = bytesToUnicode();
  if (vocabSize < alphabet.length + specials.length) {
    throw new Error(`synthetic ${family} tokenizer: vocabSize must be at least ${alphabet.length + specials.length}`);
  }
  const preTokenizer = byteLevelPreTokenizer(family === 'llama3' ? LLAMA3_SPLIT : QWEN2_SPLIT);
  // Pre-tokenize with the very pipeline the tokenizer will run, so merges fit its pieces.
  const pre = new SequencePreTokenizer(preTokenizer);
  const text = family === 'qwen2' ? corpus.normalize('NFC') : corpus;
  const counts = new Map<string, number>();
  for (const line of text.split('\n\n')) countWords(pre.pre_tokenize(line), counts);
  const words: BpeWord[] = [...counts].map(([w, count]) => ({ symbols: Array.from(w), count }));
  const { vocab, merges } = trainBpe(words, alphabet, vocabSize - specials.length);

  const ids = new Map<string, number>();
  vocab.forEach((t, i) => ids.set(t, i));
  specials.forEach((s, i) => ids.set(s, vocab.length + i));
  const bos = family === 'llama3' ? '<|begin_of_text|>' : null;
  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s) => addedToken(ids.get(s)!, s)),
    normalizer: family === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer: preTokenizer,
    post_processor:
      family === 'llama3'
        ? {
            type: 'Sequence',
            processors: [
              { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
              {
                type: 'TemplateProcessing',
                single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
                pair: [
                  { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
                  { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
                ],
                special_tokens: { [bos!]: { id: bos, ids: [ids.get(bos!)], tokens: [bos] } },
              },
            ],
          }
        : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: family === 'llama3',
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
      merges,
    },
  };
  return family === 'llama3'
    ? { family, tokenizerJson, vocabSize: ids.size, bos, eos: '<|eot_id|>', extraEos: ['<|end_of_text|>'], pad: null, unk: null, ids }
    : { family, tokenizerJson, vocabSize: ids.size, bos: null, eos: '<|im_end|>', extraEos: ['<|endoftext|>'], pad: '<|endoftext|>', unk: null, ids };
}

const BYTE_TOKENS = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);

function trainSentencePiece(corpus: string, vocabSize: number, flavour: 'sentencepiece' | 'gemma'): TrainedTokenizer {
  const SP = '\u2581';
  const gemma = flavour === 'gemma';
  const specials = gemma ? GEMMA_SPECIALS : SP_SPECIALS;
  const bos = gemma ? '<bos>' : '<s>';
  // Characters that get their own piece: frequent printable ones. Whitespace other than the
  // space (which becomes ▁) and rare characters are left to byte fallback, as in Llama 2.
  const charCounts = new Map<string, number>();
  for (const ch of corpus) if (ch !== ' ' && !/\s|\p{C}/u.test(ch)) charCounts.set(ch, (charCounts.get(ch) ?? 0) + 1);
  const fixed = specials.length + BYTE_TOKENS.length;
  if (vocabSize < fixed + 1) throw new Error(`synthetic ${flavour} tokenizer: vocabSize must be at least ${fixed + 1}`);
  const room = vocabSize - fixed - 1; // -1 for ▁
  const chars = [...charCounts]
    .filter(([, n]) => n >= 2)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, Math.floor(room / 2)) // leave at least half of the room for merges
    .map(([c]) => c);
  const alphabet = [...specials, ...BYTE_TOKENS, SP, ...chars];
  const known = new Set([SP, ...chars]);

  // Words as SentencePiece sees them: "▁word" pieces that never cross whitespace; characters
  // outside the alphabet split words (they become byte tokens, which never merge).
  const counts = new Map<string, number>();
  for (const line of corpus.split('\n')) {
    if (!line) continue;
    const normalized = (gemma ? '' : SP) + line.replaceAll(' ', SP); // Gemma prepends no "▁"
    for (const piece of normalized.match(/\u2581[^\u2581]*|[^\u2581]+/g) ?? []) {
      let cur = '';
      for (const ch of piece) {
        if (known.has(ch)) cur += ch;
        else {
          if (cur) counts.set(cur, (counts.get(cur) ?? 0) + 1);
          cur = '';
        }
      }
      if (cur) counts.set(cur, (counts.get(cur) ?? 0) + 1);
    }
  }
  const words: BpeWord[] = [...counts].map(([w, count]) => ({ symbols: Array.from(w), count }));
  const { vocab, merges } = trainBpe(words, alphabet, vocabSize);
  const ids = new Map<string, number>();
  vocab.forEach((t, i) => ids.set(t, i));
  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => addedToken(i, s)),
    normalizer: gemma ? { type: 'Replace', pattern: { String: ' ' }, content: SP } : null,
    pre_tokenizer: gemma ? null : { type: 'Metaspace', replacement: SP, prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [ids.get(bos)], tokens: [bos] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SP }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(gemma ? [] : [{ type: 'Strip', content: ' ', start: 1, stop: 0 }]),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
      merges,
    },
  };
  return gemma
    ? { family: flavour, tokenizerJson, vocabSize: ids.size, bos, eos: '<eos>', extraEos: [], pad: '<pad>', unk: '<unk>', ids }
    : { family: flavour, tokenizerJson, vocabSize: ids.size, bos, eos: '</s>', extraEos: [], pad: null, unk: '<unk>', ids };
}

/**
 * The tokenizer with `tokens` added after its last id (tokenizer.json's added_tokens), as a
 * model's own tokens are: special ones (Gemma's <start_of_turn>) or not (Qwen3's <think>).
 */
export function withAddedTokens(tok: TrainedTokenizer, tokens: readonly { content: string; special: boolean }[]): TrainedTokenizer {
  const json = structuredClone(tok.tokenizerJson) as { added_tokens: ReturnType<typeof addedToken>[] };
  const ids = new Map(tok.ids);
  for (const t of tokens) {
    if (ids.has(t.content)) throw new Error(`withAddedTokens: ${t.content} is already a token`);
    ids.set(t.content, ids.size);
    json.added_tokens.push({ ...addedToken(ids.size - 1, t.content), special: t.special });
  }
  return { ...tok, tokenizerJson: json, vocabSize: ids.size, ids };
}

// Trained tokenizers are cached per process: tests build many checkpoints over the same corpus.
const cache = new Map<string, TrainedTokenizer>();

/** Trains a tokenizer of `family` with (at most) `vocabSize` ids on `corpus`. Deterministic. */
export function trainTokenizer(family: TokenizerFamily, corpus: string, vocabSize: number): TrainedTokenizer {
  const key = `${family}:${vocabSize}:${corpus.length}:${hashString(corpus)}`;
  let t = cache.get(key);
  if (!t) {
    t = family === 'sentencepiece' || family === 'gemma' ? trainSentencePiece(corpus, vocabSize, family) : trainByteLevel(family, corpus, vocabSize);
    cache.set(key, t);
  }
  return t;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// ---- chat templates ---------------------------------------------------------------------------
// Written for Finch in the prompt formats of the families (Jinja, as in tokenizer_config.json).

export type ChatTemplateName = 'llama3' | 'llama2' | 'mistral' | 'chatml';

export const CHAT_TEMPLATES: Record<ChatTemplateName, string> = {
  // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>...
  llama3: String.raw`{{- bos_token -}}
{%- for message in messages -%}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%}`,

  // <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] ... [/INST]
  llama2: String.raw`{%- if messages[0]['role'] == 'system' -%}
{%- set system = '<<SYS>>\n' + messages[0]['content'] | trim + '\n<</SYS>>\n\n' -%}
{%- set turns = messages[1:] -%}
{%- else -%}
{%- set system = '' -%}
{%- set turns = messages -%}
{%- endif -%}
{%- for message in turns -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{- raise_exception('Conversation roles must alternate user/assistant/user/... after an optional system message') -}}
{%- endif -%}
{%- if message['role'] == 'user' -%}
{{- bos_token + '[INST] ' + (system if loop.first else '') + message['content'] | trim + ' [/INST]' -}}
{%- else -%}
{{- ' ' + message['content'] | trim + ' ' + eos_token -}}
{%- endif -%}
{%- endfor -%}`,

  // <s>[INST] sys\n\nHi [/INST]Hello</s>[INST] ... [/INST]
  mistral: String.raw`{%- if messages[0]['role'] == 'system' -%}
{%- set system = messages[0]['content'] | trim + '\n\n' -%}
{%- set turns = messages[1:] -%}
{%- else -%}
{%- set system = '' -%}
{%- set turns = messages -%}
{%- endif -%}
{{- bos_token -}}
{%- for message in turns -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{- raise_exception('Conversation roles must alternate user/assistant/user/... after an optional system message') -}}
{%- endif -%}
{%- if message['role'] == 'user' -%}
{{- '[INST] ' + (system if loop.first else '') + message['content'] | trim + ' [/INST]' -}}
{%- else -%}
{{- message['content'] | trim + eos_token -}}
{%- endif -%}
{%- endfor -%}`,

  // <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
  chatml: String.raw`{%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}`,
};
