// Templating and masking: an Example becomes token ids plus a per-token "trained" flag.
//
// Chat examples render with the model's chat template (tokenizer_config.json `chat_template`)
// when it has one. The trained spans are the assistant turns: for assistant turn k, the text of
// turns [0, k) with the generation prompt is the prompt and the text of turns [0, k] ends the
// completion; both are tokenized and must be token prefixes of the whole conversation's tokens.
// When they are not (the tokenizer merged tokens across the boundary, or the template renders a
// prefix differently), the span is taken from the longest common prefix and the row is reported.
//
// Models without a chat template use Finch's fallback template "finch-alpaca" (Alpaca style):
//   [BOS]{system}\n\n### Instruction:\n{user}\n\n### Response:\n{assistant}[EOS]
// with further turns after "\n\n" (the system part only when there is a system message). Its
// pieces are tokenized separately, so the boundary is exact by construction and the prompt tokens
// equal those of encodeGenerationPrompt() at inference; the trained tokens are {assistant}[EOS].
//
// A preference pair renders as two conversations, the prompt turns followed by each answer, exactly
// as SFT renders a conversation; only the answer's assistant turns are trained (scored), whatever
// trainOn says: the prompt is the same on both sides.
//
// Raw text is tokenized with the tokenizer's own special tokens (BOS where it adds one) and every
// token is trained. EOS is appended after the last assistant turn unless the template already
// ends that turn with an EOS id (Llama 3's <|eot_id|>, ChatML's <|im_end|>), and after raw text.

import { DatasetError, RowError } from './errors.js';
import type { TemplateChoice, TextTokenizer } from '../model/types.js';
import { isChat, type ChatMessage, type Example, type PreferencePair } from './types.js';

/** 'completions' trains the assistant turns only (prompt labels -100); 'all' trains every token. */
export type TrainOn = 'completions' | 'all';
export type { TemplateChoice };

export interface EncodeOptions {
  trainOn?: TrainOn;
  template?: TemplateChoice;
}

export interface EncodedSample {
  ids: Int32Array; // [L]
  trained: Uint8Array; // [L] 1 where the token is a training target
  /** Why the prompt/completion boundary is approximate for this row, or null when exact. */
  boundaryIssue: string | null;
}

export const FALLBACK_TEMPLATE_NAME = 'finch-alpaca';
/** The fallback template, as documentation and for messages. */
export const FALLBACK_TEMPLATE = '[BOS]{system}\\n\\n### Instruction:\\n{user}\\n\\n### Response:\\n{assistant}[EOS], turns joined by \\n\\n';

type Segment = { text: string; trained: boolean } | { eos: true; trained: boolean };

/** The fallback template's pieces: prompt text, completion text and EOS markers, in order (assistant turns before `firstTrained` are not trained). */
function fallbackSegments(messages: readonly ChatMessage[], addGenerationPrompt: boolean, firstTrained = 0): Segment[] {
  const out: Segment[] = [];
  let prompt = '';
  messages.forEach((m, k) => {
    if (m.role === 'system') prompt += `${m.content}\n\n`;
    else if (m.role === 'user') prompt += `### Instruction:\n${m.content}\n\n`;
    else {
      out.push({ text: `${prompt}### Response:\n`, trained: false });
      out.push({ text: m.content, trained: k >= firstTrained }, { eos: true, trained: k >= firstTrained });
      prompt = '\n\n';
    }
  });
  const last = messages[messages.length - 1];
  if (addGenerationPrompt) out.push({ text: `${prompt}### Response:\n`, trained: false });
  else if (last && last.role !== 'assistant') out.push({ text: prompt, trained: false });
  return out.filter((s) => !('text' in s) || s.text.length > 0);
}

/** The fallback template as text (EOS as the tokenizer's EOS token text), e.g. for display. */
export function renderFallback(messages: readonly ChatMessage[], eosText: string, addGenerationPrompt = false): string {
  return fallbackSegments(messages, addGenerationPrompt).map((s) => ('eos' in s ? eosText : s.text)).join('');
}

export class SampleEncoder {
  readonly template: 'model' | 'fallback';
  readonly trainOn: TrainOn;
  /** Human-readable notes for the run log (e.g. that the fallback template is in use). */
  readonly notes: string[] = [];
  private readonly eos: ReadonlySet<number>;
  /** template 'model' without a chat template: thrown at the first chat example (raw text needs none). */
  private readonly missingTemplate: DatasetError | null = null;

  constructor(private readonly tok: TextTokenizer, opts: EncodeOptions = {}) {
    this.trainOn = opts.trainOn ?? 'completions';
    try {
      this.template = chooseTemplate(tok, opts.template ?? 'auto');
    } catch (e) {
      this.missingTemplate = e as DatasetError;
      this.template = 'fallback';
    }
    this.eos = new Set(tok.eosIds);
    if (this.template === 'fallback' && !this.missingTemplate) {
      this.notes.push(
        `${tok.hasChatTemplate ? 'using' : 'the tokenizer has no chat template; using'} Finch's fallback template "${FALLBACK_TEMPLATE_NAME}": ${FALLBACK_TEMPLATE}`,
      );
    }
    if (tok.eosIds.length === 0) this.notes.push('the tokenizer defines no EOS token; none is appended');
  }

  encode(ex: Example): EncodedSample {
    if ('chosen' in ex) throw new RowError('a preference pair (chosen/rejected) where a conversation or text was expected');
    if (!isChat(ex)) return this.encodeText(ex.text);
    const r = this.encodeConversation(ex.messages, 0);
    if (this.trainOn === 'all') r.trained.fill(1);
    return r;
  }

  /** Both sides of a pair, each the prompt turns and its answer; only the answer's assistant turns are trained. */
  encodePair(pair: PreferencePair): { chosen: EncodedSample; rejected: EncodedSample } {
    const n = pair.prompt.length;
    return { chosen: this.encodeConversation([...pair.prompt, ...pair.chosen], n), rejected: this.encodeConversation([...pair.prompt, ...pair.rejected], n) };
  }

  /** A conversation rendered by the chosen template; assistant turns from `firstTrained` on are trained. */
  private encodeConversation(messages: readonly ChatMessage[], firstTrained: number): EncodedSample {
    if (this.missingTemplate) throw this.missingTemplate;
    if (messages.length === 0) throw new RowError('empty conversation');
    return this.template === 'model' ? this.encodeWithModelTemplate(messages, firstTrained) : this.encodeWithFallback(messages, firstTrained);
  }

  private encodeText(text: string): EncodedSample {
    let ids: Int32Array = Int32Array.from(this.tok.encode(text, { addSpecialTokens: true }));
    if (this.tok.eosIds.length && !this.eos.has(ids[ids.length - 1] ?? -1)) ids = append(ids, this.tok.eosIds[0]!);
    return { ids, trained: new Uint8Array(ids.length).fill(1), boundaryIssue: null };
  }

  private encodeWithFallback(messages: readonly ChatMessage[], firstTrained: number): EncodedSample {
    const ids: number[] = [];
    const trained: number[] = [];
    const push = (toks: readonly number[], t: boolean) => {
      for (const id of toks) {
        ids.push(id);
        trained.push(t ? 1 : 0);
      }
    };
    if (this.tok.addsBos && this.tok.bosId !== null) push([this.tok.bosId], false);
    for (const s of fallbackSegments(messages, false, firstTrained)) {
      if ('eos' in s) {
        if (this.tok.eosIds.length) push([this.tok.eosIds[0]!], s.trained);
      } else push(this.tok.encode(s.text, { addSpecialTokens: false }), s.trained);
    }
    return { ids: Int32Array.from(ids), trained: Uint8Array.from(trained), boundaryIssue: null };
  }

  private render(messages: readonly ChatMessage[], addGenerationPrompt: boolean, what: string): string {
    try {
      return this.tok.applyChatTemplate(messages, { addGenerationPrompt });
    } catch (e) {
      throw new RowError(`the chat template fails on ${what}: ${(e as Error).message}`);
    }
  }

  private encodeWithModelTemplate(messages: readonly ChatMessage[], firstTrained: number): EncodedSample {
    const full = this.render(messages, false, 'the conversation');
    // Chat templates write their own special tokens (BOS included) as text, as in HF apply_chat_template.
    const fullIds = this.tok.encode(full, { addSpecialTokens: false });
    const trained = new Uint8Array(fullIds.length);
    let issue: string | null = null;
    let lastSpan: [number, number] | null = null;
    const lastIdx = messages.length - 1;
    for (let k = firstTrained; k <= lastIdx; k++) {
      if (messages[k]!.role !== 'assistant') continue;
      const pre = k === 0 ? '' : this.render(messages.slice(0, k), true, `the conversation before turn ${k + 1}`);
      const upto = k === lastIdx ? full : this.render(messages.slice(0, k + 1), false, `the conversation up to turn ${k + 1}`);
      const preIds = pre === '' ? [] : this.tok.encode(pre, { addSpecialTokens: false });
      const uptoIds = k === lastIdx ? fullIds : this.tok.encode(upto, { addSpecialTokens: false });
      const start = commonPrefix(preIds, fullIds);
      const end = commonPrefix(uptoIds, fullIds);
      if (start < preIds.length || end < uptoIds.length) {
        issue ??= full.startsWith(pre) && full.startsWith(upto)
          ? `the tokenizer merges tokens across the prompt/completion boundary of turn ${k + 1}`
          : `the chat template renders the conversation before turn ${k + 1} differently from the whole conversation`;
      }
      trained.fill(1, start, Math.max(start, end));
      lastSpan = [start, Math.max(start, end)];
    }
    const ids = Int32Array.from(fullIds);
    const lastRole = messages[lastIdx]!.role;
    if (lastRole === 'assistant' && lastSpan && this.tok.eosIds.length && !ids.subarray(...lastSpan).some((id) => this.eos.has(id))) {
      return { ids: append(ids, this.tok.eosIds[0]!), trained: appendU8(trained, 1), boundaryIssue: issue };
    }
    return { ids, trained, boundaryIssue: issue };
  }
}

/**
 * Prompt ids for generation, rendered exactly as training rendered prompts (same template
 * choice), ending with the assistant header the model continues from.
 */
export function encodeGenerationPrompt(tok: TextTokenizer, messages: readonly ChatMessage[], template: TemplateChoice = 'auto'): number[] {
  if (chooseTemplate(tok, template) === 'model') {
    return tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  }
  const ids: number[] = tok.addsBos && tok.bosId !== null ? [tok.bosId] : [];
  for (const s of fallbackSegments(messages, true)) {
    if ('eos' in s) {
      if (tok.eosIds.length) ids.push(tok.eosIds[0]!);
    } else ids.push(...tok.encode(s.text, { addSpecialTokens: false }));
  }
  return ids;
}

function chooseTemplate(tok: TextTokenizer, choice: TemplateChoice): 'model' | 'fallback' {
  if (choice === 'fallback') return 'fallback';
  if (tok.hasChatTemplate) return 'model';
  if (choice === 'model') {
    throw new DatasetError(
      `the model's tokenizer_config.json has no chat_template, which chat data needs; Finch's fallback template ` +
        `"${FALLBACK_TEMPLATE_NAME}" (${FALLBACK_TEMPLATE}) would be used instead: choose it explicitly (--template fallback) or use a model with a chat template`,
    );
  }
  return 'fallback';
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function append(a: Int32Array, v: number): Int32Array {
  const out = new Int32Array(a.length + 1);
  out.set(a);
  out[a.length] = v;
  return out;
}

function appendU8(a: Uint8Array, v: number): Uint8Array {
  const out = new Uint8Array(a.length + 1);
  out.set(a);
  out[a.length] = v;
  return out;
}
