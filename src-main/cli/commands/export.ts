// `finch export <format>`: take a model (and adapter) or a run elsewhere.
//   gguf        one GGUF file for llama.cpp / LM Studio: merged model, or the adapter alone
//   ollama      a folder with GGUF file(s) and a Modelfile, plus the `ollama create` line
//   accelerate  a run as a Transformers + PEFT + Accelerate project for multi-GPU training

import { exportGguf, exportGgufAdapter, exportOllama, GGUF_DTYPES, type GgufDtype } from '../../model/gguf/export.js';
import { parseCommand, usageError } from '../args.js';
import { reportError } from '../errors.js';
import { createProgress } from '../progress.js';

const USAGE = `Usage: finch export <format> [options]

  gguf        --model DIR [--adapter DIR] [--lora-only] [--dtype f32|f16|q8_0|q4_0] --out FILE.gguf [--json]
              A GGUF file for llama.cpp and LM Studio: the model with the adapter merged in, or with
              --lora-only the adapter alone as a GGUF LoRA adapter (llama.cpp --lora FILE).
  ollama      --model DIR [--adapter DIR] [--lora-only] [--dtype ...] --out DIR [--name NAME] [--json]
              A folder with model.gguf (adapter.gguf with --lora-only) and a Modelfile.
  accelerate  --run DIR --out DIR [--gpus N] [--json]
              The run's dataset (as Finch tokenised it), train.py (Transformers + PEFT; TRL's
              DPOTrainer or ORPOTrainer for a dpo or orpo run), an Accelerate config (DDP; FSDP as
              an option) and a README with the launch command.

Defaults: --dtype f16.`;

const GGUF_OPTIONS = {
  model: { type: 'string' }, adapter: { type: 'string' }, 'lora-only': { type: 'boolean', default: false },
  dtype: { type: 'string', default: 'f16' }, out: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean', default: false },
} as const;

export async function run(argv: string[]): Promise<number> {
  const [format, ...rest] = argv;
  if (format === undefined || format === '--help' || format === '-h') {
    console.log(USAGE);
    return format === undefined ? 2 : 0;
  }
  if (format === 'accelerate') return runAccelerate(rest);
  if (format !== 'gguf' && format !== 'ollama') return usageError('export', `unknown format "${format}"`, USAGE);
  const parsed = parseCommand(`export ${format}`, rest, GGUF_OPTIONS, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  if (!v.model || !v.out) return usageError(`export ${format}`, '--model and --out are required', USAGE);
  if (!(GGUF_DTYPES as readonly string[]).includes(v.dtype)) return usageError(`export ${format}`, `--dtype must be one of ${GGUF_DTYPES.join(', ')}`, USAGE);
  if (v['lora-only'] && !v.adapter) return usageError(`export ${format}`, '--lora-only needs --adapter DIR', USAGE);
  const dtype = v.dtype as GgufDtype;
  let bar: ReturnType<typeof createProgress> | null = null;
  const onProgress = (i: number, total: number) => {
    bar ??= createProgress({ label: `export ${format}`, total, unit: 'tensors', mode: v.json ? 'json' : 'auto', stream: process.stderr });
    bar.update(i);
    if (i === total) { bar.stop(); bar = null; }
  };
  try {
    if (format === 'gguf') {
      const opts = { model: v.model, adapter: v.adapter ?? null, dtype, out: v.out, name: v.name, onProgress };
      const r = v['lora-only'] ? exportGgufAdapter(opts) : exportGguf(opts);
      if (v.json) console.log(JSON.stringify({ out: r.out, bytes: r.bytes, tensors: r.tensors, dtype, lora_only: v['lora-only'], notes: r.notes }));
      else {
        console.log(`wrote ${r.out} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.tensors} tensors, ${v['lora-only'] ? 'LoRA adapter' : dtype})`);
        for (const n of r.notes) console.error(`note: ${n}`);
      }
    } else {
      const r = exportOllama({ model: v.model, adapter: v.adapter ?? null, dtype, outDir: v.out, separateAdapter: v['lora-only'], modelName: v.name, onProgress });
      if (v.json) console.log(JSON.stringify({ out: r.outDir, files: r.files, modelfile: r.modelfile, create_command: r.createCommand }));
      else console.log(`wrote ${r.files.join(', ')} to ${r.outDir}\nregister it with Ollama:\n  ${r.createCommand}`);
    }
    return 0;
  } catch (e) {
    (bar as ReturnType<typeof createProgress> | null)?.stop();
    return reportError(`export ${format}`, e);
  }
}

async function runAccelerate(argv: string[]): Promise<number> {
  const parsed = parseCommand('export accelerate', argv, {
    run: { type: 'string' }, out: { type: 'string' }, gpus: { type: 'string', default: '2' }, json: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  if (!v.run || !v.out) return usageError('export accelerate', '--run and --out are required', USAGE);
  const gpus = Number(v.gpus);
  if (!Number.isInteger(gpus) || gpus < 1) return usageError('export accelerate', '--gpus must be a positive integer', USAGE);
  try {
    const { exportAccelerate } = await import('../../export/accelerate.js');
    const r = await exportAccelerate(v.run, v.out, { gpus });
    if (v.json) console.log(JSON.stringify({ out: r.outDir, files: r.files, train_rows: r.trainRows, validation_rows: r.validationRows, launch_command: r.launchCommand }));
    else console.log(`wrote ${r.files.join(', ')} to ${r.outDir} (${r.trainRows} training rows)\nlaunch on the GPU machine:\n  ${r.launchCommand}`);
    return 0;
  } catch (e) {
    return reportError('export accelerate', e);
  }
}
