// `finch train`: LoRA / QLoRA fine-tuning from the command line. Options, a YAML/JSON config file
// (--config run.yaml, keys as the long options) or --resume DIR; a progress bar on a terminal,
// one JSON event per line with --json.

import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { parseColumnMap, FORMAT_NAMES, type FormatName } from '../../data/formats.js';
import { PROVIDER_CHOICES } from '../../engine/runtime/providers.js';
import { COMPUTE_DTYPE_CHOICES } from '../../train/precision.js';
import { parseTargets } from '../../model/lora.js';
import { latestCheckpoint, resumeConfig } from '../../train/checkpoint.js';
import { type DeviceRecord, type TrainConfig, type TrainEvent, TRAIN_DEFAULTS, train } from '../../train/trainer.js';
import { reportError } from '../errors.js';
import { fileInTheWay, removeEmptyUpTo, topmostMissing } from '../out-folder.js';
import { createProgress, formatDuration } from '../progress.js';

const USAGE = `Usage: finch train --model DIR --data FILE --out DIR [options]
       finch train --config run.yaml
       finch train --resume DIR

Data:
  --format F           alpaca | sharegpt | messages | completion | text (default: detected)
  --map K=COL,...      column mapping, e.g. prompt=query,completion=response (MetaMathQA)
  --train-on W         completions (default: prompt tokens are not trained) | all
  --template T         auto (the model's chat template, else Finch's fallback) | model | fallback;
                       with --format messages or sharegpt the default is model (an error without one)
  --seq-len N          tokens per sequence (default ${TRAIN_DEFAULTS.seqLen}); longer rows are truncated
  --pack               pack short samples into one sequence
  --static-seq         pad every batch to the dataset's longest row (default: each batch pads only
                       to its own longest row, rounded up to a multiple of 8; one session either way)
  --group-by-length    rows of similar length share an optimizer step (less padding; seeded per epoch)
  --val-fraction F     held-out fraction for the eval loss (default ${TRAIN_DEFAULTS.valFraction})
  --on-bad-row P       fail (default: list the first errors) | skip (skip and count)
LoRA:
  --rank R             default ${TRAIN_DEFAULTS.lora.rank}
  --alpha A            default ${TRAIN_DEFAULTS.lora.alpha}
  --dropout P          default ${TRAIN_DEFAULTS.lora.dropout}
  --targets LIST       comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (default all)
  --rslora             scale alpha/sqrt(r)
  --4bit               QLoRA: the frozen base in 4 bits (embedding rows are gathered on the host)
  --block-size N       4-bit block: 32 (default, lower error) | 64 (less memory)
Optimisation:
  --lr LR              default ${TRAIN_DEFAULTS.lr}
  --schedule S         constant | linear | cosine (default ${TRAIN_DEFAULTS.schedule})
  --warmup N           warmup steps (default 0)
  --epochs N           default ${TRAIN_DEFAULTS.epochs}
  --max-steps N        stop after N optimizer steps
  --batch N            micro-batch size (default ${TRAIN_DEFAULTS.batch})
  --grad-accum N       micro-batches per optimizer step (default 1)
  --weight-decay W     default ${TRAIN_DEFAULTS.weightDecay}
  --max-grad-norm N    clip the global gradient norm (default ${TRAIN_DEFAULTS.maxGradNorm}; 0 = off)
  --gradient-checkpointing   recompute each layer in the backward (less memory)
Run:
  --eval-every N       evaluation loss every N steps (default: at the end)
  --checkpoint-every N default ${TRAIN_DEFAULTS.checkpointEvery}
  --seed S             default 0
  --threads N          CPU threads (default: all)
  --provider P         auto (default: a hardware GPU if any, never a software adapter) | cpu | webgpu | dml | cuda | coreml
  --strict-provider    a node that would fall back to the CPU is an error, not a warning
  --compute-dtype D    float32 (default) | float16 (frozen weights and their products in float16 on a
                       GPU with float16 kernels; LoRA, gradients and AdamW stay float32) | auto (float16
                       on a hardware WebGPU adapter with shader-f16)
  --json               one JSON object per line instead of the progress bar`;

const OPTIONS = {
  model: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' }, resume: { type: 'string' },
  format: { type: 'string' }, map: { type: 'string' }, 'train-on': { type: 'string' }, template: { type: 'string' }, 'seq-len': { type: 'string' }, pack: { type: 'boolean' },
  'static-seq': { type: 'boolean' }, 'group-by-length': { type: 'boolean' },
  'val-fraction': { type: 'string' }, 'on-bad-row': { type: 'string' }, rank: { type: 'string' }, alpha: { type: 'string' },
  dropout: { type: 'string' }, targets: { type: 'string' }, rslora: { type: 'boolean' }, '4bit': { type: 'boolean' }, 'block-size': { type: 'string' }, lr: { type: 'string' },
  schedule: { type: 'string' }, warmup: { type: 'string' }, epochs: { type: 'string' }, 'max-steps': { type: 'string' }, batch: { type: 'string' },
  'grad-accum': { type: 'string' }, 'weight-decay': { type: 'string' }, 'max-grad-norm': { type: 'string' },
  'gradient-checkpointing': { type: 'boolean' }, 'eval-every': { type: 'string' }, 'checkpoint-every': { type: 'string' },
  seed: { type: 'string' }, threads: { type: 'string' }, provider: { type: 'string' }, 'strict-provider': { type: 'boolean' }, 'compute-dtype': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

type Values = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

class UsageError extends Error {}

/** A number option: integer where asked, within [min, max]. */
function numberOf(v: Values, key: keyof typeof OPTIONS, dflt: number, o: { int?: boolean; min?: number; max?: number } = {}): number {
  const raw = v[key];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    throw new UsageError(`--${key} must be ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}${o.max !== undefined ? ` and <= ${o.max}` : ''}, got "${raw}"`);
  }
  return n;
}

/** Options (from the command line or a config file) -> a full TrainConfig. */
export function configFrom(v: Values): TrainConfig {
  const d = TRAIN_DEFAULTS;
  for (const k of ['model', 'data', 'out'] as const) if (typeof v[k] !== 'string') throw new UsageError(`--${k} is required`);
  const format = v.format as string | undefined;
  if (format !== undefined && !FORMAT_NAMES.includes(format as FormatName)) throw new UsageError(`--format must be one of ${FORMAT_NAMES.join(', ')}, got "${format}"`);
  const pick = <T extends string>(key: keyof typeof OPTIONS, allowed: readonly T[], dflt: T): T => {
    const raw = v[key];
    if (raw === undefined) return dflt;
    if (!allowed.includes(raw as T)) throw new UsageError(`--${key} must be one of ${allowed.join(', ')}, got "${raw}"`);
    return raw as T;
  };
  const clip = numberOf(v, 'max-grad-norm', d.maxGradNorm ?? 0, { min: 0 });
  const maxSteps = v['max-steps'] === undefined ? null : numberOf(v, 'max-steps', 0, { int: true, min: 1 });
  return {
    model: v.model as string, data: v.data as string, out: v.out as string,
    format: format as FormatName | undefined,
    map: typeof v.map === 'string' ? parseColumnMap(v.map) : undefined,
    onBadRow: pick('on-bad-row', ['fail', 'skip'] as const, 'fail'),
    trainOn: pick('train-on', ['completions', 'all'] as const, d.trainOn),
    template: pick('template', ['auto', 'model', 'fallback'] as const, format === 'messages' || format === 'sharegpt' ? 'model' : d.template),
    pack: v.pack === true,
    seqLen: numberOf(v, 'seq-len', d.seqLen, { int: true, min: 8 }),
    valFraction: numberOf(v, 'val-fraction', d.valFraction, { min: 0, max: 0.5 }),
    lora: {
      rank: numberOf(v, 'rank', d.lora.rank, { int: true, min: 1 }),
      alpha: numberOf(v, 'alpha', d.lora.alpha, { min: 0 }),
      dropout: numberOf(v, 'dropout', d.lora.dropout, { min: 0, max: 0.9 }),
      rslora: v.rslora === true,
      targets: typeof v.targets === 'string' ? parseTargets(v.targets) : d.lora.targets,
    },
    quantize: v['4bit'] === true,
    lr: numberOf(v, 'lr', d.lr, { min: 0 }),
    schedule: pick('schedule', ['constant', 'linear', 'cosine'] as const, d.schedule),
    warmupSteps: numberOf(v, 'warmup', d.warmupSteps, { int: true, min: 0 }),
    epochs: numberOf(v, 'epochs', d.epochs, { int: true, min: 1 }),
    maxSteps,
    batch: numberOf(v, 'batch', d.batch, { int: true, min: 1 }),
    gradAccum: numberOf(v, 'grad-accum', d.gradAccum, { int: true, min: 1 }),
    weightDecay: numberOf(v, 'weight-decay', d.weightDecay, { min: 0 }),
    maxGradNorm: clip > 0 ? clip : null,
    evalEvery: numberOf(v, 'eval-every', d.evalEvery, { int: true, min: 0 }),
    checkpointEvery: numberOf(v, 'checkpoint-every', d.checkpointEvery, { int: true, min: 1 }),
    keepCheckpoints: d.keepCheckpoints,
    seed: numberOf(v, 'seed', d.seed, { int: true, min: 0 }),
    threads: numberOf(v, 'threads', d.threads, { int: true, min: 0 }),
    provider: pick('provider', PROVIDER_CHOICES, d.provider),
    strictProvider: v['strict-provider'] === true,
    checkpointLayers: v['gradient-checkpointing'] === true,
    blockSize: pick('block-size', ['32', '64'] as const, '32') === '64' ? 64 : 32,
    staticSeq: v['static-seq'] === true,
    groupByLength: v['group-by-length'] === true,
    computeDtype: pick('compute-dtype', COMPUTE_DTYPE_CHOICES, d.computeDtype ?? 'float32'),
  };
}

/** Reads --config FILE (YAML or JSON; keys as the long option names, without dashes). */
function readConfigFile(file: string): Values {
  if (!existsSync(file)) throw new UsageError(`config file not found: ${file}`);
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file}: not valid YAML/JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${file}: expected a mapping of option names to values`);
  const out: Values = {};
  for (const [k, val] of Object.entries(doc as Record<string, unknown>)) {
    if (!(k in OPTIONS) || ['config', 'resume', 'help'].includes(k)) throw new UsageError(`${file}: unknown key "${k}" (keys are the long option names of finch train --help)`);
    out[k as keyof typeof OPTIONS] = typeof val === 'boolean' ? val : String(val);
  }
  return out;
}

/** One line naming where the run executes, with the nodes that fell back to the CPU. */
export function deviceLine(d: DeviceRecord): string {
  const off = d.fallback_nodes.length ? `; ${d.fallback_nodes.length} node(s) fall back to the CPU: ${d.fallback_nodes.slice(0, 8).map((n) => `${n.op} (${n.name})`).join(', ')}${d.fallback_nodes.length > 8 ? ', ...' : ''}` : d.provider === 'cpu' ? '' : '; every node on the device';
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
  try {
    // A resumed run continues in the folder it is given, wherever the run was first written.
    if (typeof values.resume === 'string') cfg = { ...resumeConfig(values.resume), out: values.resume };
    else cfg = configFrom(typeof values.config === 'string' ? { ...readConfigFile(values.config), ...values } : values);
    const notAFolder = fileInTheWay(cfg.out);
    if (notAFolder) throw new UsageError(`--out ${cfg.out}: ${notAFolder} is a file, not a folder; --out names a folder for the run (created if missing)`);
    if (values.resume === undefined && latestCheckpoint(cfg.out)) {
      throw new UsageError(`${cfg.out} already holds a run with checkpoints: continue it with --resume ${cfg.out}, or choose another --out`);
    }
  } catch (e) {
    console.error(`finch train: ${(e as Error).message}`);
    return 2;
  }

  const json = values.json === true;
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
      case 'eval': console.error(`\nstep ${e.step}: eval loss ${e.eval_loss.toFixed(4)}, perplexity ${e.perplexity.toFixed(2)}`); break;
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
