// Final answers of math word problems, for `finch eval --exact-match`: pull the answer out of a
// model's completion and out of the reference, normalise both, compare as strings.
//
// Where the answer is taken from, in this order:
//   1. an explicit marker: GSM8K's `#### 72`, MetaMathQA's `The answer is: 72` (colon optional,
//      any case) or LaTeX `\boxed{72}`. When several are present the EARLIEST one wins: a model
//      that runs past its answer usually goes on to invent a new question, and the first final
//      answer it stated is the one for this problem.
//   2. no marker, and the whole text is a single token (`72`, `-3/4`, `\frac{3}{4}`): that token.
//   3. otherwise the LAST number in the text (lm-eval's "flexible extract"), since chains of
//      thought end on their result.
// Normalisation (normalizeAnswer): `$` and `\$`, `%`, markdown `**`, a trailing full stop and
// LaTeX wrappers (`\text{}`, `\boxed{}`) go; thousands separators go (`1,234` -> `1234`); numbers
// take one canonical spelling (`72.0` -> `72`, `+5` -> `5`, `.5` -> `0.5`, `−5` -> `-5`);
// fractions stay fractions (`3/4`, `\frac{3}{4}` -> `3/4`; `0.75` does not equal `3/4`, and `6/8`
// is not reduced); a number followed by words keeps the number (`18 dollars` -> `18`).

export type AnswerSource = 'gsm8k' | 'metamath' | 'boxed' | 'whole' | 'last-number';

export interface FoundAnswer {
  /** The normalised answer. */
  answer: string;
  /** Which rule found it. */
  source: AnswerSource;
}

const GSM8K_MARKER = /####/g;
const METAMATH_MARKER = /the answer is\s*:?/gi;
const BOXED_MARKER = /\\(?:boxed|fbox)\s*\{/g;

// A number in running text: thousands-grouped or plain digits, optional decimals or denominator.
// A minus counts only where it cannot be a hyphen or a subtraction (not after a word or digit).
const NUMBER_IN_TEXT = /(?:(?<![\w)\]])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\/\d+)?|(?<![\w.])\.\d+/g;
const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;
const FRACTION = /^[+-]?\d+\/\d+$/;
const LEADING_NUMBER = /^[+-]?(?:\d+(?:\.\d+)?(?:\/\d+)?|\.\d+)(?=\s+[A-Za-z])/;

/** Finds and normalises the final answer in `text`, or null when there is none. */
export function findAnswer(text: string): FoundAnswer | null {
  type Hit = { at: number; source: AnswerSource; answer: string | null };
  const hits: Hit[] = [];
  for (const m of text.matchAll(GSM8K_MARKER)) hits.push({ at: m.index, source: 'gsm8k', answer: restOfLine(text, m.index + m[0].length) });
  for (const m of text.matchAll(METAMATH_MARKER)) hits.push({ at: m.index, source: 'metamath', answer: restOfLine(text, m.index + m[0].length) });
  for (const m of text.matchAll(BOXED_MARKER)) hits.push({ at: m.index, source: 'boxed', answer: braced(text, m.index + m[0].length) });
  hits.sort((a, b) => a.at - b.at);
  for (const h of hits) {
    const answer = h.answer === null ? '' : normalizeAnswer(h.answer);
    if (answer !== '') return { answer, source: h.source };
  }
  const whole = normalize(text, false);
  if (whole !== '' && !/\s/.test(whole)) return { answer: whole, source: 'whole' };
  const numbers = [...text.replace(/\u2212/g, '-').matchAll(NUMBER_IN_TEXT)];
  const last = numbers[numbers.length - 1];
  return last ? { answer: normalizeAnswer(last[0]), source: 'last-number' } : null;
}

/** The normalised final answer of `text` (see the rules at the top of this file), or null. */
export function extractAnswer(text: string): string | null {
  return findAnswer(text)?.answer ?? null;
}

/** True when both texts have a final answer and the normalised answers are equal. */
export function exactMatch(prediction: string, reference: string): boolean {
  const p = extractAnswer(prediction);
  const r = extractAnswer(reference);
  return p !== null && r !== null && p === r;
}

export interface ExactMatchScore {
  correct: number;
  total: number;
  /** correct / total (0 for no pairs). */
  accuracy: number;
  /** Predictions in which no answer was found at all. */
  unanswered: number;
}

export function exactMatchScore(pairs: Iterable<{ prediction: string; reference: string }>): ExactMatchScore {
  let correct = 0, total = 0, unanswered = 0;
  for (const { prediction, reference } of pairs) {
    total++;
    if (extractAnswer(prediction) === null) unanswered++;
    else if (exactMatch(prediction, reference)) correct++;
  }
  return { correct, total, accuracy: total ? correct / total : 0, unanswered };
}

/** One answer string in canonical form (see the top of this file). */
export function normalizeAnswer(raw: string): string {
  return normalize(raw, true);
}

function normalize(raw: string, leadingNumber: boolean): string {
  let s = raw.replace(/\u2212/g, '-').trim();
  // Unwrap LaTeX: \boxed{x} -> x, \text{x} -> x, \frac{a}{b} -> a/b, display delimiters.
  const boxed = /\\(?:boxed|fbox)\s*\{/.exec(s);
  if (boxed) s = braced(s, boxed.index + boxed[0].length) ?? s;
  s = s.replace(/\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}/g, '$1');
  s = s.replace(/\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}/g, '$1/$2');
  s = s.replace(/\\[dt]?frac\s*(\d)(\d)/g, '$1/$2'); // \frac34
  s = s.replace(/\\[()[\]]/g, '').replace(/\\[!,;: ]/g, '');
  s = s.replace(/\\?\$/g, '').replace(/\\?%/g, '').replace(/\*\*/g, '');
  s = s.replace(/^[\s:=]+/, '').replace(/[\s.]+$/, '');
  // Thousands separators: only commas followed by exactly three digits.
  s = s.replace(/(\d),(?=\d{3}(?!\d))/g, '$1');
  s = s.replace(/\s+/g, ' ');
  const assign = /^[A-Za-z]\s*=\s*(.+)$/.exec(s); // "x = 5"
  if (assign) s = assign[1]!;
  const frac = /^([+-]?\d+)\s*\/\s*(\d+)$/.exec(s);
  if (frac) s = `${frac[1]}/${frac[2]}`;
  if (leadingNumber && !PLAIN_NUMBER.test(s) && !FRACTION.test(s)) {
    const lead = LEADING_NUMBER.exec(s); // "18 dollars"
    if (lead) s = lead[0];
  }
  if (PLAIN_NUMBER.test(s)) return canonicalNumber(s);
  if (FRACTION.test(s)) return s.replace(/^\+/, '');
  return s;
}

/** A decimal number's one spelling, on the string itself so big integers stay exact. */
function canonicalNumber(s: string): string {
  let neg = s.startsWith('-');
  let body = s.replace(/^[+-]/, '');
  let [int = '', frac = ''] = body.split('.');
  frac = frac.replace(/0+$/, '');
  int = int.replace(/^0+(?=\d)/, '') || '0';
  body = frac ? `${int}.${frac}` : int;
  if (/^0(\.0*)?$/.test(body)) neg = false; // -0 is 0
  return neg ? `-${body}` : body;
}

function restOfLine(text: string, from: number): string {
  const end = text.indexOf('\n', from);
  return text.slice(from, end < 0 ? text.length : end);
}

/** The text inside the brace group whose `{` ends just before `from`, or null if it never closes. */
function braced(text: string, from: number): string | null {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(from, i);
  }
  return null;
}
