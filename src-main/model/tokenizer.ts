// tokenizer.json + tokenizer_config.json -> TextTokenizer, on @huggingface/tokenizers (the
// tokenizer pipeline) and @huggingface/jinja (chat templates). Finch adds only what transformers'
// Python side adds on top of tokenizer.json: which special tokens are BOS/EOS/PAD, Llama
// tokenizers' add_bos_token / add_eos_token, and the chat template's render context.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as hfTokenizers from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { readJsonObject, readJsonObjectAsync } from '../util/json-file.js';
import { type FileProblem, READ_LIMITS, readRegularFile, readRegularFileSync } from '../util/regular-file.js';
import { resolveModelFolder, resolveModelFolderSync } from './hf-cache.js';
import type { ChatMessage, TextTokenizer } from './types.js';

// @huggingface/tokenizers 0.2's .d.ts files use extensionless relative imports, which NodeNext
// resolution cannot follow (every export would be `any`), so the part Finch uses is typed here.
interface LibTokenizer {
  model: { vocab: string[] } | null;
  encode(text: string, opts?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], opts?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_added_tokens_decoder(): Map<number, unknown>;
}
const Tokenizer = (hfTokenizers as unknown as { Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => LibTokenizer })
  .Tokenizer;
type Tokenizer = LibTokenizer;

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

type Json = Record<string, unknown>;

const jsonOptions = (file: string, required: boolean, missingHint: string) => ({
  required, missingHint, error: (m: string) => new TokenizerError(m),
  ...(path.basename(file) === 'tokenizer.json' ? { limit: READ_LIMITS.tokenizer, what: 'a tokenizer' } : { what: 'a tokenizer or model config' }),
});

function readJson(file: string, required: boolean, missingHint: string): Json | null {
  return readJsonObject(file, jsonOptions(file, required, missingHint));
}

/** tokenizer_config.json writes special tokens as a string or as an AddedToken object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

function idList(v: unknown): number[] {
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (Array.isArray(v)) return v.filter(ok);
  return ok(v) ? [v] : [];
}

/** Tokenizer classes whose Python side rebuilds the post-processor from add_bos_token / add_eos_token. */
const LLAMA_TOKENIZER_CLASSES = /^(Llama|CodeLlama)Tokenizer(Fast)?$/;

/** A TextTokenizer over tokenizer.json, plus what debugging tools (finch tokenize) want. */
export interface HfTextTokenizer extends TextTokenizer {
  idToToken(id: number): string | null;
}

class HfTokenizer implements HfTextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly padId: number | null;
  readonly addsBos: boolean;
  readonly hasChatTemplate: boolean;

  private readonly tok: Tokenizer;
  private readonly specials: Record<string, string | null>;
  private readonly template: Template | null;
  private readonly templateSource: string;
  /** Set for Llama tokenizer classes: BOS/EOS added by Finch, not by tokenizer.json's post-processor. */
  private readonly explicitSpecials: { bos: boolean; eos: boolean } | null;

  constructor(
    tok: Tokenizer,
    cfg: Json,
    extraEos: number[],
    template: { text: string; source: string } | null,
    files: { tokenizerConfig: string },
  ) {
    this.tok = tok;
    const id = (content: string | null): number | null => (content === null ? null : this.tokenToId(content));
    this.specials = {
      bos_token: tokenContent(cfg.bos_token),
      eos_token: tokenContent(cfg.eos_token),
      unk_token: tokenContent(cfg.unk_token),
      pad_token: tokenContent(cfg.pad_token),
    };
    const vocab = tok.model?.vocab ?? [];
    let maxId = vocab.length - 1;
    for (const k of tok.get_added_tokens_decoder().keys()) maxId = Math.max(maxId, k);
    this.vocabSize = maxId + 1;

    this.padId = id(this.specials.pad_token ?? null);
    const eos: number[] = [];
    for (const e of [id(this.specials.eos_token ?? null), ...extraEos]) if (e !== null && !eos.includes(e)) eos.push(e);
    this.eosIds = eos;

    const cls = typeof cfg.tokenizer_class === 'string' ? cfg.tokenizer_class : '';
    this.explicitSpecials = LLAMA_TOKENIZER_CLASSES.test(cls)
      ? { bos: cfg.add_bos_token !== false, eos: cfg.add_eos_token === true }
      : null;

    // BOS: the configured bos_token, else whatever the post-processor puts in front.
    const probe = 'a';
    const plain = this.tok.encode(probe, { add_special_tokens: false }).ids;
    const withSpecial = this.tok.encode(probe, { add_special_tokens: true }).ids;
    const leading = withSpecial.length > plain.length && withSpecial[0] !== plain[0] ? withSpecial[0]! : null;
    this.bosId = id(this.specials.bos_token ?? null) ?? leading;
    this.addsBos = this.bosId !== null && this.encode(probe)[0] === this.bosId;

    this.templateSource = template?.source ?? files.tokenizerConfig;
    this.hasChatTemplate = template !== null;
    if (template) {
      try {
        this.template = new Template(template.text);
      } catch (e) {
        throw new TokenizerError(`${template.source}: chat_template does not parse (${(e as Error).message})`);
      }
    } else {
      this.template = null;
    }
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const add = opts.addSpecialTokens ?? true;
    if (!add || !this.explicitSpecials) return this.tok.encode(text, { add_special_tokens: add }).ids;
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    const bos = this.explicitSpecials.bos ? this.bosId : null;
    const eos = this.explicitSpecials.eos ? (this.eosIds[0] ?? null) : null;
    return [...(bos !== null ? [bos] : []), ...ids, ...(eos !== null ? [eos] : [])];
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    for (const i of ids) {
      if (!Number.isInteger(i) || i < 0 || i >= this.vocabSize) {
        throw new TokenizerError(`decode: token id ${i} is out of range (vocabulary has ${this.vocabSize} ids)`);
      }
    }
    return this.tok.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  applyChatTemplate(messages: readonly ChatMessage[], opts: { addGenerationPrompt?: boolean; variables?: Readonly<Record<string, unknown>> } = {}): string {
    if (!this.template) {
      throw new TokenizerError(
        `${this.templateSource}: no chat_template (this looks like a base model; use a plain-text ` +
          'prompt format or pick an instruct model)',
      );
    }
    try {
      return this.template.render({
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        ...this.specials,
        ...opts.variables,
      });
    } catch (e) {
      throw new TokenizerError(`${this.templateSource}: chat_template failed to render (${(e as Error).message})`);
    }
  }

  tokenToId(token: string): number | null {
    return this.tok.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tok.id_to_token(id) ?? null;
  }
}

const TOKENIZER_JSON_HINT = 'Finch needs the fast-tokenizer file tokenizer.json (tokenizer.model alone is not supported)';

/** The files of a model folder that make its tokenizer, as read (absent optional files are null). */
interface TokenizerFiles {
  dir: string;
  tokenizer: Json;
  tokenizerConfig: Json | null;
  generationConfig: Json | null;
  modelConfig: Json | null;
  /** chat_template.jinja's text, and chat_template.json. */
  jinja: string | null;
  templateJson: Json | null;
}

const fileNames = (dir: string) => ({
  tokenizer: path.join(dir, 'tokenizer.json'), tokenizerConfig: path.join(dir, 'tokenizer_config.json'),
  generationConfig: path.join(dir, 'generation_config.json'), modelConfig: path.join(dir, 'config.json'),
  jinja: path.join(dir, 'chat_template.jinja'), templateJson: path.join(dir, 'chat_template.json'),
});

const templateError = (m: string, problem: FileProblem) => (problem === 'missing' ? NO_FILE : new TokenizerError(m));
const NO_FILE = new Error('no such file');
const orNull = (e: unknown): null => {
  if (e === NO_FILE) return null;
  throw e;
};

function readJinjaSync(file: string): string | null {
  try {
    return readRegularFileSync(file, READ_LIMITS.template, { what: 'a chat template', error: templateError }).toString('utf8');
  } catch (e) {
    return orNull(e);
  }
}

function folderOf(dir: string, resolved: string): string {
  if (!fs.statSync(resolved, { throwIfNoEntry: false })?.isDirectory()) throw new TokenizerError(`model folder not found: ${dir}`);
  return resolved;
}

/**
 * Loads `dir/tokenizer.json` (required) and `dir/tokenizer_config.json`; extra EOS ids come from
 * generation_config.json and config.json. The chat template is taken from chat_template.jinja or
 * chat_template.json when present (newer transformers save it there), else tokenizer_config.json.
 * `dir` may be a Hugging Face cache folder (model/hf-cache.ts).
 */
export function loadTokenizer(dir: string): HfTextTokenizer {
  const f = fileNames(folderOf(dir, resolveModelFolderSync(dir).dir));
  const jinja = readJinjaSync(f.jinja);
  return buildTokenizer({
    dir: path.dirname(f.tokenizer),
    tokenizer: readJson(f.tokenizer, true, TOKENIZER_JSON_HINT)!,
    tokenizerConfig: readJson(f.tokenizerConfig, false, ''),
    generationConfig: readJson(f.generationConfig, false, ''),
    modelConfig: readJson(f.modelConfig, false, ''),
    jinja,
    templateJson: jinja === null ? readJson(f.templateJson, false, '') : null,
  });
}

/** loadTokenizer without blocking the event loop on its files (the server's reads). */
export async function loadTokenizerAsync(dir: string): Promise<HfTextTokenizer> {
  const f = fileNames(folderOf(dir, (await resolveModelFolder(dir)).dir));
  const json = (file: string, required: boolean, hint = '') => readJsonObjectAsync(file, jsonOptions(file, required, hint));
  const jinja = await readRegularFile(f.jinja, READ_LIMITS.template, { what: 'a chat template', error: templateError }).then((b) => b.toString('utf8'), orNull);
  return buildTokenizer({
    dir: path.dirname(f.tokenizer),
    tokenizer: (await json(f.tokenizer, true, TOKENIZER_JSON_HINT))!,
    tokenizerConfig: await json(f.tokenizerConfig, false),
    generationConfig: await json(f.generationConfig, false),
    modelConfig: await json(f.modelConfig, false),
    jinja,
    templateJson: jinja === null ? await json(f.templateJson, false) : null,
  });
}

function buildTokenizer(files: TokenizerFiles): HfTextTokenizer {
  const { tokenizer: tokJson } = files;
  const names = fileNames(files.dir);
  const tokFile = names.tokenizer, cfgFile = names.tokenizerConfig;
  const cfg = files.tokenizerConfig ?? {};
  if (!tokJson.model || typeof tokJson.model !== 'object') throw new TokenizerError(`${tokFile}: missing "model" section`);
  // The library iterates added_tokens unconditionally; an absent list means none.
  const tokenizerJson = { ...tokJson, added_tokens: Array.isArray(tokJson.added_tokens) ? tokJson.added_tokens : [] };
  // transformers >= 4.45 defaults clean_up_tokenization_spaces to false; the library to true.
  const libConfig = { ...cfg, clean_up_tokenization_spaces: cfg.clean_up_tokenization_spaces === true };
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokenizerJson, libConfig);
  } catch (e) {
    throw new TokenizerError(`${tokFile}: cannot build the tokenizer (${(e as Error).message})`);
  }
  return new HfTokenizer(
    tok,
    cfg,
    [...idList(files.generationConfig?.eos_token_id), ...idList(files.modelConfig?.eos_token_id)],
    chatTemplateOf(files, names),
    { tokenizerConfig: cfgFile },
  );
}

/** The raw chat template text of a model folder (as loadTokenizer finds it), or null for none. */
export function loadChatTemplate(dir: string): string | null {
  const f = fileNames(resolveModelFolderSync(dir).dir);
  const jinja = readJinjaSync(f.jinja);
  const files = {
    dir: path.dirname(f.tokenizer), tokenizer: {}, tokenizerConfig: readJson(f.tokenizerConfig, false, ''), generationConfig: null, modelConfig: null,
    jinja, templateJson: jinja === null ? readJson(f.templateJson, false, '') : null,
  };
  return chatTemplateOf(files, f)?.text ?? null;
}

/** chat_template.jinja, else chat_template.json, else tokenizer_config.json's chat_template. */
function chatTemplateOf(files: TokenizerFiles, names: ReturnType<typeof fileNames>): { text: string; source: string } | null {
  if (files.jinja !== null) return { text: files.jinja, source: names.jinja };
  if (files.templateJson && files.templateJson.chat_template !== undefined) return pickTemplate(files.templateJson.chat_template, names.templateJson);
  return pickTemplate((files.tokenizerConfig ?? {}).chat_template, names.tokenizerConfig);
}

/** chat_template is a string, or a list of {name, template}; Finch uses the one named "default". */
function pickTemplate(t: unknown, source: string): { text: string; source: string } | null {
  if (t === undefined || t === null) return null;
  if (typeof t === 'string') return { text: t, source };
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const d = named.find((x) => x?.name === 'default');
    if (d && typeof d.template === 'string') return { text: d.template, source };
    throw new TokenizerError(
      `${source}: chat_template lists templates ${named.map((x) => JSON.stringify(x?.name)).join(', ')} but none named "default"`,
    );
  }
  throw new TokenizerError(`${source}: chat_template must be a string or a list of {name, template}`);
}
