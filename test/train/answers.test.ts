// Final-answer extraction and exact match for math data: a table of real-looking GSM8K and
// MetaMathQA texts, model outputs, and the normalisation rules documented in answers.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exactMatch, exactMatchScore, extractAnswer, findAnswer, normalizeAnswer } from '../../src-main/train/answers.js';

test('extractAnswer: markers, fallbacks and what each rule found', () => {
  const table: [string, string | null, string | null][] = [
    // GSM8K references
    ['Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72', '72', 'gsm8k'],
    ['He pays 1,000 + 250 = <<1000+250=1250>>1,250\n#### 1,250', '1250', 'gsm8k'],
    ['The temperature drops to\n#### -5', '-5', 'gsm8k'],
    ['####72', '72', 'gsm8k'],
    // MetaMathQA responses
    ['Natalia sold 24 clips in May, so 48 + 24 = 72 in total.\nThe answer is: 72', '72', 'metamath'],
    ['So the fraction is $\\frac{3}{4}$.\nThe answer is: \\frac{3}{4}', '3/4', 'metamath'],
    ['the answer is 18 dollars.', '18', 'metamath'],
    ['The answer is: $18.00.', '18', 'metamath'],
    ['**The answer is: 42**', '42', 'metamath'],
    ['The answer is: (3,4)', '(3,4)', 'metamath'],
    ['The answer is: x = 5', '5', 'metamath'],
    // \boxed
    ['Thus the total is $\\boxed{72}$.', '72', 'boxed'],
    ['We get \\boxed{\\frac{1}{2}} in the end', '1/2', 'boxed'],
    ['so \\boxed{{-}7} no', '{-}7', 'boxed'],
    ['Result: \\boxed{1,000,000}', '1000000', 'boxed'],
    // the earliest marker wins (a model rambling on into a new problem)
    ['#### 12\nQuestion: Tom has 3 apples...\n#### 3', '12', 'gsm8k'],
    ['The answer is: 5\n\\boxed{6}', '5', 'metamath'],
    ['\\boxed{6} ... The answer is: 5', '6', 'boxed'],
    // an empty marker is skipped in favour of the next one
    ['#### \nThe answer is: 9', '9', 'metamath'],
    // a whole text that is a single token
    ['72', '72', 'whole'],
    ['  72.0  ', '72', 'whole'],
    ['3/4', '3/4', 'whole'],
    ['\\frac{3}{4}', '3/4', 'whole'],
    ['$1,234.50', '1234.5', 'whole'],
    // last number in running text
    ['She has 3 cats and 4 dogs, so 7 pets.', '7', 'last-number'],
    ['It costs $2,500 in total', '2500', 'last-number'],
    ['It went down by -4 degrees, from 3-4 days', '4', 'last-number'],
    ['The drop is −12 degrees overall', '-12', 'last-number'],
    ['Half of it, 3/4 of a cup', '3/4', 'last-number'],
    ['about .5 liters left', '0.5', 'last-number'],
    // nothing
    ['I do not know.', null, null],
    ['', null, null],
  ];
  for (const [text, answer, source] of table) {
    const got = findAnswer(text);
    assert.equal(got?.answer ?? null, answer, `answer of ${JSON.stringify(text)}`);
    assert.equal(got?.source ?? null, source, `rule for ${JSON.stringify(text)}`);
    assert.equal(extractAnswer(text), answer);
  }
});

test('normalizeAnswer: one spelling per number, fractions kept as strings', () => {
  const table: [string, string][] = [
    ['72', '72'], ['72.0', '72'], ['72.50', '72.5'], ['+5', '5'], ['-0', '0'], ['-0.0', '0'], ['007', '7'],
    ['.5', '0.5'], ['-.25', '-0.25'], ['1,234', '1234'], ['1,234,567.80', '1234567.8'], ['12,34', '12,34'],
    ['$5', '5'], ['\\$5', '5'], ['50%', '50'], ['50\\%', '50'], ['3 / 4', '3/4'], ['-3/4', '-3/4'], ['6/8', '6/8'],
    ['\\dfrac{6}{8}', '6/8'], ['\\frac34', '3/4'], ['\\text{(B)}', '(B)'], ['\u22127', '-7'],
    ['123456789012345678901234567890', '123456789012345678901234567890'], ['10 apples', '10'], ['1\\,000', '1000'],
  ];
  for (const [raw, want] of table) assert.equal(normalizeAnswer(raw), want, `normalizeAnswer(${JSON.stringify(raw)})`);
});

test('exactMatch compares normalised final answers of prediction and reference', () => {
  const gsm = 'Natalia sold 48/2 = 24 clips in May.\n#### 72';
  assert.equal(exactMatch('48 + 24 = 72. The answer is: 72', gsm), true);
  assert.equal(exactMatch('The answer is: 72.00', gsm), true);
  assert.equal(exactMatch('So she sold $\\boxed{72}$ clips.', gsm), true);
  assert.equal(exactMatch('she sold 72 clips', gsm), true);
  assert.equal(exactMatch('The answer is: 73', gsm), false);
  assert.equal(exactMatch('she sold 72 clips, then 5 more', gsm), false, 'the last number is 5');
  assert.equal(exactMatch('no idea', gsm), false);
  assert.equal(exactMatch('The answer is: 72', 'no answer here'), false, 'a reference without an answer matches nothing');
  assert.equal(exactMatch('#### 1,250', 'The answer is: 1250'), true);
  assert.equal(exactMatch('The answer is: 0.75', 'The answer is: \\frac{3}{4}'), false, 'fractions are not evaluated');
  assert.equal(exactMatch('The answer is: 3/4', 'The answer is: \\frac{3}{4}'), true);
  assert.equal(exactMatch('#### -8', 'The answer is: \u22128'), true);
  assert.equal(exactMatch('#### 8', '#### -8'), false);
});

test('exactMatchScore counts correct, total and unanswered', () => {
  const s = exactMatchScore([
    { prediction: 'The answer is: 3', reference: '#### 3' },
    { prediction: 'The answer is: 4', reference: '#### 3' },
    { prediction: 'no idea', reference: '#### 3' },
    { prediction: '\\boxed{10}', reference: 'The answer is: 10' },
  ]);
  assert.deepEqual(s, { correct: 2, total: 4, accuracy: 0.5, unanswered: 1 });
  assert.deepEqual(exactMatchScore([]), { correct: 0, total: 0, accuracy: 0, unanswered: 0 });
});
