// A model folder's tokenizer as GGUF `tokenizer.*` metadata, in the two kinds llama.cpp runs for
// the Llama family:
//
//   byte-level BPE ("gpt2": Llama 3, Qwen2, Finch's demo model): tokens as they appear in
//     tokenizer.json (GPT-2's byte-to-character alphabet), the merges "a b" in rank order, and the
//     pre-tokenizer name that selects llama.cpp's split regex ("llama-bpe", "qwen2"), recognised
//     here from the regex in tokenizer.json;
//   SentencePiece ("llama": Llama 2, Mistral): pieces with "▁" for spaces, scores and types. From
//     tokenizer.model (the SentencePiece protobuf) when the folder has it; otherwise from
//     tokenizer.json, where each merged piece scores minus the rank of its first merge, so
//     llama.cpp's highest-score-first merging replays the BPE merge order.
//
// Plus special-token ids, whether BOS/EOS are added, and the chat template byte for byte.

import * as fs from 'node:fs';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { readJsonObject } from '../../util/json-file.js';
import { loadChatTemplate, loadTokenizer, TokenizerError } from '../tokenizer.js';
import { bool, f32s, i32s, str, strings, u32, type GgufValue } from './format.js';
import { READ_LIMITS, readRegularFileSync } from '../../util/regular-file.js';

/** llama.cpp's token types (the same numbers as SentencePiece's piece types). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/**
 * Split regexes of byte-level tokenizers -> llama.cpp's pre-tokenizer names. The key is the regex
 * as tokenizer.json stores it.
 */
const BPE_PRE_TOKENIZERS: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
};

type Json = Record<string, unknown>;

export interface GgufVocab {
  kind: 'gpt2' | 'llama';
  /** tokenizer.* keys, in the order they are written. */
  metadata: Map<string, GgufValue>;
  /** Token strings of the end-of-turn / end-of-text ids (Ollama's stop parameters). */
  stopTokens: string[];
}

/** Builds the tokenizer metadata of model folder `dir` for a model with `vocabSize` embedding rows. */
export function ggufVocab(dir: string, vocabSize: number): GgufVocab {
  const tokFile = path.join(dir, 'tokenizer.json');
  const tj = readJsonObject(tokFile, { required: true, missingHint: 'GGUF export needs tokenizer.json', limit: READ_LIMITS.tokenizer, what: 'a tokenizer', error: (m) => new TokenizerError(m) })!;
  const model = tj.model as Json | undefined;
  if (!model || model.type !== 'BPE') {
    throw new TokenizerError(`${tokFile}: model.type ${JSON.stringify(model?.type)} cannot be exported to GGUF; Finch exports BPE tokenizers (byte-level like Llama 3 / Qwen2, or SentencePiece-style like Llama 2 / Mistral)`);
  }
  const tok = loadTokenizer(dir);
  const added = (Array.isArray(tj.added_tokens) ? tj.added_tokens : []) as { id: number; content: string; special?: boolean }[];
  const byteLevel = usesByteLevel(tj);
  const spModel = path.join(dir, 'tokenizer.model');

  let tokens: string[], types: number[], scores: number[] | null = null, merges: string[] | null = null;
  let pre: string | null = null, addSpacePrefix: boolean | null = null;
  if (byteLevel) {
    ({ tokens, types } = baseVocab(model.vocab, tokFile));
    merges = mergeList(model.merges, tokFile);
    pre = preTokenizerName(tj, tokFile);
  } else if (model.byte_fallback === true || hasMetaspace(tj)) {
    if (fs.existsSync(spModel)) {
      ({ tokens, types, scores, addSpacePrefix } = readSentencePieceModel(spModel));
    } else {
      ({ tokens, types } = baseVocab(model.vocab, tokFile));
      scores = mergeScores(tokens, mergeList(model.merges, tokFile));
      tokens.forEach((t, id) => {
        if (/^<0x[0-9A-F]{2}>$/.test(t)) types[id] = TOKEN_TYPE.byte;
        if (t === model.unk_token) types[id] = TOKEN_TYPE.unknown;
      });
      addSpacePrefix = spaceIsPrepended(tj);
    }
  } else {
    throw new TokenizerError(`${tokFile}: a BPE tokenizer that is neither byte-level (ByteLevel pre-tokenizer) nor SentencePiece-style (byte_fallback / Metaspace); GGUF export supports those two`);
  }
  for (const a of added) {
    while (tokens.length <= a.id) { tokens.push(`[PAD${tokens.length}]`); types.push(TOKEN_TYPE.unused); scores?.push(0); }
    tokens[a.id] = a.content;
    types[a.id] = a.special === false ? TOKEN_TYPE.userDefined : TOKEN_TYPE.control;
  }
  if (tokens.length > vocabSize) {
    throw new TokenizerError(`${tokFile}: the tokenizer has ${tokens.length} ids but config.json's vocab_size is ${vocabSize}`);
  }
  // Embedding rows past the tokenizer (vocabularies padded to a multiple of 64 or 128).
  while (tokens.length < vocabSize) { tokens.push(`[PAD${tokens.length}]`); types.push(TOKEN_TYPE.unused); scores?.push(0); }

  const md = new Map<string, GgufValue>();
  const kind = byteLevel ? 'gpt2' : 'llama';
  md.set('tokenizer.ggml.model', str(kind));
  if (pre) md.set('tokenizer.ggml.pre', str(pre));
  md.set('tokenizer.ggml.tokens', strings(tokens));
  if (scores) md.set('tokenizer.ggml.scores', f32s(scores));
  md.set('tokenizer.ggml.token_type', i32s(types));
  if (merges) md.set('tokenizer.ggml.merges', strings(merges));
  if (tok.bosId !== null) md.set('tokenizer.ggml.bos_token_id', u32(tok.bosId));
  if (tok.eosIds[0] !== undefined) md.set('tokenizer.ggml.eos_token_id', u32(tok.eosIds[0]));
  const unk = typeof model.unk_token === 'string' ? tok.tokenToId(model.unk_token) : null;
  if (unk !== null) md.set('tokenizer.ggml.unknown_token_id', u32(unk));
  if (tok.padId !== null) md.set('tokenizer.ggml.padding_token_id', u32(tok.padId));
  md.set('tokenizer.ggml.add_bos_token', bool(tok.addsBos));
  const probe = tok.encode('a');
  md.set('tokenizer.ggml.add_eos_token', bool(tok.eosIds.includes(probe[probe.length - 1]!)));
  if (addSpacePrefix !== null) md.set('tokenizer.ggml.add_space_prefix', bool(addSpacePrefix));
  const template = loadChatTemplate(dir);
  if (template !== null) md.set('tokenizer.chat_template', str(template));
  return { kind, metadata: md, stopTokens: tok.eosIds.map((id) => tokens[id]!).filter(Boolean) };
}

function usesByteLevel(tj: Json): boolean {
  const has = (node: unknown): boolean => {
    if (!node || typeof node !== 'object') return false;
    const n = node as Json;
    if (n.type === 'ByteLevel') return true;
    return [n.pretokenizers, n.decoders].some((list) => Array.isArray(list) && list.some(has));
  };
  return has(tj.pre_tokenizer) || has(tj.decoder);
}

function hasMetaspace(tj: Json): boolean {
  return JSON.stringify(tj.pre_tokenizer ?? null).includes('"Metaspace"') || JSON.stringify(tj.normalizer ?? null).includes('\u2581');
}

/** SentencePiece-style tokenizer.json prepends "▁" by Metaspace(prepend_scheme) or a Prepend normalizer. */
function spaceIsPrepended(tj: Json): boolean {
  const pre = JSON.stringify(tj.pre_tokenizer ?? null);
  if (/"type":"Metaspace"/.test(pre)) return /"prepend_scheme":"(first|always)"|"add_prefix_space":true/.test(pre);
  return /"type":"Prepend","prepend":"\u2581"/.test(JSON.stringify(tj.normalizer ?? null));
}

function preTokenizerName(tj: Json, tokFile: string): string {
  const regexes: string[] = [];
  const walk = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Json;
    if (n.type === 'Split' && n.pattern && typeof (n.pattern as Json).Regex === 'string') regexes.push((n.pattern as Json).Regex as string);
    if (Array.isArray(n.pretokenizers)) n.pretokenizers.forEach(walk);
  };
  walk(tj.pre_tokenizer);
  for (const r of regexes) if (BPE_PRE_TOKENIZERS[r]) return BPE_PRE_TOKENIZERS[r];
  throw new TokenizerError(
    `${tokFile}: the byte-level pre-tokenizer ${regexes.length ? `regex ${JSON.stringify(regexes[0])}` : '(no Split regex)'} is not one Finch can name for llama.cpp; ` +
      'supported: Llama 3 ("llama-bpe") and Qwen2 ("qwen2") split patterns',
  );
}

function baseVocab(vocab: unknown, tokFile: string): { tokens: string[]; types: number[] } {
  if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new TokenizerError(`${tokFile}: model.vocab must be an object of token -> id`);
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(vocab as Record<string, number>)) tokens[id] = t;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;
  return { tokens, types: tokens.map(() => TOKEN_TYPE.normal) };
}

/** tokenizer.json writes merges as "a b" strings (older) or [a, b] pairs (newer). */
function mergeList(merges: unknown, tokFile: string): string[] {
  if (!Array.isArray(merges)) throw new TokenizerError(`${tokFile}: model.merges must be a list`);
  return merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : String(m)));
}

/**
 * SentencePiece scores from BPE merges: the piece made by merge rank r scores -r (the first merge
 * that makes it wins); pieces no merge makes score below every merged piece.
 */
function mergeScores(tokens: string[], merges: string[]): number[] {
  const rank = new Map<string, number>();
  merges.forEach((m, r) => {
    const piece = m.replace(' ', '');
    if (!rank.has(piece)) rank.set(piece, r);
  });
  return tokens.map((t, id) => -(rank.get(t) ?? merges.length + id));
}

// The part of sentencepiece_model.proto GGUF needs.
const spRoot = protobuf.Root.fromJSON({
  nested: {
    ModelProto: {
      fields: {
        pieces: { rule: 'repeated', type: 'SentencePiece', id: 1 },
        trainerSpec: { type: 'TrainerSpec', id: 2 },
        normalizerSpec: { type: 'NormalizerSpec', id: 3 },
      },
    },
    SentencePiece: { fields: { piece: { type: 'string', id: 1 }, score: { type: 'float', id: 2 }, type: { type: 'int32', id: 3 } } },
    TrainerSpec: { fields: { modelType: { type: 'int32', id: 3 } } },
    NormalizerSpec: { fields: { addDummyPrefix: { type: 'bool', id: 3 } } },
  },
});
const ModelProto = spRoot.lookupType('ModelProto');
const SP_MODEL_BPE = 2;

function readSentencePieceModel(file: string): { tokens: string[]; types: number[]; scores: number[]; addSpacePrefix: boolean } {
  let m: { pieces?: { piece?: string; score?: number; type?: number }[]; trainerSpec?: { modelType?: number }; normalizerSpec?: { addDummyPrefix?: boolean } };
  try {
    m = ModelProto.toObject(ModelProto.decode(readRegularFileSync(file, READ_LIMITS.tokenizer, { what: 'a tokenizer' })), { defaults: false }) as typeof m;
  } catch (e) {
    throw new TokenizerError(`${file}: not a SentencePiece model (${(e as Error).message})`);
  }
  const pieces = m.pieces ?? [];
  if (pieces.length === 0) throw new TokenizerError(`${file}: the SentencePiece model has no pieces`);
  const modelType = m.trainerSpec?.modelType ?? 1; // proto default: UNIGRAM
  if (modelType !== SP_MODEL_BPE) {
    throw new TokenizerError(`${file}: SentencePiece model_type ${modelType} (1 = unigram) is not supported; Llama 2 and Mistral use BPE (2)`);
  }
  return {
    tokens: pieces.map((p) => p.piece ?? ''),
    scores: pieces.map((p) => p.score ?? 0),
    types: pieces.map((p) => p.type ?? TOKEN_TYPE.normal), // proto default: NORMAL
    addSpacePrefix: m.normalizerSpec?.addDummyPrefix ?? true,
  };
}
