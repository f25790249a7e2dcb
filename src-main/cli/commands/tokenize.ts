// `finch tokenize --model DIR --text TEXT [--json] [--no-special] [--tokens]`: encodes text with a
// model folder's own tokenizer (BOS where that tokenizer adds it) and prints the ids.

import { loadTokenizer } from '../../model/tokenizer.js';
import { parseCommand } from '../args.js';

const USAGE = `Usage: finch tokenize --model DIR --text TEXT [options]

Encodes TEXT with the tokenizer of the Hugging Face model folder DIR (tokenizer.json,
tokenizer_config.json) and prints the token ids, space-separated.

Options:
  --model DIR      model folder (required)
  --text TEXT      text to encode (required; "-" reads standard input)
  --json           print {"ids": [...]} (with --tokens also {"tokens": [...]})
  --no-special     do not add special tokens (BOS/EOS) the tokenizer would add
  --tokens         also print the token strings
  -h, --help       show this help`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('tokenize', argv, {
    model: { type: 'string' },
    text: { type: 'string' },
    json: { type: 'boolean', default: false },
    'no-special': { type: 'boolean', default: false },
    tokens: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  if (values.model === undefined || values.text === undefined) {
    console.error(`finch tokenize: --model and --text are required.\n\n${USAGE}`);
    return 2;
  }
  const text = values.text === '-' ? await readStdin() : values.text;
  let ids: number[];
  let tokens: string[];
  try {
    const tok = loadTokenizer(values.model);
    ids = tok.encode(text, { addSpecialTokens: !values['no-special'] });
    tokens = ids.map((i) => tok.idToToken(i) ?? '');
  } catch (e) {
    console.error(`finch tokenize: ${(e as Error).message}`);
    return 1;
  }
  if (values.json) {
    console.log(JSON.stringify(values.tokens ? { ids, tokens } : { ids }));
  } else {
    console.log(ids.join(' '));
    if (values.tokens) console.log(tokens.map((t) => JSON.stringify(t)).join(' '));
  }
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
