// `finch cache [list|clear]`: the 4-bit weight cache under FINCH_HOME (model/quant-cache.ts):
// what it holds and for which checkpoint, how much disk it takes, and removing it.

import { clearQuantCache, listQuantCache } from '../../model/quant-cache.js';
import { formatBytes } from '../../train/memory.js';
import { quantCacheDir } from '../../store/paths.js';
import { parseCommand, usageError } from '../args.js';

const USAGE = `Usage: finch cache [list|clear] [--json]

  list    the quantized-weight entries: checkpoint, block size, size on disk (the default)
  clear   delete them all (they are rebuilt on the next 4-bit load)

Entries live in FINCH_HOME/cache/int4, one file per checkpoint state and block size.`;

export async function run(argv: string[]): Promise<number> {
  const action = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'list';
  const parsed = parseCommand('cache', argv[0] === action ? argv.slice(1) : argv, { json: { type: 'boolean', default: false } }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const json = parsed.values.json;
  if (action === 'clear') {
    const freed = clearQuantCache();
    if (json) console.log(JSON.stringify({ dir: quantCacheDir(), freed_bytes: freed }));
    else console.log(`cleared ${quantCacheDir()} (${formatBytes(freed)} freed)`);
    return 0;
  }
  if (action !== 'list') return usageError('cache', `unknown action "${action}"`, USAGE);
  const entries = listQuantCache();
  const total = entries.reduce((a, e) => a + e.bytes, 0);
  if (json) {
    console.log(JSON.stringify({ dir: quantCacheDir(), total_bytes: total, entries: entries.map((e) => ({ file: e.file, checkpoint: e.checkpoint, block_size: e.blockSize, bytes: e.bytes, created: e.created })) }));
    return 0;
  }
  if (!entries.length) { console.log(`the 4-bit cache is empty (${quantCacheDir()})`); return 0; }
  for (const e of entries) console.log(`${formatBytes(e.bytes).padStart(10)}  block ${String(e.blockSize).padEnd(3)}  ${e.checkpoint}  (${e.created || 'unknown date'})`);
  console.log(`${formatBytes(total).padStart(10)}  total in ${quantCacheDir()}`);
  return 0;
}
