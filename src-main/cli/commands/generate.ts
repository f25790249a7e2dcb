// `finch generate`: continues a prompt with a Hugging Face model folder, optionally with a PEFT
// LoRA adapter, streaming the text to the terminal.

import { PROVIDER_OPTIONS, PROVIDER_USAGE, chooseProvider, providerFlags } from '../provider.js';
import { Generator } from '../../infer/generate.js';
import { GREEDY, type SamplingOptions } from '../../infer/sampling.js';
import { adapterTemplate, loadPeftAdapter } from '../../model/adapter.js';
import { encodeGenerationPrompt } from '../../data/template.js';
import { loadModel } from '../../model/load.js';
import { prepareInt4 } from '../../model/quant-cache.js';
import { createProgress } from '../progress.js';
import { reportError } from '../errors.js';
import { parseCommand } from '../args.js';

const USAGE = `Usage: finch generate --model DIR --prompt TEXT [options]

Options:
  --model DIR            Hugging Face model folder (required)
  --adapter DIR          PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)
  --prompt TEXT          the prompt ("" starts from the BOS token)
  --chat                 wrap the prompt in a chat template as a user turn: the one the adapter
                         was trained with (finch_adapter.json), else the model's, else Finch's fallback
  --system TEXT          a system message (with --chat)
  --max-new-tokens N     default 128
  --greedy               pick the most likely token (the default)
  --temperature T        sample at temperature T (with --top-p, --top-k, --seed)
  --top-p P              nucleus sampling (default 1)
  --top-k K              top-k sampling (default 0 = off)
  --repetition-penalty R default 1 (off)
  --seed S               sampling seed (default 0)
  --stop TEXT            stop when TEXT appears (repeatable)
  --4bit                 load the frozen weights in 4 bits; their products quantize each activation
                         row to int8 per block of 32, as llama.cpp's q4_0 does (about twice the decode
                         speed of exact; docs/perf.md "int8 activations")
  --exact                with --4bit: float32 activations instead, the arithmetic of the training graphs
  --threads N            CPU threads (default: all)
${PROVIDER_USAGE}
  --json                 print {"text": "...", "ids": [...generated ids], "prompt_ids": [...]}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('generate', argv, {
    model: { type: 'string' }, adapter: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'boolean', default: false },
    system: { type: 'string' }, 'max-new-tokens': { type: 'string', default: '128' }, greedy: { type: 'boolean', default: false },
    temperature: { type: 'string' }, 'top-p': { type: 'string', default: '1' }, 'top-k': { type: 'string', default: '0' },
    'repetition-penalty': { type: 'string', default: '1' }, seed: { type: 'string', default: '0' }, stop: { type: 'string', multiple: true },
    '4bit': { type: 'boolean', default: false }, exact: { type: 'boolean', default: false }, threads: { type: 'string', default: '0' }, json: { type: 'boolean', default: false },
    ...PROVIDER_OPTIONS,
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  if (!values.model || values.prompt === undefined) { console.error(`finch generate: --model and --prompt are required.\n\n${USAGE}`); return 2; }
  if (values.exact && !values['4bit']) { console.error('finch generate: --exact applies to --4bit weights (float weights are exact already); add --4bit or drop --exact'); return 2; }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got "${v}"`);
    return n;
  };
  let sampling: SamplingOptions, maxNew: number;
  try {
    maxNew = num('max-new-tokens', values['max-new-tokens'], 1);
    const temperature = values.greedy || values.temperature === undefined ? 0 : num('temperature', values.temperature, 0);
    sampling = temperature === 0 ? { ...GREEDY, repetitionPenalty: num('repetition-penalty', values['repetition-penalty'], 0) } : {
      temperature, topP: num('top-p', values['top-p'], 0), topK: num('top-k', values['top-k'], 0),
      repetitionPenalty: num('repetition-penalty', values['repetition-penalty'], 0), seed: num('seed', values.seed, 0),
    };
  } catch (e) {
    console.error(`finch generate: ${(e as Error).message}`);
    return 2;
  }

  let model, device;
  try {
    device = await chooseProvider(providerFlags(values));
    model = loadModel(values.model, { quantize: values['4bit'] });
  } catch (e) {
    return reportError('generate', e);
  }
  try {
    if (values['4bit']) {
      // Quantized blocks from FINCH_HOME's cache, or quantized now on every core (then cached).
      let bar: ReturnType<typeof createProgress> | null = null;
      await prepareInt4(model.dir, model.config, model.weights, {
        onMessage: (m) => console.error(`finch generate: ${m}`),
        onProgress: (done, total) => {
          if (done === total && !bar) return; // a cache hit: nothing to show
          bar ??= createProgress({ label: 'quantizing to 4 bits', total, unit: 'weights', stream: process.stderr });
          bar.update(done);
          if (done === total) bar.stop();
        },
      });
    }
    const tok = model.tokenizer;
    const adapter = values.adapter ? loadPeftAdapter(values.adapter, model.config) : null;
    let ids: number[];
    if (values.chat) {
      const messages = [...(values.system ? [{ role: 'system' as const, content: values.system }] : []), { role: 'user' as const, content: values.prompt }];
      // As the adapter's training rendered prompts; without a record, the model's template, else Finch's fallback.
      ids = encodeGenerationPrompt(tok, messages, adapterTemplate(adapter));
    } else if (values.prompt === '') {
      if (tok.bosId === null) { console.error('finch generate: an empty prompt needs a BOS token, and this tokenizer has none'); return 2; }
      ids = [tok.bosId];
    } else {
      ids = tok.encode(values.prompt, { addSpecialTokens: true });
    }
    const gen = await Generator.create(model.weights, model.invFreq, {
      maxPositions: Math.min(model.config.maxPositionEmbeddings, ids.length + maxNew),
      lora: adapter?.spec ?? null,
      // 4-bit: int8 activations unless --exact (measured against llama.cpp q4_0 in docs/perf.md).
      int8Activations: values['4bit'] && !values.exact,
      threads: Number(values.threads), provider: device.provider, strictProvider: device.strict,
    });
    const res = await gen.generate({
      prompts: [ids], maxNewTokens: maxNew, sampling, eosIds: model.config.eosTokenIds.length ? model.config.eosTokenIds : tok.eosIds,
      adapter: adapter?.tensors, loraScales: adapter ? [1] : undefined, stopStrings: values.stop, tokenizer: tok,
      onText: values.json ? undefined : (_row, delta) => process.stdout.write(delta),
    });
    await gen.release();
    if (values.json) console.log(JSON.stringify({ text: res[0]!.text, ids: res[0]!.ids, prompt_ids: ids }));
    else process.stdout.write('\n');
    return 0;
  } catch (e) {
    return reportError('generate', e);
  } finally {
    model.close();
  }
}
