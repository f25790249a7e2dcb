// The text of the bundled demo: a small world of children, shops and things to count, written by
// seeded generators. Two products come from it:
//
//   pretraining documents  stories (some with sums worked in the prose: "5 and 3 make 8"), a
//                          classroom where a teacher asks and a child answers, and chat
//                          conversations (story requests, shop questions, reading comprehension)
//                          rendered with the model's chat template. The chat turns never ask
//                          "how many" and never say "The answer is:".
//   the demo dataset       MetaMathQA-style rows {query, response, type}: a word problem asked in
//                          the chat, answered with one worked step and "The answer is: N".
//
// So the base model writes fluent text about this world and can add and subtract inside a story,
// but it has never answered a counting question in the chat, nor in the dataset's format: that is
// the habit a LoRA fine-tune teaches in the demo (as MetaMathQA teaches a base model its format).
// Everything is a pure function of a seed (util/random.ts's Rng), so the corpus and the
// dataset are reproducible on every machine.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../model/safetensors.js';
import { Rng } from '../util/random.js';
import type { ChatMessage } from '../model/types.js';

// ---- the world ------------------------------------------------------------------------------

interface Kid {
  name: string;
  he: 'he' | 'she';
}

const KIDS: Kid[] = [
  ['Mia', 'she'], ['Tom', 'he'], ['Ava', 'she'], ['Leo', 'he'], ['Lily', 'she'], ['Sam', 'he'], ['Emma', 'she'],
  ['Ben', 'he'], ['Zoe', 'she'], ['Max', 'he'], ['Ella', 'she'], ['Jack', 'he'], ['Nora', 'she'], ['Owen', 'he'],
  ['Ruby', 'she'], ['Finn', 'he'], ['Lucy', 'she'], ['Noah', 'he'], ['Anna', 'she'], ['Eli', 'he'], ['Rosa', 'she'],
  ['Omar', 'he'], ['Ivy', 'she'], ['Theo', 'he'], ['Grace', 'she'], ['Hugo', 'he'], ['Maya', 'she'], ['Luke', 'he'],
].map(([name, he]) => ({ name: name!, he: he as Kid['he'] }));

interface Item {
  one: string;
  many: string;
  /** Can be eaten (for "ate 3 of them"). */
  food: boolean;
}

interface Shop {
  name: string; // "the bakery"
  keeper: string; // "Mr. Brown"
  items: Item[];
  smell: string;
}

const item = (one: string, many: string, food = false): Item => ({ one, many, food });

const SHOPS: Shop[] = [
  { name: 'the bakery', keeper: 'Mr. Brown', smell: 'warm bread', items: [item('muffin', 'muffins', true), item('cookie', 'cookies', true), item('bun', 'buns', true), item('pie', 'pies', true)] },
  { name: 'the fruit stand', keeper: 'Mrs. Green', smell: 'ripe peaches', items: [item('apple', 'apples', true), item('pear', 'pears', true), item('orange', 'oranges', true), item('plum', 'plums', true), item('lemon', 'lemons', true)] },
  { name: 'the toy shop', keeper: 'Mr. Gray', smell: 'new paint', items: [item('marble', 'marbles'), item('toy car', 'toy cars'), item('ball', 'balls'), item('kite', 'kites'), item('balloon', 'balloons')] },
  { name: 'the book shop', keeper: 'Mrs. Reed', smell: 'old paper', items: [item('book', 'books'), item('sticker', 'stickers'), item('pencil', 'pencils'), item('crayon', 'crayons'), item('card', 'cards')] },
  { name: 'the flower shop', keeper: 'Miss Rose', smell: 'fresh roses', items: [item('rose', 'roses'), item('tulip', 'tulips'), item('daisy', 'daisies'), item('seed packet', 'seed packets')] },
  { name: 'the farm stand', keeper: 'Mr. Hill', smell: 'fresh hay', items: [item('egg', 'eggs', true), item('carrot', 'carrots', true), item('potato', 'potatoes', true), item('strawberry', 'strawberries', true)] },
];

/** Things found outdoors rather than bought. */
const FOUND: Item[] = [item('shell', 'shells'), item('stone', 'stones'), item('leaf', 'leaves'), item('acorn', 'acorns'), item('feather', 'feathers'), item('pine cone', 'pine cones')];
const OUTDOORS = ['at the beach', 'in the park', 'by the river', 'in the garden', 'under the old tree'];
const TEACHERS = ['Mr. Lee', 'Mrs. Park', 'Miss Hall', 'Mr. Stone'];
const COMPANIONS = ['her mother', 'his mother', 'her dad', 'his dad', 'her grandma', 'his grandpa', 'a friend'];
const TIMES = ['On Saturday', 'On Monday', 'One sunny morning', 'After school', 'On a rainy day', 'In the afternoon', 'Early in the morning', 'On Sunday'];
const CONTAINERS = ['basket', 'bag', 'box', 'pocket'];
const FEELINGS = ['was very happy', 'smiled', 'laughed', 'felt proud', 'was a little sad', 'said thank you'];
const WEATHER = ['The sun was warm.', 'It was a windy day.', 'The sky was grey and soft rain was falling.', 'Birds were singing in the trees.', 'The street was full of people.'];

const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);
const his = (k: Kid) => (k.he === 'he' ? 'his' : 'her');
const him = (k: Kid) => (k.he === 'he' ? 'him' : 'her');
const companionOf = (r: Rng, k: Kid) => {
  const c = r.pick(COMPANIONS);
  return c.startsWith('a ') ? c : c.replace(/^(his|her) /, `${his(k)} `);
};
const count = (n: number, it: Item) => `${n} ${n === 1 ? it.one : it.many}`;
function listOf(xs: string[]): string {
  return xs.length === 1 ? xs[0]! : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
}
function twoKids(r: Rng): [Kid, Kid] {
  const a = r.pick(KIDS);
  let b = r.pick(KIDS);
  while (b === a) b = r.pick(KIDS);
  return [a, b];
}

// ---- sums -------------------------------------------------------------------------------------

/** One addition or subtraction with every number and the result in 0..max (answers 0..20 by default). */
export interface Sum {
  op: '+' | '-';
  a: number;
  b: number;
  c: number;
}

export function randomSum(r: Rng, max = 20): Sum {
  if (r.int(2) === 0) {
    const c = 2 + r.int(max - 1); // 2..max
    const a = 1 + r.int(c - 1); // 1..c-1
    return { op: '+', a, b: c - a, c };
  }
  const a = 2 + r.int(max - 1); // 2..max
  const b = 1 + r.int(a); // 1..a (the result may be 0)
  return { op: '-', a, b, c: a - b };
}

/** The sum as prose, in one of the ways the stories say it. */
function sayWorked(r: Rng, s: Sum): string {
  if (s.op === '+') return r.pick([`${s.a} and ${s.b} make ${s.c}`, `${s.a} + ${s.b} = ${s.c}`, `${s.a} plus ${s.b} is ${s.c}`]);
  return r.pick([`${s.a} take away ${s.b} is ${s.c}`, `${s.a} - ${s.b} = ${s.c}`, `${s.a} minus ${s.b} is ${s.c}`]);
}

// ---- stories ----------------------------------------------------------------------------------

/** A trip to a shop where something is bought or given and then counted (past tense). */
function countingStory(r: Rng): string {
  const k = r.pick(KIDS);
  const P = cap(k.he);
  const shop = r.pick(SHOPS);
  const it = r.pick(shop.items);
  const s = randomSum(r);
  const box = r.pick(CONTAINERS);
  const out: string[] = [];
  out.push(`${r.pick(TIMES)}, ${k.name} went to ${shop.name} with ${companionOf(r, k)}.`);
  if (r.int(2)) out.push(r.pick(WEATHER));
  out.push(`${P} had ${count(s.a, it)} in ${his(k)} ${box}.`);
  if (s.op === '+') {
    out.push(r.pick([
      `${shop.keeper} gave ${him(k)} ${s.b} more.`,
      `${P} bought ${s.b} more ${s.b === 1 ? it.one : it.many}.`,
      `${P} picked ${s.b} more ${s.b === 1 ? it.one : it.many} from the shelf and paid ${shop.keeper}.`,
    ]));
    out.push(r.pick([
      `${cap(sayWorked(r, s))}, so now ${k.name} had ${count(s.c, it)}.`,
      `Now ${k.name} had ${count(s.c, it)}.`,
      `${cap(sayWorked(r, s))}. ${k.name} counted them again: ${count(s.c, it)}!`,
    ]));
  } else {
    const [, friend] = twoKids(r);
    const loss = [
      `On the way home, ${k.he} gave ${s.b} to ${friend.name === k.name ? 'a friend' : friend.name}.`,
      `${P} dropped ${s.b} of them on the road.`,
      ...(it.food ? [`${P} ate ${s.b} of them on the way home.`] : [`${P} left ${s.b} of them at ${shop.name}.`]),
    ];
    out.push(r.pick(loss));
    out.push(r.pick([
      `${cap(sayWorked(r, s))}, so ${k.name} had ${count(s.c, it)} left.`,
      `Now ${k.name} had ${count(s.c, it)} left.`,
      `${cap(sayWorked(r, s))}. ${k.name} had ${count(s.c, it)} left in ${his(k)} ${box}.`,
    ]));
  }
  out.push(`${k.name} ${r.pick(FEELINGS)}.`);
  return out.join(' ');
}

/** Things found outdoors, counted (past tense). */
function findingStory(r: Rng): string {
  const [k, friend] = twoKids(r);
  const it = r.pick(FOUND);
  const s = randomSum(r);
  const where = r.pick(OUTDOORS);
  const out = [`${r.pick(TIMES)}, ${k.name} and ${friend.name} played ${where}.`];
  if (s.op === '+') {
    out.push(`${k.name} found ${count(s.a, it)}, and ${friend.name} found ${count(s.b, it)}.`);
    out.push(r.pick([
      `Together they had ${s.a} + ${s.b} = ${s.c} ${s.c === 1 ? it.one : it.many}.`,
      `${cap(sayWorked(r, s))}, so together they had ${count(s.c, it)}.`,
      `They put them in one pile and counted ${count(s.c, it)}.`,
    ]));
  } else {
    out.push(`${k.name} found ${count(s.a, it)} and gave ${s.b} to ${friend.name}.`);
    out.push(r.pick([
      `${cap(sayWorked(r, s))}, so ${k.name} kept ${count(s.c, it)}.`,
      `${k.name} kept ${count(s.c, it)}.`,
    ]));
  }
  out.push(`${friend.name} ${r.pick(FEELINGS)}.`);
  return out.join(' ');
}

/** A lesson: the teacher writes or asks a sum, a child works it out aloud (present + past). */
function classroomStory(r: Rng): string {
  const [k, other] = twoKids(r);
  const t = r.pick(TEACHERS);
  const s = randomSum(r);
  const out = [`In class, ${t} ${r.pick(['wrote', 'drew'])} ${s.a} ${s.op} ${s.b} on the board.`];
  if (r.int(2)) {
    out.push(`${k.name} counted on ${his(k)} fingers and said, "${s.a} ${s.op} ${s.b} = ${s.c}!"`);
  } else {
    const shop = r.pick(SHOPS);
    const it = r.pick(shop.items);
    const story = s.op === '+'
      ? `${other.name} has ${count(s.a, it)} and gets ${s.b} more. How many ${it.many} does ${other.he} have?`
      : `${other.name} has ${count(s.a, it)} and gives ${s.b} away. How many ${it.many} does ${other.he} have left?`;
    out.push(`"${story}" asked ${t}.`);
    out.push(`${k.name} thought for a moment. "${cap(sayWorked(r, s))}," ${k.he} said. "${other.name} has ${count(s.c, it)}."`);
  }
  out.push(r.pick([`"Very good," said ${t}.`, `"That is right," said ${t}.`, `${t} smiled and wrote the next one.`]));
  return out.join(' ');
}

/** A page of sums (homework, the board, a game): the addition and subtraction facts, densely. */
function homeworkStory(r: Rng): string {
  const k = r.pick(KIDS);
  const sums = Array.from({ length: 4 + r.int(5) }, () => randomSum(r));
  const worked = sums.map((s) => `${s.a} ${s.op} ${s.b} = ${s.c}`);
  switch (r.int(3)) {
    case 0:
      return `${r.pick(TIMES)}, ${k.name} did ${his(k)} homework. ${worked.join('. ')}. ${cap(k.he)} checked every sum twice.`;
    case 1:
      return `${r.pick(TEACHERS)} wrote some sums on the board: ${listOf(worked)}. ${k.name} copied them into ${his(k)} notebook.`;
    default: {
      const [, friend] = twoKids(r);
      const said = sums.map((s) => `${friend.name} said "${s.a} ${s.op} ${s.b}" and ${k.name} said "${s.c}".`);
      return `${k.name} and ${friend.name} played a number game ${r.pick(OUTDOORS)}. ${said.join(' ')} ${cap(k.he)} ${r.pick(FEELINGS)}.`;
    }
  }
}

/** A visit with no numbers at all: fluent text about the world. */
function visitStory(r: Rng): string {
  const k = r.pick(KIDS);
  const shop = r.pick(SHOPS);
  const [a, b] = [r.pick(shop.items), r.pick(shop.items)];
  const out = [`${r.pick(TIMES)}, ${k.name} and ${companionOf(r, k)} walked to ${shop.name}.`];
  out.push(`${cap(shop.name)} smelled of ${shop.smell}.`);
  out.push(`${shop.keeper} ${r.pick(['waved', 'smiled', 'said hello'])} and showed ${him(k)} the ${a.many}${a === b ? '' : ` and the ${b.many}`}.`);
  out.push(r.pick([
    `${k.name} chose the biggest ${a.one} and put it in ${his(k)} ${r.pick(CONTAINERS)}.`,
    `${cap(k.he)} liked the ${a.many} best.`,
    `"These are lovely," said ${k.name}.`,
  ]));
  if (r.int(2)) out.push(r.pick(WEATHER));
  out.push(`Then they went home, and ${k.name} ${r.pick(FEELINGS)}.`);
  return out.join(' ');
}

function anyStory(r: Rng): string {
  const k = r.int(20);
  if (k < 6) return countingStory(r);
  if (k < 9) return findingStory(r);
  if (k < 12) return classroomStory(r);
  if (k < 16) return homeworkStory(r);
  return visitStory(r);
}

// ---- chat -------------------------------------------------------------------------------------

interface Exchange {
  user: string;
  assistant: string;
}

function storyRequest(r: Rng): Exchange {
  const k = r.pick(KIDS);
  const story = r.int(2) ? countingStory(r) : visitStory(r);
  const named = story.match(/^[^,]+, (\w+)/)?.[1] ?? k.name;
  const user = r.pick([`Tell me a story about ${named}.`, `Can you tell me a short story?`, `Please write a story about a trip to the shops.`, `I want a story about ${named}.`]);
  return { user, assistant: story };
}

function shopQuestion(r: Rng): Exchange {
  const shop = r.pick(SHOPS);
  const it = r.pick(shop.items);
  const things = shop.items.map((i) => i.many);
  switch (r.int(4)) {
    case 0:
      return { user: `What can I buy at ${shop.name}?`, assistant: `At ${shop.name} you can buy ${listOf(things)}. ${shop.keeper} works there.` };
    case 1:
      return { user: `Who works at ${shop.name}?`, assistant: `${shop.keeper} works at ${shop.name}. ${cap(shop.name)} smells of ${shop.smell}.` };
    case 2:
      return { user: `Where can I buy ${it.many}?`, assistant: `You can buy ${it.many} at ${shop.name}. Ask ${shop.keeper}!` };
    default:
      return { user: `What does ${shop.name} smell like?`, assistant: `${cap(shop.name)} smells of ${shop.smell}.` };
  }
}

/** A short story in the user turn, then a who/where/what question about it (never "how many"). */
function readingQuestion(r: Rng): Exchange {
  const k = r.pick(KIDS);
  const shop = r.pick(SHOPS);
  const it = r.pick(shop.items);
  const n = 1 + r.int(9);
  const text = `${k.name} went to ${shop.name} and bought ${count(n, it)} from ${shop.keeper}.`;
  const qa: [string, string][] = [
    [`Where did ${k.name} go?`, `${k.name} went to ${shop.name}.`],
    [`What did ${k.name} buy?`, `${k.name} bought ${it.many}.`],
    [`Who sold the ${it.many} to ${k.name}?`, `${shop.keeper} sold the ${it.many} to ${k.name}.`],
    [`Who went to ${shop.name}?`, `${k.name} went to ${shop.name}.`],
  ];
  const [q, a] = r.pick(qa);
  return { user: `${text} ${q}`, assistant: a };
}

function smallTalk(r: Rng): Exchange {
  return r.pick([
    { user: 'Hello!', assistant: 'Hello! I know stories about the bakery, the toy shop, the school and more. What would you like to hear?' },
    { user: 'Hi, who are you?', assistant: 'I am a small helper who likes stories about children and shops.' },
    { user: 'Thank you!', assistant: 'You are welcome!' },
    { user: 'What is your favourite shop?', assistant: `I like ${r.pick(SHOPS).name} best.` },
    { user: 'Goodbye!', assistant: 'Goodbye! Come back for another story.' },
  ]);
}

/** A conversation of one to three exchanges. */
export function chatConversation(r: Rng): ChatMessage[] {
  const n = 1 + (r.int(3) === 0 ? 1 + r.int(2) : 0);
  const out: ChatMessage[] = [];
  for (let i = 0; i < n; i++) {
    const k = r.int(10);
    const ex = k < 3 ? storyRequest(r) : k < 6 ? shopQuestion(r) : k < 9 ? readingQuestion(r) : smallTalk(r);
    out.push({ role: 'user', content: ex.user }, { role: 'assistant', content: ex.assistant });
  }
  return out;
}

export type PretrainDoc = { kind: 'text'; text: string } | { kind: 'chat'; messages: ChatMessage[] };

/** The pretraining stream: about 60% plain stories and 40% chat conversations. */
export function pretrainDoc(r: Rng): PretrainDoc {
  if (r.int(10) < 6) {
    return { kind: 'text', text: anyStory(r) };
  }
  return { kind: 'chat', messages: chatConversation(r) };
}

/** Plain text over which the tokenizer is trained (stories and chat turns, no special tokens). */
export function tokenizerCorpus(seed: number, docs = 4000): string {
  const r = new Rng(seed);
  const parts: string[] = [];
  for (let i = 0; i < docs; i++) {
    const d = pretrainDoc(r);
    parts.push(d.kind === 'text' ? d.text : d.messages.map((m) => `${m.role}\n\n${m.content}`).join('\n\n'));
  }
  // The dataset's words too (the response format is new to the model, not to its tokenizer).
  const dr = new Rng(seed ^ 0x5eed);
  for (let i = 0; i < 200; i++) {
    const p = wordProblem(dr);
    parts.push(`${p.query}\n\n${p.response}`);
  }
  return parts.join('\n\n');
}

// ---- the demo dataset -------------------------------------------------------------------------

export interface WordProblem {
  query: string;
  response: string;
  /** MetaMathQA's type column: which kind of problem this is. */
  type: 'demo_add' | 'demo_sub';
  answer: number;
}

/** A word problem in the present tense, with the worked step and the final answer line. */
export function wordProblem(r: Rng, sum: Sum = randomSum(r)): WordProblem {
  const s = sum;
  const k = r.pick(KIDS);
  const P = cap(k.he);
  const [, friend] = twoKids(r);
  const other = friend.name === k.name ? 'a friend' : friend.name;
  const shop = r.pick(SHOPS);
  const it = r.int(4) === 0 ? r.pick(FOUND) : r.pick(shop.items);
  const bought = shop.items.includes(it);
  const where = bought ? `at ${shop.name}` : r.pick(OUTDOORS);
  const n = (x: number) => count(x, it);
  const thereAre = (x: number) => `There ${x === 1 ? 'is' : 'are'} ${n(x)}`;
  let query: string;
  let step: string;
  const box = r.pick(CONTAINERS);
  if (s.op === '+') {
    query = r.pick([
      bought
        ? `${k.name} has ${n(s.a)}. ${P} buys ${s.b} more at ${shop.name}. How many ${it.many} does ${k.name} have now?`
        : `${k.name} has ${n(s.a)}. ${P} finds ${s.b} more ${where}. How many ${it.many} does ${k.name} have now?`,
      `${k.name} has ${n(s.a)}. ${other} gives ${him(k)} ${s.b} more. How many ${it.many} does ${k.name} have now?`,
      `${thereAre(s.a)} in a ${box}. ${k.name} puts in ${s.b} more. How many ${it.many} are in the ${box} now?`,
      `${k.name} has ${n(s.a)} and ${other} has ${n(s.b)}. How many ${it.many} do they have together?`,
    ]);
    step = `${k.name} starts with ${n(s.a)} and adds ${s.b}: ${s.a} + ${s.b} = ${s.c}.`;
    if (query.includes('together')) step = `${k.name} has ${s.a} and ${other} has ${s.b}: ${s.a} + ${s.b} = ${s.c}.`;
    if (query.startsWith('There ')) step = `There ${s.a === 1 ? 'is' : 'are'} ${s.a} and ${k.name} adds ${s.b}: ${s.a} + ${s.b} = ${s.c}.`;
  } else {
    const ways = [
      `${k.name} has ${n(s.a)}. ${P} gives ${s.b} to ${other}. How many ${it.many} does ${k.name} have now?`,
      `${k.name} has ${n(s.a)}. ${P} loses ${s.b} of them. How many ${it.many} does ${k.name} have left?`,
      `${thereAre(s.a)} ${where}. ${k.name} takes ${s.b} of them. How many ${it.many} are left ${where}?`,
    ];
    if (it.food) ways.push(`${k.name} has ${n(s.a)}. ${P} eats ${s.b} of them. How many ${it.many} are left?`);
    query = r.pick(ways);
    step = query.startsWith('There ')
      ? `There are ${s.a} and ${k.name} takes away ${s.b}: ${s.a} - ${s.b} = ${s.c}.`
      : `${k.name} starts with ${n(s.a)} and takes away ${s.b}: ${s.a} - ${s.b} = ${s.c}.`;
  }
  return { query, response: `${step} The answer is: ${s.c}`, type: s.op === '+' ? 'demo_add' : 'demo_sub', answer: s.c };
}

export interface DemoDataset {
  train: WordProblem[];
  test: WordProblem[];
}

/**
 * Train and held-out test rows with no query in common. The test split is drawn first and every
 * train row whose query equals a test query is redrawn, so the held-out prompts are never trained on.
 */
export function demoDataset(seed: number, nTrain: number, nTest: number): DemoDataset {
  const r = new Rng(seed);
  const test: WordProblem[] = [];
  const seen = new Set<string>();
  while (test.length < nTest) {
    const p = wordProblem(r);
    if (seen.has(p.query)) continue;
    seen.add(p.query);
    test.push(p);
  }
  const testQueries = new Set(seen);
  const train: WordProblem[] = [];
  while (train.length < nTrain) {
    const p = wordProblem(r);
    if (testQueries.has(p.query)) continue;
    train.push(p);
  }
  return { train, test };
}

/** The answer a response states ("The answer is: N"), or null when it states none. */
export function extractAnswer(text: string): number | null {
  const m = /The answer is:\s*(-?\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

// ---- files ------------------------------------------------------------------------------------

export const DEMO_DATA_SEED = 2024;
export const DEMO_TRAIN_ROWS = 2000;
export const DEMO_TEST_ROWS = 200;

/** Writes train.jsonl and test.jsonl ({query, response, type} per line) into `dir`, atomically. */
export function writeDemoDataset(dir: string, seed = DEMO_DATA_SEED, nTrain = DEMO_TRAIN_ROWS, nTest = DEMO_TEST_ROWS): DemoDataset {
  const ds = demoDataset(seed, nTrain, nTest);
  fs.mkdirSync(dir, { recursive: true });
  const lines = (rows: WordProblem[]) => rows.map((p) => JSON.stringify({ query: p.query, response: p.response, type: p.type })).join('\n') + '\n';
  writeFileAtomic(path.join(dir, 'train.jsonl'), lines(ds.train));
  writeFileAtomic(path.join(dir, 'test.jsonl'), lines(ds.test));
  return ds;
}

// `node --import tsx src-main/demo/corpus.ts --out assets/demo/data` regenerates the dataset;
// `--sample N` prints N pretraining documents instead.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const sample = arg('--sample');
  if (sample) {
    const r = new Rng(Number(arg('--seed') ?? 1));
    for (let i = 0; i < Number(sample); i++) {
      const d = pretrainDoc(r);
      console.log(d.kind === 'text' ? d.text : d.messages.map((m) => `[${m.role}] ${m.content}`).join('\n'), '\n');
    }
  } else {
    const out = arg('--out');
    if (!out) {
      console.error('usage: corpus.ts --out DIR (writes the demo dataset) | --sample N [--seed S] (prints pretraining documents)');
      process.exit(2);
    }
    const ds = writeDemoDataset(out);
    console.log(`wrote ${ds.train.length} train and ${ds.test.length} test rows to ${out}`);
  }
}
