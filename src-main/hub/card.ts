// The model card (README.md) of a pushed adapter, merged model or GGUF file: YAML front matter as
// the Hub reads it (base_model and base_model_relation put the repository in the base model's
// tree, library_name says how to load it, datasets link the training data, tags), then what was
// trained, how, and how well: base model, dataset, method and settings, the run's final losses and
// the base-versus-tuned comparison when there is one. Pure text from facts; push.ts gathers them.

import { stringify } from 'yaml';

export type PushKind = 'adapter' | 'merged' | 'gguf';

/** The LoRA and optimisation settings of the run (a TrainConfig's, or what adapter_config.json says). */
export interface TrainingFacts {
  /** The base was frozen in 4 bits (QLoRA) with this block size; false: float32 (LoRA); null: unknown. */
  quantized: { blockSize: number } | false | null;
  lora: { rank: number; alpha: number; dropout: number; rslora: boolean; targets: string[] };
  /** Null for an adapter known only from its adapter_config.json. */
  optimisation: {
    lr: number; schedule: string; warmupSteps: number; weightDecay: number; maxGradNorm: number | null;
    batch: number; gradAccum: number; epochs: number; maxSteps: number | null; seqLen: number; trainOn: string; seed: number;
  } | null;
}

/** A base-versus-tuned comparison on held-out rows (the app's batch compare, `finch demo`). */
export interface ComparisonFacts {
  /** What the rows were ("held-out problems of the demo dataset"). */
  on: string;
  rows: number;
  baseAccuracy: number;
  tunedAccuracy: number;
}

export interface CardFacts {
  kind: PushKind;
  /** The repository pushed to (owner/name). */
  repo: string;
  /** The Hub's address, for links. */
  endpoint: string;
  /** The base model's Hub id, or null for a local model (then `baseModelName` names it). */
  baseModel: string | null;
  baseModelName: string | null;
  /** The datasets' Hub ids; `datasetName` names a local file. */
  datasets: string[];
  datasetName: string | null;
  training: TrainingFacts | null;
  steps: number | null;
  finalLoss: number | null;
  evalLoss: number | null;
  comparison: ComparisonFacts | null;
  /** The GGUF file and its weights' type ("q8_0"), for kind gguf. */
  gguf?: { file: string; dtype: string | null };
}

const RELATION: Record<PushKind, string> = { adapter: 'adapter', merged: 'finetune', gguf: 'finetune' };
const LIBRARY: Record<PushKind, string | null> = { adapter: 'peft', merged: 'transformers', gguf: null };

/** The front matter as an object (what the Hub parses), in the order it is written. */
export function cardMetadata(f: CardFacts): Record<string, unknown> {
  const quantized = Boolean(f.training?.quantized);
  return {
    ...(f.baseModel ? { base_model: f.baseModel, base_model_relation: RELATION[f.kind] } : {}),
    ...(LIBRARY[f.kind] ? { library_name: LIBRARY[f.kind] } : {}),
    pipeline_tag: 'text-generation',
    ...(f.datasets.length ? { datasets: f.datasets } : {}),
    tags: ['finch', 'lora', ...(quantized ? ['qlora'] : []), ...(f.kind === 'gguf' ? ['gguf'] : [])],
  };
}

/** README.md for the repository: front matter, then the card. */
export function modelCard(f: CardFacts): string {
  const link = (id: string, dataset = false) => `[${id}](${f.endpoint}/${dataset ? 'datasets/' : ''}${id})`;
  const base = f.baseModel ? link(f.baseModel) : f.baseModelName ? `${code(f.baseModelName)} (a local model)` : 'a base model';
  const data = f.datasets.length ? f.datasets.map((d) => link(d, true)).join(', ') : f.datasetName ? `${code(f.datasetName)} (a local file)` : null;
  const what = f.kind === 'adapter' ? 'A LoRA adapter for' : f.kind === 'merged' ? 'The merged weights of a LoRA fine-tune of'
    : `A GGUF file${f.gguf?.dtype ? ` (${f.gguf.dtype} weights)` : ''} of a LoRA fine-tune of`;
  const lines = [
    '---', stringify(cardMetadata(f)).trimEnd(), '---', '',
    `# ${f.repo.split('/')[1]}`, '',
    `${what} ${base}, trained with Finch${data ? ` on ${data}` : ''}.`, '',
  ];

  lines.push('## Training', '', '| Setting | Value |', '|---|---|', `| Base model | ${base} |`);
  if (data) lines.push(`| Dataset | ${data} |`);
  const t = f.training;
  if (t) {
    const q = t.quantized;
    lines.push(`| Method | ${q === null ? 'LoRA' : q ? `QLoRA: the frozen base in 4 bits (blocks of ${q.blockSize}), the adapter trained in float32` : 'LoRA on the float32 base'} |`);
    const l = t.lora, scale = l.rslora ? l.alpha / Math.sqrt(l.rank) : l.alpha / l.rank;
    lines.push(`| LoRA | rank ${l.rank}, alpha ${l.alpha} (scale ${num(scale)}${l.rslora ? ', rsLoRA' : ''}), dropout ${l.dropout}, on ${l.targets.join(', ')} |`);
    const o = t.optimisation;
    if (o) {
      lines.push(
        `| Optimizer | AdamW, learning rate ${o.lr}, ${o.schedule} schedule, ${o.warmupSteps} warm-up steps, weight decay ${o.weightDecay}, ${o.maxGradNorm === null ? 'no gradient clipping' : `gradient norm clipped at ${o.maxGradNorm}`} |`,
        `| Batch | ${o.batch} sequences × ${o.gradAccum} accumulation step${o.gradAccum === 1 ? '' : 's'} |`,
        `| Length | ${o.epochs} epoch${o.epochs === 1 ? '' : 's'}${o.maxSteps ? `, at most ${o.maxSteps} steps` : ''} |`,
        `| Sequence length | ${o.seqLen} tokens |`,
        `| Trained on | ${o.trainOn === 'completions' ? 'the completions (prompt tokens masked)' : 'every token'} |`,
        `| Seed | ${o.seed} |`,
      );
    }
  }
  lines.push('');

  const results: string[] = [];
  if (f.steps !== null) results.push(`| Steps trained | ${f.steps} |`);
  if (f.finalLoss !== null) results.push(`| Final training loss | ${num(f.finalLoss)} |`);
  if (f.evalLoss !== null) results.push(`| Final evaluation loss | ${num(f.evalLoss)} (perplexity ${num(Math.exp(f.evalLoss))}) |`);
  const c = f.comparison;
  if (c) results.push(`| Base vs tuned | ${pct(c.baseAccuracy)} → ${pct(c.tunedAccuracy)} right answers on ${c.rows} ${c.on} |`);
  if (results.length) lines.push('## Results', '', '| | |', '|---|---|', ...results, '');

  lines.push('## Use', '', ...usage(f), '');
  return lines.join('\n');
}

function usage(f: CardFacts): string[] {
  if (f.kind === 'adapter' && f.baseModel) {
    return ['With PEFT (it loads the base model named in adapter_config.json):', '', '```python', 'from peft import AutoPeftModelForCausalLM',
      '', `model = AutoPeftModelForCausalLM.from_pretrained("${f.repo}")`, '```'];
  }
  if (f.kind === 'adapter') {
    const local = (f.baseModelName ?? 'base-model').replace(/["\\\n]/g, '');
    return ['With PEFT, on the base model from where you keep it:', '', '```python', 'from peft import PeftModel', 'from transformers import AutoModelForCausalLM', '',
      `base = AutoModelForCausalLM.from_pretrained("path/to/${local}")`, `model = PeftModel.from_pretrained(base, "${f.repo}")`, '```'];
  }
  if (f.kind === 'merged') {
    return ['With Transformers:', '', '```python', 'from transformers import AutoModelForCausalLM, AutoTokenizer', '',
      `model = AutoModelForCausalLM.from_pretrained("${f.repo}")`, `tokenizer = AutoTokenizer.from_pretrained("${f.repo}")`, '```'];
  }
  const file = f.gguf?.file ?? 'model.gguf';
  return ['With llama.cpp or Ollama:', '', '```sh', `llama-cli --hf-repo ${f.repo} --hf-file ${file} -p "Hello"`, `ollama run hf.co/${f.repo}`, '```'];
}

const num = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, '').replace(/\.$/, ''));
const pct = (v: number): string => `${(v * 100).toFixed(0)}%`;
/** A local name as inline code (its backticks and table bars dropped). */
const code = (s: string): string => `\`${s.replace(/[`|\n]/g, '')}\``;
