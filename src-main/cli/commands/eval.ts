// `finch eval`: loss / perplexity of a model (and an adapter) on a dataset, and with
// --exact-match the accuracy of final answers (GSM8K "#### N", MetaMathQA "The answer is: N"),
// base and adapter side by side in one generation batch. With --method dpo|orpo: a preference
// objective over a dataset of pairs, and TRL's reward metrics.

import { PROVIDER_OPTIONS, PROVIDER_USAGE, chooseProvider, providerFlags } from '../provider.js';
import { FORMAT_NAMES, type FormatName, parseColumnMap } from '../../data/formats.js';
import { adapterTemplate, loadPeftAdapter } from '../../model/adapter.js';
import { loadModel } from '../../model/load.js';
import { evaluateExactMatch, evaluateLoss, evaluatePreference, readQa } from '../../train/evaluate.js';
import { type Objective, objectiveOf } from '../../train/objective.js';
import { configFrom, settingLine } from '../run-options.js';
import { reportError } from '../errors.js';
import { parseCommand } from '../args.js';

const USAGE = `Usage: finch eval --model DIR --data FILE [options]
       finch eval --method dpo|orpo --model DIR [--adapter DIR] --data PAIRS [options]

  --adapter DIR        also evaluate this PEFT adapter (the base is reported beside it); chat rows
                       are rendered with the template the adapter was trained with (finch_adapter.json)
  --method M           sft (default) | dpo | orpo: sft scores the loss and perplexity; dpo and orpo
                       score preference pairs (prompt, chosen, rejected) as training does: the
                       loss, reward accuracy, margin and each side's mean reward, of the adapter
                       (of the base without one)
${settingLine('beta', 23)}
${settingLine('labelSmoothing', 23)}
${settingLine('orpoLambda', 23)}
  --ref-adapter DIR    dpo: the reference is the base + this adapter (the adapter a run continued
                       from with --init-adapter), not the base
  --format F           ${FORMAT_NAMES.join(' | ')} (default: detected)
  --map K=COL,...      column mapping, e.g. prompt=query,completion=response
  --train-on W         completions (default) | all: which tokens are scored
                       (raw text rows score every token: BOS if the tokenizer adds one, text, EOS)
  --seq-len N          default 1024
  --batch N            default 8
  --exact-match        also generate answers and score final-answer exact match
  --limit N            exact match on the first N rows only
  --max-new-tokens N   for --exact-match (default 256)
  --4bit               load the frozen weights in 4 bits
  --threads N
${PROVIDER_USAGE}
  --json               print one JSON object`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('eval', argv, {
    model: { type: 'string' }, adapter: { type: 'string' }, data: { type: 'string' }, format: { type: 'string' }, map: { type: 'string' },
    'train-on': { type: 'string', default: 'completions' }, 'seq-len': { type: 'string', default: '1024' }, batch: { type: 'string', default: '8' },
    'exact-match': { type: 'boolean', default: false }, limit: { type: 'string' }, 'max-new-tokens': { type: 'string', default: '256' },
    '4bit': { type: 'boolean', default: false }, threads: { type: 'string', default: '0' }, json: { type: 'boolean', default: false },
    method: { type: 'string', default: 'sft' }, beta: { type: 'string' }, 'label-smoothing': { type: 'string' }, 'orpo-lambda': { type: 'string' },
    'ref-adapter': { type: 'string' },
    ...PROVIDER_OPTIONS,
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  if (!values.model || !values.data) { console.error(`finch eval: --model and --data are required.\n\n${USAGE}`); return 2; }
  if (values.format && !FORMAT_NAMES.includes(values.format as FormatName)) { console.error(`finch eval: --format must be one of ${FORMAT_NAMES.join(', ')}`); return 2; }
  if (!['completions', 'all'].includes(values['train-on'])) { console.error('finch eval: --train-on must be completions or all'); return 2; }
  const ints = { seqLen: Number(values['seq-len']), batch: Number(values.batch), maxNew: Number(values['max-new-tokens']), threads: Number(values.threads) };
  for (const [k, n] of Object.entries(ints)) if (!Number.isInteger(n) || n < 0) { console.error(`finch eval: ${k} must be a non-negative integer`); return 2; }

  // The objective's settings, checked as `finch train` checks them (the run-configuration schema).
  let objective: Objective;
  try {
    objective = objectiveOf(configFrom({ model: '-', data: '-', out: '-', method: values.method, beta: values.beta, 'label-smoothing': values['label-smoothing'], 'orpo-lambda': values['orpo-lambda'] }));
  } catch (e) {
    console.error(`finch eval: ${(e as Error).message}`);
    return 2;
  }
  if (values['ref-adapter'] && objective.method !== 'dpo') { console.error('finch eval: --ref-adapter is for --method dpo'); return 2; }
  if (objective.method !== 'sft' && values['exact-match']) { console.error('finch eval: --exact-match scores generated answers: use it with --method sft'); return 2; }

  let model, device;
  try {
    device = await chooseProvider(providerFlags(values));
    model = loadModel(values.model, { quantize: values['4bit'] });
  } catch (e) {
    return reportError('eval', e);
  }
  try {
    const adapter = values.adapter ? loadPeftAdapter(values.adapter, model.config) : null;
    // Base and adapter alike render chat rows as the adapter's training did (finch_adapter.json).
    const template = adapterTemplate(adapter);
    const dataOpts = {
      format: values.format as FormatName | undefined, map: values.map ? parseColumnMap(values.map) : undefined, template,
      trainOn: values['train-on'] as 'completions' | 'all', seqLen: ints.seqLen, batch: ints.batch, threads: ints.threads,
      provider: device.provider, strictProvider: device.strict,
    };
    const log = (s: string) => { if (!values.json) console.error(s); };
    if (objective.method !== 'sft') {
      log(`scoring the pairs (${objective.method})...`);
      const reference = values['ref-adapter'] ? loadPeftAdapter(values['ref-adapter'], model.config) : null;
      const r = await evaluatePreference(model, values.data, adapter, objective, { ...dataOpts, reference });
      const { perPair: _, ...metrics } = r;
      if (values.json) console.log(JSON.stringify({ method: objective.method, ...metrics, provider: device.provider, adapter_device: device.adapter }));
      else {
        console.log(`${adapter ? 'adapter' : 'base'}: ${objective.method} loss ${r.loss.toFixed(4)} over ${r.pairs} pairs; reward accuracy ${(r.reward_accuracy * 100).toFixed(1)}%, ` +
          `margin ${r.reward_margin.toFixed(4)} (chosen ${r.rewards_chosen.toFixed(4)}, rejected ${r.rewards_rejected.toFixed(4)})`);
      }
      return 0;
    }
    log('scoring the loss...');
    const base = await evaluateLoss(model, values.data, null, dataOpts);
    const tuned = adapter ? await evaluateLoss(model, values.data, adapter, dataOpts) : null;
    let em = null;
    if (values['exact-match']) {
      const qa = await readQa(values.data, { format: dataOpts.format, map: dataOpts.map, limit: values.limit ? Number(values.limit) : undefined });
      log(`generating answers for ${qa.length} prompts...`);
      em = await evaluateExactMatch(model, qa, adapter, { maxNewTokens: ints.maxNew, batch: ints.batch, threads: ints.threads, template, provider: device.provider, strictProvider: device.strict });
    }
    const main = tuned ?? base;
    const result = {
      loss: main.loss, perplexity: main.perplexity, tokens: main.tokens,
      exact_match: em ? (em.adapter ?? em.base) : null,
      provider: device.provider, adapter_device: device.adapter,
      ...(adapter ? { base: { loss: base.loss, perplexity: base.perplexity, tokens: base.tokens, exact_match: em ? em.base : null } } : {}),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      const line = (name: string, r: { loss: number; perplexity: number; tokens: number }, acc: number | null) =>
        console.log(`${name.padEnd(8)} loss ${r.loss.toFixed(4)}  perplexity ${r.perplexity.toFixed(2)}  tokens ${r.tokens}${acc === null ? '' : `  exact match ${(acc * 100).toFixed(1)}%`}`);
      line('base', base, em ? em.base : null);
      if (tuned) line('adapter', tuned, em ? em.adapter : null);
    }
    return 0;
  } catch (e) {
    return reportError('eval', e);
  } finally {
    model.close();
  }
}
