// `finch merge`: folds a PEFT LoRA adapter into its base model and writes a merged Hugging Face
// checkpoint in the base's dtype (for tools without adapter support), tensor by tensor.

import { mergeAdapter } from '../../model/merge.js';
import { reportError } from '../errors.js';
import { createProgress } from '../progress.js';
import { parseCommand } from '../args.js';

const USAGE = `Usage: finch merge --model DIR --adapter DIR --out DIR [--overwrite] [--json]

Writes DIR (--out) = base weights + scale * B @ A for every adapted projection, in the base
checkpoint's dtype and sharding, with its config and tokenizer files.`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('merge', argv, {
    model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' },
    overwrite: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  if (!values.model || !values.adapter || !values.out) { console.error(`finch merge: --model, --adapter and --out are required.\n\n${USAGE}`); return 2; }
  let bar: ReturnType<typeof createProgress> | null = null;
  try {
    const r = await mergeAdapter(values.model, values.adapter, values.out, {
      overwrite: values.overwrite,
      onProgress: (p) => {
        bar ??= createProgress({ label: 'merge', total: p.total, unit: 'tensors', mode: values.json ? 'json' : 'auto', stream: process.stderr });
        bar.update(p.index);
      },
    });
    (bar as ReturnType<typeof createProgress> | null)?.stop();
    if (values.json) console.log(JSON.stringify({ out: r.outDir, tensors: r.tensors, merged: r.mergedTensors, scale: r.scale }));
    else console.log(`merged ${r.mergedTensors} of ${r.tensors} tensors into ${r.outDir}`);
    return 0;
  } catch (e) {
    (bar as ReturnType<typeof createProgress> | null)?.stop();
    return reportError('merge', e);
  }
}
