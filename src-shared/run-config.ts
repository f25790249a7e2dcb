// What a fine-tuning run is: every setting once, with its type, range, default and one line of
// help. Everything else is derived from this file:
//   - the trainer's TrainConfig (the settings, the model/data/out paths and trainer-only knobs) and
//     TRAIN_DEFAULTS: the trainer receives a complete, parsed config and re-applies no default;
//   - the app's RunConfig and RUN_DEFAULTS (schemas.ts: the same settings with the model and
//     dataset by library id), which the dispatcher validates every call with;
//   - `finch train`'s options, their parsing and its --help, and `--config run.yaml` (keys are the
//     long option names) (src-main/cli/run-options.ts);
//   - run.json and trainer_state.json, whose `config` is a TrainConfig (readStoredConfig);
//   - the wizard's field limits (inputLimits).
// Adding a setting is one entry in RunSettings plus the code that uses it.
//
// Where two doors once disagreed, one rule now holds for both (and README.md says it):
//   - learning rate: > 0 and <= 1 (0 trains nothing; AdamW moves every weight by about lr per
//     step, so values above 1 are no learning rate);
//   - LoRA alpha: > 0 (the adapter's output is scaled by alpha / rank: 0 trains nothing);
//   - 4-bit block size: 32 or 64, the sizes the 4-bit path is tested with (128 trains on the CPU,
//     but no test or GPU check covers it);
//   - gradient clipping: 0 and null both mean off;
//   - chat template: 'auto' whatever the data's format (the model's, else Finch's fallback with a
//     note in the run log); 'model' refuses a model without one.

import { z } from 'zod';
import { COMPUTE_DTYPE_CHOICES, FORMAT_FIELDS, FORMAT_NAMES, LORA_TARGET_NAMES, LORA_TARGETS, METHODS, PROVIDER_CHOICES, SCHEDULES, TEMPLATE_CHOICES, TRAIN_ON } from './choices.js';

// ---- how a setting is described ----------------------------------------------------------------

/** The heading a setting is listed under in `finch train --help`. */
export type SettingGroup = 'Data' | 'Method' | 'LoRA' | 'Optimisation' | 'Run';
const GROUPS: readonly SettingGroup[] = ['Data', 'Method', 'LoRA', 'Optimisation', 'Run'];

/** The values a setting takes, as a command line or a config file writes them. */
export type SettingType =
  | { kind: 'number'; integer: boolean; min: number; minExclusive: boolean; max: number | null; maxExclusive: boolean;
    /** 0 is accepted and stands for null: the setting is off (no gradient clipping). */
    zeroIsNull: boolean }
  /** A folder on this machine, or null (not given). */
  | { kind: 'path' }
  | { kind: 'switch' }
  | { kind: 'choice'; choices: readonly (string | number)[] }
  /** A comma list on the command line (or `all`, which stands for the `all` list), an array in the API. */
  | { kind: 'list'; choices: readonly string[]; all: readonly string[] }
  /** KEY=VALUE,... on the command line, an object in the API. */
  | { kind: 'map'; keys: readonly string[] };

export interface SettingDoc {
  /** One line: what the setting does. */
  help: string;
  group: SettingGroup;
  /** `finch train`'s long option (and --config key) when it is not the field's name in kebab case. */
  flag?: string;
  /** The value's placeholder in --help (absent for switches). */
  value?: string;
  /** The default as --help states it, where the value alone would not say it ("detected", "all"). */
  defaultText?: string;
}

interface SettingInfo extends SettingDoc {
  type: SettingType;
}

const INFO = new WeakMap<z.ZodType, SettingInfo>();

/** Records how a setting is described; returns its schema. */
function described<S extends z.ZodType>(schema: S, type: SettingType, doc: SettingDoc): S {
  INFO.set(schema, { ...doc, type });
  return schema;
}

/** What a value must be, as a phrase: "must be <rule>" ends every refusal, in the app and the CLI alike. */
export function describeType(t: SettingType): string {
  switch (t.kind) {
    case 'number': {
      const what = t.integer ? 'an integer' : 'a number';
      const range = t.max !== null && !t.minExclusive && !t.maxExclusive ? `from ${t.min} to ${t.max}`
        : `${t.minExclusive ? '>' : '>='} ${t.min}${t.max !== null ? ` and ${t.maxExclusive ? '<' : '<='} ${t.max}` : ''}`;
      return `${what} ${range}${t.zeroIsNull ? ', 0 = off' : ''}`;
    }
    case 'path': return 'a folder';
    case 'switch': return 'true or false';
    case 'choice': return `one of ${t.choices.join(', ')}`;
    case 'list': return `a list of ${t.choices.join(', ')} (at least one)`;
    case 'map': return `FIELD=COLUMN pairs with FIELD one of ${t.keys.join(', ')}`;
  }
}

const must = (t: SettingType) => ({ error: `must be ${describeType(t)}` });

// ---- setting builders: each makes the field's schema and records how it is described ------------

interface Range { min: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean }

function numberSchema(integer: boolean, r: Range, zeroIsNull = false) {
  const type: SettingType = { kind: 'number', integer, min: r.min, minExclusive: r.minExclusive ?? false, max: r.max ?? null, maxExclusive: r.maxExclusive ?? false, zeroIsNull };
  const e = must(type);
  let s = integer ? z.int(e) : z.number(e);
  s = r.minExclusive ? s.gt(r.min, e) : s.min(r.min, e);
  if (r.max !== undefined) s = r.maxExclusive ? s.lt(r.max, e) : s.max(r.max, e);
  return { s, type };
}

function integer(r: Range, dflt: number, doc: SettingDoc) {
  const { s, type } = numberSchema(true, r);
  return described(s.default(dflt), type, doc);
}
function real(r: Range, dflt: number, doc: SettingDoc) {
  const { s, type } = numberSchema(false, r);
  return described(s.default(dflt), type, doc);
}
/** An integer, or null where the setting is not used (the command line leaves it out). */
function integerOrNull(r: Range, doc: SettingDoc) {
  const { s, type } = numberSchema(true, r);
  return described(s.nullable().default(null), type, doc);
}
/** A number where 0 and null both mean off (null in the parsed config). */
function numberOrOff(r: Range, dflt: number, doc: SettingDoc) {
  const { s, type } = numberSchema(false, r, true);
  return described(s.nullable().default(dflt).transform((v) => (v === 0 ? null : v)), type, doc);
}
/** A folder path, or null where the setting is not used. */
function folderOrNull(doc: SettingDoc) {
  const type: SettingType = { kind: 'path' };
  const e = must(type);
  return described(z.string(e).min(1, e).max(4096, e).nullable().default(null), type, doc);
}
function onOff(doc: SettingDoc) {
  const type: SettingType = { kind: 'switch' };
  return described(z.boolean(must(type)).default(false), type, doc);
}

const choice = <const T extends readonly [string, ...string[]]>(choices: T) => z.enum(choices, must({ kind: 'choice', choices }));

function oneOf<const T extends readonly [string, ...string[]]>(choices: T, dflt: T[number], doc: SettingDoc) {
  return described(choice(choices).default(dflt), { kind: 'choice', choices }, doc);
}
function oneOfNumbers<const T extends readonly [number, ...number[]]>(choices: T, dflt: T[number], doc: SettingDoc) {
  const type: SettingType = { kind: 'choice', choices };
  return described(z.literal(choices, must(type)).default(dflt), type, doc);
}
/** A list of `choices`, by default `dflt` (all of them unless given), which `all` also stands for. */
function listOf<const T extends readonly [string, ...string[]]>(choices: T, doc: SettingDoc, dflt: readonly T[number][] = choices) {
  const type: SettingType = { kind: 'list', choices, all: dflt };
  const e = must(type);
  return described(z.array(z.enum(choices, e), e).min(1, e).default([...dflt]), type, doc);
}

// ---- the value schemas the API shares ------------------------------------------------------------

export const FormatName = choice(FORMAT_NAMES);
export const Field = choice(FORMAT_FIELDS);
const COLUMN_MAP: SettingType = { kind: 'map', keys: FORMAT_FIELDS };
const mapError = must(COLUMN_MAP);
/** Format field -> dataset column, e.g. MetaMathQA's {prompt: 'query', completion: 'response'}. */
export const ColumnMap = z.partialRecord(z.enum(FORMAT_FIELDS, mapError), z.string(mapError).min(1, mapError).max(200, mapError), mapError);
export const LoraTarget = choice(LORA_TARGET_NAMES);
export const ProviderChoice = choice(PROVIDER_CHOICES);
export const TrainOn = choice(TRAIN_ON);
export const TemplateChoice = choice(TEMPLATE_CHOICES);

// ---- the settings ------------------------------------------------------------------------------

/** The LoRA adapter (model/lora.ts LoraSpec). */
export const LoraSettings = z.strictObject({
  rank: integer({ min: 1, max: 1024 }, 16, { group: 'LoRA', value: 'R', help: 'adapter rank' }),
  alpha: real({ min: 0, minExclusive: true, max: 1e4 }, 32, { group: 'LoRA', value: 'A', help: 'scale: the adapter\'s output is multiplied by alpha/rank, or alpha/sqrt(rank) with rsLoRA' }),
  dropout: real({ min: 0, max: 0.9 }, 0.05, { group: 'LoRA', value: 'P', help: 'dropout on the adapter\'s input' }),
  rslora: onOff({ group: 'LoRA', help: 'scale by alpha/sqrt(rank) instead of alpha/rank (rsLoRA)' }),
  targets: listOf(LORA_TARGET_NAMES, { group: 'LoRA', value: 'LIST', defaultText: 'all', help: 'projections that get an adapter, a comma list or all (Phi-3 fuses q/k/v into qkv_proj and gate/up into gate_up_proj)' }, LORA_TARGETS),
});

/** Every setting of a run, with its default: what every door (CLI, app, config file) accepts. */
export const RunSettings = z.strictObject({
  format: described(FormatName.optional(), { kind: 'choice', choices: FORMAT_NAMES }, { group: 'Data', value: 'F', defaultText: 'detected from the columns', help: 'the dataset\'s format' }),
  map: described(ColumnMap.optional(), COLUMN_MAP, { group: 'Data', value: 'K=COL,...', help: 'column mapping, e.g. prompt=query,completion=response (MetaMathQA)' }),
  trainOn: oneOf(TRAIN_ON, 'completions', { group: 'Data', value: 'W', help: 'the tokens trained; completions leaves the prompt\'s out' }),
  template: oneOf(TEMPLATE_CHOICES, 'auto', { group: 'Data', value: 'T', help: 'the chat template; auto = the model\'s, else Finch\'s fallback (noted in the log); model = the model\'s (an error without one); fallback = Finch\'s' }),
  seqLen: integer({ min: 8, max: 131_072 }, 512, { group: 'Data', value: 'N', help: 'tokens per sequence; longer rows are truncated' }),
  pack: onOff({ group: 'Data', help: 'pack short samples into one sequence' }),
  staticSeq: onOff({ group: 'Data', help: 'pad every batch to the dataset\'s longest row (default: each batch pads only to its own longest row, rounded up to a multiple of 8; one session either way)' }),
  groupByLength: onOff({ group: 'Data', help: 'rows of similar length share an optimizer step (less padding; seeded per epoch)' }),
  valFraction: real({ min: 0, max: 0.5 }, 0.05, { group: 'Data', value: 'F', help: 'held-out fraction of the rows for the eval loss' }),
  onBadRow: oneOf(['fail', 'skip'], 'fail', { group: 'Data', value: 'P', help: 'rows that cannot be read or converted stop the run (listing the first errors) or are skipped and counted' }),
  method: oneOf(METHODS, 'sft', { group: 'Method', value: 'M', help: 'what the run optimises: sft = supervised fine-tuning on the answers; dpo = direct preference optimisation against a frozen reference (the base, or --init-adapter); orpo = odds-ratio preference optimisation (SFT on the chosen answer plus an odds-ratio term, no reference). dpo and orpo train on preference data (a prompt with a chosen and a rejected answer)' }),
  beta: real({ min: 0, minExclusive: true, max: 100 }, 0.1, { group: 'Method', value: 'B', help: 'dpo: how closely the policy keeps to the reference; larger keeps it closer (TRL\'s beta)' }),
  labelSmoothing: real({ min: 0, max: 0.5, maxExclusive: true }, 0, { group: 'Method', value: 'E', help: 'dpo: the assumed chance that a pair\'s preference is wrong (conservative DPO); 0 = plain DPO' }),
  orpoLambda: real({ min: 0, minExclusive: true, max: 100 }, 0.1, { group: 'Method', value: 'L', help: 'orpo: the weight of the odds-ratio term beside the SFT loss (TRL\'s ORPOConfig.beta)' }),
  initAdapter: folderOrNull({ group: 'Method', value: 'DIR', help: 'start from this PEFT adapter (an SFT run\'s, say) and train it further with its rank, alpha and targets; for dpo it is also the frozen reference' }),
  lora: LoraSettings.prefault({}),
  quantize: onOff({ group: 'LoRA', flag: '4bit', help: 'QLoRA: the frozen base in 4 bits (embedding rows are gathered on the host)' }),
  blockSize: oneOfNumbers([32, 64], 32, { group: 'LoRA', value: 'N', help: 'the 4-bit block; 32 has the lower error, 64 takes about 5% less memory' }),
  lr: real({ min: 0, minExclusive: true, max: 1 }, 2e-4, { group: 'Optimisation', value: 'LR', help: 'peak learning rate' }),
  schedule: oneOf(SCHEDULES, 'cosine', { group: 'Optimisation', value: 'S', help: 'the learning-rate schedule after the warm-up' }),
  warmupSteps: integer({ min: 0 }, 0, { group: 'Optimisation', flag: 'warmup', value: 'N', help: 'warm-up steps, the learning rate rising linearly from 0' }),
  epochs: integer({ min: 1, max: 1000 }, 1, { group: 'Optimisation', value: 'N', help: 'passes over the training rows' }),
  maxSteps: integerOrNull({ min: 1 }, { group: 'Optimisation', value: 'N', defaultText: 'the epochs decide', help: 'stop after N optimizer steps, whatever the epochs' }),
  batch: integer({ min: 1, max: 4096 }, 4, { group: 'Optimisation', value: 'N', help: 'micro-batch size' }),
  gradAccum: integer({ min: 1, max: 4096 }, 1, { group: 'Optimisation', value: 'N', help: 'micro-batches per optimizer step' }),
  weightDecay: real({ min: 0, max: 1 }, 0, { group: 'Optimisation', value: 'W', help: 'AdamW weight decay' }),
  maxGradNorm: numberOrOff({ min: 0 }, 1, { group: 'Optimisation', value: 'N', help: 'clip the global gradient norm to N' }),
  checkpointLayers: onOff({ group: 'Optimisation', flag: 'gradient-checkpointing', help: 'recompute each layer in the backward (less memory)' }),
  evalEvery: integer({ min: 0 }, 0, { group: 'Run', value: 'N', help: 'evaluation loss every N steps, 0 = only at the end' }),
  checkpointEvery: integer({ min: 1 }, 100, { group: 'Run', value: 'N', help: 'checkpoint every N steps and at the end' }),
  keepCheckpoints: integer({ min: 1, max: 1000 }, 2, { group: 'Run', value: 'N', help: 'checkpoints kept; older ones are deleted' }),
  seed: integer({ min: 0 }, 0, { group: 'Run', value: 'S', help: 'seed of the data order, the held-out split, LoRA\'s initialisation and dropout' }),
  threads: integer({ min: 0, max: 1024 }, 0, { group: 'Run', value: 'N', help: 'CPU threads, 0 = all cores' }),
  provider: oneOf(PROVIDER_CHOICES, 'auto', { group: 'Run', value: 'P', help: 'the execution provider; auto = WebGPU on a hardware adapter, else DirectML on Windows, else CUDA where installed, else the CPU; never a software adapter (`finch doctor` shows the choice and why)' }),
  strictProvider: onOff({ group: 'Run', help: 'a node that would fall back to the CPU is an error, not a warning' }),
  ignoreMemoryEstimate: onOff({ group: 'Run', help: 'start even when the memory estimate says the run will not fit in the memory free now (it may then fail or swap)' }),
  computeDtype: oneOf(COMPUTE_DTYPE_CHOICES, 'float32', { group: 'Run', value: 'D', help: 'the frozen path\'s dtype: float16 runs frozen weights and their products in float16 on a GPU with float16 kernels (LoRA, gradients and AdamW stay float32); auto = float16 on a hardware WebGPU adapter with shader-f16' }),
});
export type RunSettings = z.output<typeof RunSettings>;

/** The trainer's config: where the model, data and output are, every run setting, and knobs only the trainer has. */
export const TrainConfig = z.strictObject({
  model: z.string().min(1),
  data: z.string().min(1),
  /** The run folder: adapter, run.json, checkpoints/. */
  out: z.string().min(1),
  ...RunSettings.shape,
  /**
   * Keep LoRA parameters and AdamW moments in device memory between steps where the provider can
   * (WebGPU; train/state.ts); false feeds them from the host each step (tests compare the two).
   */
  deviceState: z.boolean().default(true),
});
export type TrainConfig = z.output<typeof TrainConfig>;

/** Every default of the trainer's config (all but the paths). */
export const TRAIN_DEFAULTS: Omit<TrainConfig, 'model' | 'data' | 'out'> = TrainConfig.omit({ model: true, data: true, out: true }).parse({});

/**
 * A config read back from run.json or trainer_state.json (`where` names the file): settings the
 * file predates take their defaults, anything else out of place is refused naming the field.
 */
export function readStoredConfig(value: unknown, where: string): TrainConfig {
  const r = TrainConfig.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.');
  const what = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
  throw new Error(`${where}: config${field ? `.${field}` : ''}: ${what}`);
}

// ---- the table of settings, for the doors that list them ----------------------------------------

/** A setting's place in RunSettings: 'seqLen', or 'lora.rank' inside a group of settings. */
export type SettingPath = { [K in keyof RunSettings & string]: RunSettings[K] extends readonly unknown[] ? K
  : RunSettings[K] extends Record<string, unknown> ? `${K}.${keyof RunSettings[K] & string}` : K }[keyof RunSettings & string];

export interface Setting extends SettingInfo {
  path: SettingPath;
  /** `finch train`'s long option, without the dashes. */
  flag: string;
  default: unknown;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const unwrap = (s: z.ZodType): z.ZodType => (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional ? unwrap(s.unwrap() as z.ZodType) : s);

function tableOf(shape: Record<string, z.ZodType>, defaults: Record<string, unknown>, prefix = ''): Setting[] {
  return Object.entries(shape).flatMap(([key, schema]) => {
    const info = INFO.get(schema);
    if (info) return [{ ...info, path: `${prefix}${key}` as SettingPath, flag: info.flag ?? kebab(key), default: defaults[key] }];
    const inner = unwrap(schema);
    if (!(inner instanceof z.ZodObject)) throw new Error(`run setting "${prefix}${key}" has no description`);
    return tableOf(inner.shape as Record<string, z.ZodType>, defaults[key] as Record<string, unknown>, `${prefix}${key}.`);
  });
}

/** Every run setting, grouped as --help lists them, each group in RunSettings' order. */
export const SETTINGS: readonly Setting[] = tableOf(RunSettings.shape, RunSettings.parse({}))
  .sort((a, b) => GROUPS.indexOf(a.group) - GROUPS.indexOf(b.group));

export function setting(path: SettingPath): Setting {
  const s = SETTINGS.find((x) => x.path === path);
  if (!s) throw new Error(`no run setting "${path}"`);
  return s;
}

/** A setting's value in a config (`lora.rank` reads config.lora.rank). */
export function settingValue(config: RunSettings, path: SettingPath): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
}

/** The attributes of a number input for a setting: its range, and a step of 1 for integers. */
export function inputLimits(path: SettingPath): { min: number; max?: number; step: number | 'any' } {
  const t = setting(path).type;
  if (t.kind !== 'number') throw new Error(`run setting "${path}" is not a number`);
  return { min: t.min, ...(t.max !== null ? { max: t.max } : {}), step: t.integer ? 1 : 'any' };
}
