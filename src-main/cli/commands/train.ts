// `finch train`: LoRA / QLoRA fine-tuning from the command line. Options, a YAML/JSON config file
// (--config run.yaml, keys as the long options) or --resume DIR; a progress bar on a terminal,
// one JSON event per line with --json.

import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { TrainConfig } from '../../../src-shared/run-config.js';
import type { DeviceRecord, TrainEvent } from '../../../src-shared/train-events.js';
import { latestCheckpoint, resumeConfig } from '../../train/checkpoint.js';
import { readGpuMemory } from '../../engine/runtime/gpu-memory.js';
import { resolveProvider } from '../../engine/runtime/providers.js';
import { estimateMemory, memoryRefusal } from '../../services/system.js';
import { train } from '../../train/trainer.js';
import { reportError } from '../errors.js';
import { fileInTheWay, removeEmptyUpTo, topmostMissing } from '../out-folder.js';
import { createProgress, formatDuration } from '../progress.js';
import { RUN_OPTIONS, UsageError, configFrom, optionLine, pathsHelp, readConfigFile, settingsHelp } from '../run-options.js';

const OPTIONS = {
  ...RUN_OPTIONS,
  config: { type: 'string' }, resume: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

/** Keys a --config file may hold: every run option (and json). */
const CONFIG_KEYS = Object.keys(OPTIONS).filter((k) => !['config', 'resume', 'help'].includes(k));

const USAGE = `Usage: finch train --model DIR --data FILE --out DIR [options]
       finch train --config run.yaml [options]
       finch train --resume DIR

Files and output:
${pathsHelp()}
${optionLine('config', 'FILE', 'options from a YAML or JSON file, keys as the long option names without dashes (seq-len: 256, 4bit: true); options on the command line win')}
${optionLine('resume', 'DIR', 'continue the run in DIR from its last checkpoint, with the settings it started with')}
${optionLine('json', undefined, 'one JSON object per line instead of the progress bar')}
${settingsHelp()}

Each value is checked against the range shown, the same one the app checks: a value one refuses,
the other refuses too.`;

type Values = Partial<Record<string, string | boolean>>;

/** One line naming where the run executes, with the nodes that fell back to the CPU. */
export function deviceLine(d: DeviceRecord): string {
  const off = d.fallback_nodes.length ? `; ${d.fallback_nodes.length} node(s) fall back to the CPU: ${d.fallback_nodes.slice(0, 8).map((n) => `${n.op} (${n.name})`).join(', ')}${d.fallback_nodes.length > 8 ? ', ...' : ''}`
    : d.fallback_unchecked ? `; nodes that fall back to the CPU are ${d.fallback_unchecked}` : d.provider === 'cpu' ? '' : '; every node on the device';
  const dtype = d.compute_dtype === 'float16' ? `, frozen path in ${d.compute_dtype_reason ?? 'float16'}` : '';
  return `provider: ${d.provider}, ${d.reason}${d.strict ? ' [strict]' : ''}${dtype}${off}`;
}

export async function run(argv: string[]): Promise<number> {
  let values: Values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true }).values as Values;
  } catch (e) {
    console.error(`finch train: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) { console.log(USAGE); return 0; }
  let cfg: TrainConfig;
  let json = values.json === true;
  try {
    // A resumed run continues in the folder it is given, wherever the run was first written.
    if (typeof values.resume === 'string') cfg = { ...resumeConfig(values.resume), out: values.resume };
    else {
      const file = typeof values.config === 'string' ? { path: values.config, values: readConfigFile(values.config, CONFIG_KEYS) } : undefined;
      json ||= file?.values.json === true;
      cfg = configFrom(values, file);
    }
    const notAFolder = fileInTheWay(cfg.out);
    if (notAFolder) throw new UsageError(`--out ${cfg.out}: ${notAFolder} is a file, not a folder; --out names a folder for the run (created if missing)`);
    if (values.resume === undefined && latestCheckpoint(cfg.out)) {
      throw new UsageError(`${cfg.out} already holds a run with checkpoints: continue it with --resume ${cfg.out}, or choose another --out`);
    }
  } catch (e) {
    console.error(`finch train: ${(e as Error).message}`);
    return 2;
  }

  let bar: ReturnType<typeof createProgress> | null = null;
  const emit = (e: TrainEvent) => {
    if (json) { console.log(JSON.stringify(e)); return; }
    switch (e.event) {
      case 'prepared':
        for (const n of e.notes) console.error(`note: ${n}`);
        console.error(`${e.train_sequences} training sequences, ${e.val_sequences} validation, ${e.seq_len} tokens at most, ${e.total_steps} steps`);
        console.error(`batches pad to ${e.batch_shape === 'own-longest' ? `their own longest row (multiple of ${e.pad_multiple})` : 'the longest row'}` +
          `${e.group_by_length ? ', grouped by length' : ''}: ${(e.padding_fraction * 100).toFixed(1)}% padding`);
        bar = createProgress({ label: 'train', total: e.total_steps, unit: 'steps', stream: process.stderr });
        break;
      case 'device': console.error(deviceLine(e)); break;
      case 'resumed': console.error(`resuming at step ${e.step}`); break;
      case 'note': console.error(`note: ${e.message}`); break;
      case 'ready':
        console.error(`ready in ${e.total_s.toFixed(1)} s: load ${e.load_s.toFixed(1)} s${e.int4_source ? ` (4-bit ${e.int4_source === 'cache' ? 'from cache' : 'quantized'})` : ''}, data ${e.data_s.toFixed(1)} s, graph ${e.graph_s.toFixed(1)} s, sessions ${e.session_s.toFixed(1)} s`);
        break;
      case 'step': bar?.update(e.step, { loss: e.loss.toFixed(4), lr: e.lr.toExponential(2), 'tok/s': Math.round(e.tokens_per_s) }); break;
      case 'eval':
        console.error(`\nstep ${e.step}: eval loss ${e.eval_loss.toFixed(4)}, ${e.reward_accuracy === undefined ? `perplexity ${e.perplexity.toFixed(2)}`
          : `reward accuracy ${(e.reward_accuracy * 100).toFixed(1)}%, margin ${e.reward_margin!.toFixed(4)} (chosen ${e.rewards_chosen!.toFixed(4)}, rejected ${e.rewards_rejected!.toFixed(4)})`}`);
        break;
      case 'done':
        bar?.stop();
        console.error(`${e.status === 'completed' ? 'done' : 'cancelled'} after ${e.steps} steps; adapter: ${e.adapter}`);
        break;
      default: break;
    }
  };
  const control = { paused: false, cancelled: false };
  process.once('SIGINT', () => { control.cancelled = true; });
  const t0 = performance.now();
  const createdTop = topmostMissing(cfg.out);
  try {
    // The app's rule (services/system.ts): a run whose memory verdict is 'will-not-fit' starts only when told to.
    // A --model that is no folder is the model loader's to report (its message says what a model folder holds).
    const estimated = !cfg.ignoreMemoryEstimate && statSync(cfg.model, { throwIfNoEntry: false })?.isDirectory() === true;
    const decision = estimated ? await resolveProvider(cfg.provider) : null;
    const gpus = decision && decision.provider !== 'cpu' ? await readGpuMemory() : { gpus: [], notes: [] };
    const refusal = decision ? memoryRefusal(await estimateMemory(cfg.model, cfg, decision, gpus), cfg) : null;
    if (refusal) {
      console.error(`finch train: ${refusal.message}\n${refusal.hint}`);
      return 2;
    }
    await train(cfg, emit, control);
  } catch (e) {
    (bar as ReturnType<typeof createProgress> | null)?.stop();
    // A run that failed before writing anything leaves no empty folders behind (run.json stays: it allows --resume).
    if (createdTop) removeEmptyUpTo(cfg.out, createdTop);
    return reportError('train', e);
  }
  if (!json) console.error(`time: ${formatDuration((performance.now() - t0) / 1000)}`);
  return control.cancelled ? 130 : 0;
}
