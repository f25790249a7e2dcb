// A Finch run handed to PyTorch's distributed training: `accelerate launch` over Hugging Face
// Transformers + PEFT (+ bitsandbytes for 4-bit), for models or clusters larger than one machine.
//
//   <out>/data/train.jsonl, validation.jsonl   the run's sequences exactly as Finch tokenised and
//                                              masked them: input_ids, labels (-100 = not
//                                              trained), position_ids (restart per packed sample);
//                                              for a preference run (dpo, orpo) its pairs: TRL's
//                                              prompt / chosen / rejected, as text rendered through
//                                              Finch's chat template and as Finch's token ids
//   <out>/train.py                             Trainer (SFT), TRL's DPOTrainer or ORPOTrainer, with
//                                              LoraConfig and the run's settings
//   <out>/accelerate/ddp.yaml, fsdp.yaml       multi-GPU configs: data parallel, or sharded (FSDP)
//   <out>/README.md                            the launch commands and the settings table
//
// The adapter train.py writes is PEFT format, which Finch loads back (finch generate --adapter).
// Settings map one to one (`settingsTable`); what does not map exactly is said in the README.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareDataset } from '../data/dataset.js';
import type { PairSet, SequenceSet } from '../data/batch.js';
import type { SampleStore } from '../data/samples.js';
import { loadModelConfig } from '../model/config.js';
import { resolveLora } from '../model/lora.js';
import { writeFileAtomic } from '../model/safetensors.js';
import { loadTokenizer } from '../model/tokenizer.js';
import type { ModelType, TextTokenizer } from '../model/types.js';
import { resumeConfig } from '../train/checkpoint.js';
import type { TrainConfig } from '../../src-shared/run-config.js';

export class AccelerateExportError extends Error {
  override name = 'AccelerateExportError';
}

/** One row of the settings table: Finch's setting, the Hugging Face argument, the value. */
export interface SettingRow {
  finch: string;
  hf: string;
  /** The value as Python source. */
  python: string;
}

const py = (v: unknown): string => {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.map(py).join(', ')}]`;
  return JSON.stringify(v);
};

/** The versions Finch's CI trains an export with (.ci/python-requirements.txt). */
const TESTED = { torch: '2.13', transformers: '5.17', peft: '0.21', accelerate: '1.15', trl: '1.13' } as const;

/** Finch schedule -> transformers' lr_scheduler_type (both warm up linearly for warmup steps). */
const SCHEDULES: Record<TrainConfig['schedule'], string> = { constant: 'constant_with_warmup', linear: 'linear', cosine: 'cosine' };

/** Run settings as the arguments of LoraConfig, TrainingArguments and the script. */
export function settingsTable(cfg: TrainConfig): SettingRow[] {
  const r = (finch: string, hf: string, value: unknown): SettingRow => ({ finch, hf, python: py(value) });
  return [
    r('lora.rank', 'LoraConfig.r', cfg.lora.rank),
    r('lora.alpha', 'LoraConfig.lora_alpha', cfg.lora.alpha),
    r('lora.dropout', 'LoraConfig.lora_dropout', cfg.lora.dropout),
    r('lora.targets', 'LoraConfig.target_modules', [...cfg.lora.targets]),
    r('lora.rslora', 'LoraConfig.use_rslora', cfg.lora.rslora),
    r('lr', 'TrainingArguments.learning_rate', cfg.lr),
    r('schedule', 'TrainingArguments.lr_scheduler_type', SCHEDULES[cfg.schedule]),
    r('warmupSteps', 'TrainingArguments.warmup_steps', cfg.warmupSteps),
    r('epochs', 'TrainingArguments.num_train_epochs', cfg.epochs),
    r('maxSteps', 'TrainingArguments.max_steps', cfg.maxSteps ?? -1),
    r('batch', 'TrainingArguments.per_device_train_batch_size', cfg.batch),
    r('gradAccum', 'TrainingArguments.gradient_accumulation_steps', cfg.gradAccum),
    r('weightDecay', 'TrainingArguments.weight_decay', cfg.weightDecay),
    r('maxGradNorm', 'TrainingArguments.max_grad_norm', cfg.maxGradNorm ?? 0), // 0: no clipping in both
    r('seed', 'TrainingArguments.seed', cfg.seed),
    r('evalEvery', 'TrainingArguments.eval_steps', cfg.evalEvery > 0 ? cfg.evalEvery : null),
    r('checkpointEvery', 'TrainingArguments.save_steps', cfg.checkpointEvery),
    r('keepCheckpoints', 'TrainingArguments.save_total_limit', cfg.keepCheckpoints),
    r('checkpointLayers', 'TrainingArguments.gradient_checkpointing', cfg.checkpointLayers),
    r('seqLen', 'SEQ_LEN (rows are already cut to it)', cfg.seqLen),
    r('quantize', 'BitsAndBytesConfig(load_in_4bit=...)', cfg.quantize),
    r('model', 'MODEL (from_pretrained path or Hub id)', path.resolve(cfg.model)),
    ...preferenceSettings(cfg).map(([finch, hf, value]) => r(finch, hf, value)),
  ];
}

/** The method's own settings: TRL's DPOConfig or ORPOConfig (none for SFT). */
function preferenceSettings(cfg: TrainConfig): [string, string, unknown][] {
  const init: [string, string, unknown] = ['initAdapter', `INIT_ADAPTER (PeftModel.from_pretrained${cfg.method === 'dpo' ? '; also the reference' : ''})`, cfg.initAdapter ? path.resolve(cfg.initAdapter) : null];
  if (cfg.method === 'dpo') {
    return [['method', 'DPOConfig.loss_type', ['sigmoid']], ['beta', 'DPOConfig.beta', cfg.beta], ['labelSmoothing', 'DPOConfig.label_smoothing', cfg.labelSmoothing], init];
  }
  if (cfg.method === 'orpo') return [['orpoLambda', 'ORPOConfig.beta', cfg.orpoLambda], init];
  return [];
}

const DECODER_LAYER: Record<ModelType, string> = {
  llama: 'LlamaDecoderLayer', mistral: 'MistralDecoderLayer', qwen2: 'Qwen2DecoderLayer', qwen3: 'Qwen3DecoderLayer', gemma3_text: 'Gemma3DecoderLayer', phi3: 'Phi3DecoderLayer',
};

export interface AccelerateExportResult {
  outDir: string;
  files: string[];
  trainRows: number;
  validationRows: number;
  launchCommand: string;
}

/** One row of the exported dataset. */
export interface ExportedRow {
  input_ids: number[];
  labels: number[];
  position_ids: number[];
}

/** One row of an exported preference dataset: TRL's columns as text, and the token ids Finch trains on. */
export interface ExportedPair {
  /** The prompt turns through the chat template, up to where the answer starts (special tokens as text). */
  prompt: string;
  chosen: string;
  rejected: string;
  prompt_ids: number[];
  /** The answer's tokens: from its first trained token to its last. */
  chosen_ids: number[];
  rejected_ids: number[];
}

/**
 * A split's pairs in TRL's prompt / chosen / rejected shape. Each side is prompt + answer as Finch
 * rendered and cut it; the prompt is what precedes the first trained token (the same on both sides).
 */
function pairRows(set: PairSet, store: SampleStore, tok: TextTokenizer, notes: string[]): ExportedPair[] {
  const out: ExportedPair[] = [];
  let holes = 0;
  for (let i = 0; i < set.length; i++) {
    const split = (s: number) => {
      const ids = [...store.tokens(s)], trained = store.trained(s);
      const first = trained.indexOf(1, 1), last = trained.lastIndexOf(1);
      if (trained.subarray(first, last + 1).includes(0)) holes++;
      return { prompt: ids.slice(0, first), answer: ids.slice(first, last + 1) };
    };
    const { chosen: c, rejected: r } = set.sides(i);
    const chosen = split(c), rejected = split(r);
    if (chosen.prompt.join() !== rejected.prompt.join()) {
      throw new AccelerateExportError(`line ${set.line(i)}: the chosen and rejected sides do not start with the same prompt tokens, which TRL's pairs need`);
    }
    const text = (ids: number[]) => tok.decode(ids, { skipSpecialTokens: false });
    out.push({
      prompt: text(chosen.prompt), chosen: text(chosen.answer), rejected: text(rejected.answer),
      prompt_ids: chosen.prompt, chosen_ids: chosen.answer, rejected_ids: rejected.answer,
    });
  }
  if (holes) notes.push(`${holes} answer sides have untrained tokens inside them (turns of several messages); TRL trains on all of an answer's tokens`);
  return out;
}

function rows(set: SequenceSet): ExportedRow[] {
  const out: ExportedRow[] = [];
  for (let i = 0; i < set.length; i++) {
    const b = set.batch([i], { dtype: 'int32' }); // exactly this sequence, no padding
    out.push({ input_ids: [...b.inputIds].map(Number), labels: [...b.labels].map(Number), position_ids: [...b.positionIds].map(Number) });
  }
  return out;
}

/** Exports run folder `runDir` (its run.json / checkpoint config) to `outDir`. */
export async function exportAccelerate(runDir: string, outDir: string, opts: { gpus?: number } = {}): Promise<AccelerateExportResult> {
  const cfg = resumeConfig(runDir);
  const out = path.resolve(outDir);
  if (!fs.existsSync(path.dirname(out))) throw new AccelerateExportError(`cannot write ${out}: the folder ${path.dirname(out)} does not exist`);
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new AccelerateExportError(`${out} already exists and is not empty; choose a new folder`);
  const modelCfg = loadModelConfig(cfg.model);
  const tok = loadTokenizer(cfg.model);
  const data = await prepareDataset(cfg.data, tok, {
    seqLen: cfg.seqLen, pack: cfg.pack, valFraction: cfg.valFraction, seed: cfg.seed, trainOn: cfg.trainOn, template: cfg.template,
    format: cfg.format, map: cfg.map, onBadRow: cfg.onBadRow,
  });
  const notes = [...data.notes];
  const preference = data.kind === 'pairs';
  if (preference !== (cfg.method !== 'sft')) {
    throw new AccelerateExportError(`${cfg.data}: the run's method is ${cfg.method} but the data holds ${preference ? 'preference pairs' : 'sequences'}`);
  }
  const [train, validation] = data.kind === 'pairs'
    ? [pairRows(data.train, data.samples, tok, notes), pairRows(data.validation, data.samples, tok, notes)]
    : [rows(data.train), rows(data.validation)];
  const gpus = opts.gpus ?? 2;

  // Everything is written in a temporary sibling folder, renamed into place at the end.
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.export-tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    const jsonl = (r: (ExportedRow | ExportedPair)[]) => r.map((x) => JSON.stringify(x)).join('\n') + (r.length ? '\n' : '');
    writeFileAtomic(path.join(tmp, 'data', 'train.jsonl'), jsonl(train));
    writeFileAtomic(path.join(tmp, 'data', 'validation.jsonl'), jsonl(validation));
    const lora = resolveLora(modelCfg, cfg.lora); // PEFT's module names of this family
    const table = settingsTable({ ...cfg, lora: { ...lora, targets: [...lora.targets] } });
    const padId = tok.padId ?? tok.eosIds[0] ?? 0;
    writeFileAtomic(path.join(tmp, 'train.py'), preference ? preferenceScript(cfg.method as 'dpo' | 'orpo', table, padId) : trainScript(table, padId));
    writeFileAtomic(path.join(tmp, 'accelerate', 'ddp.yaml'), accelerateConfig('MULTI_GPU', gpus, null));
    writeFileAtomic(path.join(tmp, 'accelerate', 'fsdp.yaml'), accelerateConfig('FSDP', gpus, DECODER_LAYER[modelCfg.modelType]));
    const launch = 'accelerate launch --config_file accelerate/ddp.yaml train.py';
    writeFileAtomic(path.join(tmp, 'README.md'), readme(cfg, table, launch, train.length, validation.length, notes));
    if (fs.existsSync(out)) fs.rmdirSync(out);
    fs.renameSync(tmp, out);
    return { outDir: out, files: ['data/train.jsonl', 'data/validation.jsonl', 'train.py', 'accelerate/ddp.yaml', 'accelerate/fsdp.yaml', 'README.md'], trainRows: train.length, validationRows: validation.length, launchCommand: `cd ${JSON.stringify(out)} && ${launch}` };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function accelerateConfig(kind: 'MULTI_GPU' | 'FSDP', gpus: number, layerClass: string | null): string {
  const lines = [
    '# Written by Finch. Set num_processes to the number of GPUs (per machine x machines).',
    'compute_environment: LOCAL_MACHINE',
    `distributed_type: ${kind}`,
    'mixed_precision: bf16',
    'num_machines: 1',
    'machine_rank: 0',
    `num_processes: ${gpus}`,
    'gpu_ids: all',
    'rdzv_backend: static',
    'same_network: true',
    'use_cpu: false',
    'main_training_function: main',
  ];
  if (kind === 'FSDP') {
    lines.push(
      'fsdp_config:',
      '  fsdp_version: 1',
      '  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP',
      `  fsdp_transformer_layer_cls_to_wrap: ${layerClass}`,
      '  fsdp_sharding_strategy: FULL_SHARD',
      '  fsdp_backward_prefetch: BACKWARD_PRE',
      '  fsdp_state_dict_type: SHARDED_STATE_DICT',
      '  fsdp_cpu_ram_efficient_loading: true',
      '  fsdp_sync_module_states: true',
      '  fsdp_use_orig_params: true',
      '  fsdp_offload_params: false',
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * The start of main() that both scripts share: the command line (`extraArgs`: more
 * parser.add_argument lines) and the 4-bit check, before the imports that take seconds.
 */
function mainPrologue(extraArgs: string[]): string {
  return `def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=MODEL, help="base model folder or Hub id (default: the run's)")
${extraArgs.map((a) => `    ${a}\n`).join('')}    parser.add_argument("--output-dir", default=os.path.join(HERE, "output"))
    parser.add_argument("--no-4bit", action="store_true", help="load the base unquantised even though the run used 4 bits")
    cli = parser.parse_args()
    load_in_4bit = LOAD_IN_4BIT and not cli.no_4bit
    if load_in_4bit:
        check_4bit()
    # Imported once the checks have passed: they take seconds.
`;
}

/** train.py's check, before anything loads, that a 4-bit run has what bitsandbytes needs. */
const CHECK_4BIT = `def check_4bit():
    """4-bit (bitsandbytes) needs a CUDA GPU and the bitsandbytes package: say so before loading anything."""
    missing = []
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU (torch.cuda.is_available() is False)")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package (pip install bitsandbytes)")
    if missing:
        sys.exit(
            "This run was trained with a 4-bit base (QLoRA), which needs " + " and ".join(missing) + ".\\n"
            "Install what is missing, or train the same LoRA on the unquantised base with --no-4bit "
            "(the base then takes 2 bytes a weight on a GPU, 4 on the CPU)."
        )
`;

/** train.py's lines (in main) that load the base: bfloat16 on a GPU that has it, else float32; 4-bit NF4 for QLoRA. */
function loadModel(gradientCheckpointing: string): string {
  return `    # bfloat16 where the GPU has it; float32 on the CPU (no fast bfloat16 there, and what Finch trains in).
    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    kwargs = {"dtype": dtype}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16
        )
    model = AutoModelForCausalLM.from_pretrained(cli.model, **kwargs)
    if load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=${gradientCheckpointing})
`;
}

/** The settings table's rows of one Hugging Face class as keyword arguments (indented for train.py). */
function kwargs(table: SettingRow[], cls: string, indent: string): string[] {
  return table.filter((r) => r.hf.startsWith(`${cls}.`)).map((r) => `${indent}${r.hf.slice(cls.length + 1)}=${r.python},  # finch: ${r.finch}`);
}

/**
 * The TrainingArguments both scripts set besides the run's own (inside main's call, indented): Finch's
 * AdamW constants, evaluation and saving on the run's steps, and the CPU when there is no GPU.
 */
function sharedTrainingArgs(evalSteps: string): string {
  return `        eval_strategy="steps" if ${evalSteps} and val_rows else "no",
        save_strategy="steps",
        logging_steps=1,
        bf16=dtype == torch.bfloat16,
        use_cpu=not gpu,  # without a GPU: processes started by accelerate launch train on the CPU (DDP over gloo)
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        report_to=[],
        ddp_find_unused_parameters=False,`;
}

function trainScript(table: SettingRow[], padId: number): string {
  const v = (hf: string) => table.find((r) => r.hf === hf)!.python;
  const lora = kwargs(table, 'LoraConfig', '    ');
  const args = kwargs(table, 'TrainingArguments', '    ');
  return `# Written by Finch (finch export accelerate): the Finch run's settings on Hugging Face
# Transformers + PEFT, for multi-GPU training. Launch with the command in README.md.
# The dataset in data/ is the run's sequences exactly as Finch tokenised and masked them.
import argparse
import importlib.util
import json
import os
import sys

import torch

MODEL = ${v('MODEL (from_pretrained path or Hub id)')}
SEQ_LEN = ${v('SEQ_LEN (rows are already cut to it)')}
LOAD_IN_4BIT = ${v('BitsAndBytesConfig(load_in_4bit=...)')}
PAD_ID = ${padId}
HERE = os.path.dirname(os.path.abspath(__file__))


def read_jsonl(name):
    with open(os.path.join(HERE, "data", name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class TokenisedRows(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def collate(batch):
    """Right-pads a batch: input_ids with PAD_ID, labels with -100, attention_mask 0."""
    width = max(len(r["input_ids"]) for r in batch)
    out = {"input_ids": [], "labels": [], "attention_mask": [], "position_ids": []}
    for r in batch:
        pad = width - len(r["input_ids"])
        out["input_ids"].append(r["input_ids"] + [PAD_ID] * pad)
        out["labels"].append(r["labels"] + [-100] * pad)
        out["attention_mask"].append([1] * len(r["input_ids"]) + [0] * pad)
        out["position_ids"].append(r["position_ids"] + list(range(len(r["position_ids"]), width)))
    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


${CHECK_4BIT}

${mainPrologue([])}    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

${loadModel(v('TrainingArguments.gradient_checkpointing'))}    lora = LoraConfig(
${lora.join('\n')}
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()

    train_rows, val_rows = read_jsonl("train.jsonl"), read_jsonl("validation.jsonl")
    args = TrainingArguments(
        output_dir=cli.output_dir,
${args.map((a) => '    ' + a).join('\n')}
        remove_unused_columns=False,
${sharedTrainingArgs(v('TrainingArguments.eval_steps'))}
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=TokenisedRows(train_rows),
        eval_dataset=TokenisedRows(val_rows) if val_rows else None,
        data_collator=collate,
    )
    trainer.train()
    if val_rows:
        print(trainer.evaluate())
    # PEFT format (adapter_config.json + adapter_model.safetensors): finch generate --adapter DIR
    trainer.save_model(os.path.join(cli.output_dir, "adapter"))


if __name__ == "__main__":
    main()
`;
}

function readme(cfg: TrainConfig, table: SettingRow[], launch: string, trainRows: number, valRows: number, notes: string[]): string {
  const preference = cfg.method !== 'sft';
  const trainer = cfg.method === 'dpo' ? "TRL's `DPOTrainer` (sigmoid loss)" : cfg.method === 'orpo' ? "TRL's `ORPOTrainer` (`trl.experimental.orpo`)" : "Transformers' `Trainer`";
  return `# Finch run, exported for multi-GPU training

Written by \`finch export accelerate\`: ${cfg.method === 'sft' ? 'an SFT' : `a ${cfg.method.toUpperCase()}`} run on ${trainer} with PEFT. The base model is
\`${path.resolve(cfg.model)}\` (pass \`--model\` to train.py to use another path or a Hub id of the same model).${preference && cfg.initAdapter ? `
The run started from the adapter \`${path.resolve(cfg.initAdapter)}\` (\`--init-adapter\` to use another copy), trained further with its own rank, alpha and targets${cfg.method === 'dpo' ? '; a frozen copy of it is the DPO reference' : ''}.` : cfg.method === 'dpo' ? `
The DPO reference is the base with the LoRA switched off, as in Finch.` : ''}

## Run

\`\`\`sh
pip install torch transformers peft accelerate${preference ? ' trl datasets' : ''}${cfg.quantize ? ' bitsandbytes' : ''}
${launch}                        # data parallel (DDP), one process per GPU
accelerate launch --config_file accelerate/fsdp.yaml train.py       # or sharded (FSDP) for models that do not fit one GPU
\`\`\`

Set \`num_processes\` in the YAML file to your GPU count. Without a GPU,
\`accelerate launch --multi_gpu --num_processes 2 train.py\` trains on the CPU in two processes (DDP
over gloo): slow, but a check of the setup before renting GPUs. Finch's CI runs it on its demo
model with torch ${TESTED.torch}, transformers ${TESTED.transformers}, peft ${TESTED.peft}${preference ? `, accelerate ${TESTED.accelerate} and trl ${TESTED.trl}` : ` and accelerate ${TESTED.accelerate}`}.${cfg.quantize ? `
This run used a 4-bit base: \`train.py\` loads it with bitsandbytes (NF4), which needs a CUDA GPU; it
says so and stops where either is missing, and \`--no-4bit\` trains the same LoRA on the unquantised base.` : ''} The adapter lands in \`output/adapter\`
in PEFT format; compare it with the base in Finch:

\`\`\`sh
${preference
    ? `npx finch eval --method ${cfg.method} --model ${JSON.stringify(path.resolve(cfg.model))} --adapter output/adapter --data held-out-pairs.jsonl --json`
    : `npx finch generate --model ${JSON.stringify(path.resolve(cfg.model))} --adapter output/adapter --prompt "..."`}
\`\`\`

## Data

${preference
    ? `\`data/train.jsonl\` (${trainRows} pairs) and \`data/validation.jsonl\` (${valRows} pairs): one pair a line in TRL's
columns. \`prompt\`, \`chosen\` and \`rejected\` are text: the prompt turns rendered through the run's chat
template up to where the answer starts, and each answer as Finch rendered it (special tokens
written out). \`prompt_ids\`, \`chosen_ids\` and \`rejected_ids\` are the same as Finch's token ids, each
side cut to the sequence length as Finch cut it; train.py hands these to the trainer as they are,
so TRL does not tokenise the text again.`
    : `\`data/train.jsonl\` (${trainRows} rows) and \`data/validation.jsonl\` (${valRows} rows): one sequence a line,
\`input_ids\`, \`labels\` (the token itself where Finch trains on it, -100 where it does not; the
model shifts them) and \`position_ids\` (restarting at each packed sample).`} ${notes.length ? `Preparation notes: ${notes.join('; ')}.` : ''}

## Settings

| Finch | Hugging Face | Value |
|---|---|---|
${table.map((r) => `| ${r.finch} | ${r.hf} | \`${r.python}\` |`).join('\n')}

What does not carry over exactly:
- Batch: each GPU takes \`per_device_train_batch_size\` ${preference ? 'pairs' : 'rows'}, so the global batch is batch x
  accumulation x GPUs; divide \`gradient_accumulation_steps\` by the GPU count to keep Finch's.
- Order and dropout: the Trainer shuffles with its own sampler (seeded) and draws its own dropout
  masks, so losses match Finch's in distribution, not step for step.
- 4-bit: Finch stores symmetric int4 blocks of 32; bitsandbytes uses NF4 with double quantization.
${preference
    ? `- Answers: TRL scores every token of an answer; Finch its trained tokens, which are the same
  tokens unless an answer holds several turns.${cfg.method === 'dpo' && cfg.initAdapter ? `
- Reference: TRL's copy of the starting adapter keeps its LoRA dropout while training; Finch's
  frozen reference has none.` : ''}`
    : `- Packed rows (\`pack\`): Finch keeps packed samples from attending to each other; plain attention
  in Transformers does not (flash-attention 2 with \`position_ids\` does).`}
`;
}

/**
 * train.py of a preference run: TRL's DPOTrainer or ORPOTrainer over the pairs Finch tokenised. The
 * trainers take the ids as they are (their own tokenising is skipped), so each side is exactly
 * Finch's prompt + answer tokens, cut to the sequence length as Finch cut them.
 */
function preferenceScript(method: 'dpo' | 'orpo', table: SettingRow[], padId: number): string {
  const v = (hf: string) => table.find((r) => r.hf === hf)!.python;
  const init = table.find((r) => r.hf.startsWith('INIT_ADAPTER'))!.python;
  const lora = kwargs(table, 'LoraConfig', '        ');
  const config = method === 'dpo' ? 'DPOConfig' : 'ORPOConfig';
  const args = [...kwargs(table, 'TrainingArguments', '        '), ...kwargs(table, config, '        ')];
  const trainer = method === 'dpo'
    ? `    from trl import DPOConfig, DPOTrainer

    class FinchPairsDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            # The rows already hold prompt_ids, chosen_ids and rejected_ids: Finch's tokens, not re-tokenised.
            return dataset

    Trainer, Config = FinchPairsDPOTrainer, DPOConfig
    # The reference: the base with the LoRA switched off (peft_config), or, with an INIT_ADAPTER,
    # a frozen copy of that adapter which TRL makes itself (its "ref" adapter).`
    : `    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    class FinchPairsORPOTrainer(ORPOTrainer):
        def tokenize_row(self, feature, model=None):
            # Finch's tokens, not re-tokenised: each side is the prompt + its answer, trained on the answer.
            prompt = feature["prompt_ids"]
            row = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
            for side in ("chosen", "rejected"):
                answer = feature[side + "_ids"]
                row[side + "_input_ids"] = prompt + answer
                row[side + "_attention_mask"] = [1] * (len(prompt) + len(answer))
                row[side + "_labels"] = [-100] * len(prompt) + answer
            return row

    Trainer, Config = FinchPairsORPOTrainer, ORPOConfig  # no reference model: ORPO has none`;
  return `# Written by Finch (finch export accelerate): the Finch run's settings on TRL's ${method === 'dpo' ? 'DPOTrainer' : 'ORPOTrainer'}
# + PEFT, for multi-GPU training. Launch with the command in README.md. The pairs in data/ are
# Finch's: each side tokenised through the run's chat template and cut as Finch cut it.
import argparse
import importlib.util
import json
import os
import sys

import torch

MODEL = ${v('MODEL (from_pretrained path or Hub id)')}
SEQ_LEN = ${v('SEQ_LEN (rows are already cut to it)')}
LOAD_IN_4BIT = ${v('BitsAndBytesConfig(load_in_4bit=...)')}
INIT_ADAPTER = ${init}
PAD_ID = ${padId}
HERE = os.path.dirname(os.path.abspath(__file__))


def read_jsonl(name):
    with open(os.path.join(HERE, "data", name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


${CHECK_4BIT}

${mainPrologue(['parser.add_argument("--init-adapter", default=INIT_ADAPTER, help="PEFT adapter to start from (default: the run\'s)")'])}    from datasets import Dataset
    from peft import LoraConfig, PeftModel, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

${loadModel(v('TrainingArguments.gradient_checkpointing'))}    tokenizer = AutoTokenizer.from_pretrained(cli.model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(PAD_ID)
    if cli.init_adapter:
        # Trained further with its own rank, alpha and targets, as Finch does.
        model, peft_config = PeftModel.from_pretrained(model, cli.init_adapter, is_trainable=True), None
    else:
        peft_config = LoraConfig(
${lora.join('\n')}
            bias="none",
            task_type="CAUSAL_LM",
        )
${trainer}

    train_rows, val_rows = read_jsonl("train.jsonl"), read_jsonl("validation.jsonl")
    args = Config(
        output_dir=cli.output_dir,
${args.join('\n')}
        max_length=SEQ_LEN,  # finch: seqLen (the rows are already cut to it)
        disable_dropout=False,  # Finch keeps the LoRA dropout of the policy
${sharedTrainingArgs(v('TrainingArguments.eval_steps'))}
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train()
    if val_rows:
        print(trainer.evaluate())
    # PEFT format (adapter_config.json + adapter_model.safetensors): finch eval --method ${method} --adapter DIR
    trainer.save_model(os.path.join(cli.output_dir, "adapter"))


if __name__ == "__main__":
    main()
`;
}
