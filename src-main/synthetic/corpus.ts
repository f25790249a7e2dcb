// The built-in text that synthetic tokenizers are trained on: a few hand-written paragraphs
// (prose, dialogue, code, numbers, some non-Latin text so byte fallback is exercised) plus
// sentences generated from small word lists. Deterministic for a given size and seed.

import { Rng } from '../util/random.js';

const PARAGRAPHS = [
  `The finch is a small bird with a short, strong beak. It eats seeds, and in the spring it sings from the top of a tree. Many people put out food for finches in the winter, when seeds are hard to find.`,
  `A language model reads text one token at a time and guesses the next token. Training makes the guesses better: the model sees a sentence, predicts each word, and changes its weights a little when it is wrong.`,
  `Fine-tuning starts from a model that already knows a language and teaches it a new habit, like answering questions in a friendly voice or writing short summaries. With LoRA, only two small matrices per layer are trained.`,
  `Question: What is 12 plus 30?\nAnswer: 12 plus 30 is 42.\nQuestion: How many days are in a week?\nAnswer: There are 7 days in a week.`,
  `User: Can you help me plan a trip to the mountains?\nAssistant: Of course! How many days do you have, and do you like hiking or resting by a lake?`,
  `def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, i * 2))`,
  `const total = items.reduce((sum, item) => sum + item.price, 0);\nconsole.log(\`Total: \${total.toFixed(2)}\`);`,
  `In 2024 the library had 1,250 books, 37 tables and 4 computers. By 2025 it had 1,410 books. That is an increase of 160 books, or about 12.8%.`,
  `Café, naïve, résumé and jalapeño are words that English borrowed. Tokyo is 東京 in Japanese, and "thank you" is 谢谢 in Chinese. Some people end a message with a smile 🙂.`,
  `The river ran past the old mill, under the stone bridge, and out into the green valley where the cows were sleeping in the afternoon sun.`,
];

const NAMES = ['Ada', 'Ben', 'Chloe', 'Daniel', 'Elena', 'Farid', 'Grace', 'Hiro', 'Isabel', 'Jonas', 'Kira', 'Liam', 'Maya', 'Noah', 'Olga', 'Pedro', 'Quinn', 'Rosa', 'Sami', 'Tara', 'Umar', 'Vera', 'Wen', 'Yusuf', 'Zoe'];
const NOUNS = ['apple', 'bridge', 'garden', 'window', 'letter', 'river', 'mountain', 'kitchen', 'station', 'market', 'teacher', 'student', 'doctor', 'farmer', 'captain', 'robot', 'computer', 'program', 'bottle', 'basket', 'candle', 'engine', 'forest', 'island', 'jacket', 'ladder', 'mirror', 'needle', 'orange', 'pencil', 'pocket', 'rabbit', 'saddle', 'ticket', 'valley', 'wagon', 'blanket', 'village', 'harbor', 'castle', 'desert', 'meadow', 'planet', 'rocket', 'cookie', 'kettle', 'lantern', 'notebook', 'painting', 'question', 'answer', 'story', 'song', 'recipe', 'report', 'chapter', 'problem', 'number', 'picture', 'library', 'museum', 'hospital', 'airport', 'bakery', 'factory', 'school', 'office', 'theater', 'stadium', 'cottage', 'tower', 'tunnel', 'ocean', 'cloud', 'storm', 'winter', 'summer', 'morning', 'evening', 'weekend', 'holiday', 'journey', 'festival', 'lesson', 'meeting', 'dinner', 'breakfast', 'sandwich', 'coffee', 'tea', 'bread', 'cheese', 'soup', 'salad', 'umbrella', 'bicycle', 'train', 'boat', 'horse', 'dog', 'cat', 'bird', 'fish', 'tree', 'flower', 'stone', 'key', 'door', 'box', 'map', 'clock', 'lamp', 'chair', 'table', 'phone', 'camera', 'guitar', 'piano', 'violin'];
const ADJECTIVES = ['red', 'blue', 'green', 'yellow', 'small', 'large', 'old', 'new', 'quiet', 'noisy', 'bright', 'dark', 'warm', 'cold', 'heavy', 'light', 'simple', 'strange', 'careful', 'happy', 'tired', 'hungry', 'clever', 'gentle', 'broken', 'hidden', 'famous', 'empty', 'crowded', 'ancient', 'modern', 'tiny', 'enormous', 'wooden', 'golden', 'silver', 'sweet', 'bitter', 'fresh', 'rusty', 'shiny', 'narrow', 'wide', 'distant', 'nearby', 'curious', 'patient', 'honest', 'brave', 'lazy'];
const VERBS: [string, string][] = [['find', 'found'], ['paint', 'painted'], ['write', 'wrote'], ['explain', 'explained'], ['cook', 'cooked'], ['repair', 'repaired'], ['count', 'counted'], ['follow', 'followed'], ['open', 'opened'], ['answer', 'answered'], ['build', 'built'], ['carry', 'carried'], ['measure', 'measured'], ['watch', 'watched'], ['bring', 'brought'], ['buy', 'bought'], ['sell', 'sold'], ['draw', 'drew'], ['clean', 'cleaned'], ['visit', 'visited'], ['describe', 'described'], ['borrow', 'borrowed'], ['forget', 'forgot'], ['remember', 'remembered'], ['choose', 'chose'], ['hide', 'hid'], ['throw', 'threw'], ['catch', 'caught'], ['teach', 'taught'], ['learn', 'learned'], ['move', 'moved'], ['send', 'sent'], ['read', 'read'], ['sing', 'sang'], ['plant', 'planted'], ['wash', 'washed'], ['check', 'checked'], ['share', 'shared'], ['test', 'tested'], ['print', 'printed']];
const ADVERBS = ['slowly', 'quickly', 'carefully', 'happily', 'quietly', 'suddenly', 'finally', 'almost', 'nearly', 'easily', 'gently', 'loudly', 'always', 'never', 'often', 'sometimes', 'again', 'together'];
const PREPOSITIONS = ['in', 'near', 'behind', 'under', 'above', 'beside', 'inside', 'outside', 'across', 'through', 'around', 'along'];
const TIMES = ['yesterday', 'today', 'last night', 'this morning', 'on Monday', 'on Friday', 'in April', 'in the spring', 'after lunch', 'before dinner', 'at noon', 'during the holiday'];
const CONNECTORS = ['and then', 'because', 'although', 'so', 'while', 'but', 'after', 'before', 'when', 'until'];

function plural(n: string): string {
  if (/[^aeiou]y$/.test(n)) return n.slice(0, -1) + 'ies';
  if (/(s|x|ch|sh)$/.test(n)) return n + 'es';
  return n + 's';
}

function nounPhrase(r: Rng): string {
  const n = r.pick(NOUNS);
  switch (r.int(4)) {
    case 0: return `the ${r.pick(ADJECTIVES)} ${n}`;
    case 1: return `${r.int(2) ? 'a' : 'one'} ${r.pick(ADJECTIVES)} ${n}`.replace(/^a ([aeiou])/, 'an $1');
    case 2: return `${2 + r.int(9)} ${plural(n)}`;
    default: return `the ${n}`;
  }
}

function sentence(r: Rng): string {
  const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);
  const who = () => (r.int(2) ? r.pick(NAMES) : nounPhrase(r));
  const [verb, past] = r.pick(VERBS);
  const base = `${who()} ${r.int(3) === 0 ? r.pick(ADVERBS) + ' ' : ''}${past} ${nounPhrase(r)} ${r.pick(PREPOSITIONS)} ${nounPhrase(r)}`;
  switch (r.int(7)) {
    case 0:
      return `${cap(base)}, ${r.pick(CONNECTORS)} ${who()} ${r.pick(VERBS)[1]} ${nounPhrase(r)}.`;
    case 1:
      return `Why did ${who()} ${verb} ${nounPhrase(r)} ${r.pick(TIMES)}?`;
    case 2:
      return `${cap(base)} at ${1 + r.int(12)}:${String(r.int(60)).padStart(2, '0')}.`;
    case 3:
      return `"${cap(base)}," said ${r.pick(NAMES)}.`;
    case 4:
      return `${cap(r.pick(TIMES))}, ${base}.`;
    case 5:
      return `Can you ${verb} ${nounPhrase(r)} for me? Sure, I will ${verb} it ${r.pick(TIMES)}.`;
    default:
      return `${cap(base)}.`;
  }
}

/** About `bytes` bytes of text (default 64 KB): the paragraphs, then generated sentences. */
export function builtinCorpus(bytes = 64 * 1024, seed = 1234): string {
  const r = new Rng(seed);
  const parts: string[] = [...PARAGRAPHS];
  let size = parts.reduce((a, p) => a + p.length + 2, 0);
  while (size < bytes) {
    const n = 2 + r.int(4);
    const para = Array.from({ length: n }, () => sentence(r)).join(' ');
    parts.push(para);
    size += para.length + 2;
    // Re-insert a hand-written paragraph now and then so they stay frequent enough to merge.
    if (r.int(8) === 0) {
      const p = r.pick(PARAGRAPHS);
      parts.push(p);
      size += p.length + 2;
    }
  }
  return parts.join('\n\n');
}
