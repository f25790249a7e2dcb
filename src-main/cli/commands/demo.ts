// `finch demo`: the bundled model and dataset, QLoRA fine-tuning with a live progress bar, and the
// base and tuned answers side by side with held-out accuracy before and after (services/demo.ts).

import { PROVIDER_OPTIONS, PROVIDER_USAGE, chooseProvider, providerFlags } from '../provider.js';
import { type DemoEvent, type DemoRow, DEMO_RECIPE, DPO_DEMO_RECIPE, type PreferenceDemoEvent, runDemo, runPreferenceDemo } from '../../services/demo.js';
import { reportError } from '../errors.js';
import { createProgress, formatDuration } from '../progress.js';
import { parseCommand } from '../args.js';

const USAGE = `Usage: finch demo [--method sft|dpo] [--steps N] [--eval-rows N] [--threads N] [--provider P] [--out DIR] [--json]

Fine-tunes the bundled demo model (4-bit base, LoRA) on the bundled arithmetic word problems and
shows base vs tuned answers and held-out accuracy. Offline; about 2-3 minutes on 2 CPU cores.
With --method dpo: preference tuning (DPO) on pairs of the same problems, the right worked answer
preferred over a plausible wrong one; shows how often the tuned model's implicit reward prefers the
right answer on held-out pairs (chance: 50%). Under three minutes on 2 CPU cores.

  --method M      sft (default) or dpo
  --steps N       LoRA steps (default ${DEMO_RECIPE.steps}; dpo ${DPO_DEMO_RECIPE.steps})
  --eval-rows N   held-out problems to score (default ${DEMO_RECIPE.evalRows}; dpo: pairs, default all ${DPO_DEMO_RECIPE.evalRows})
  --threads N     CPU threads (default: all)
${PROVIDER_USAGE}
  --out DIR       where the run goes (default: a new folder under ~/.finch/runs, or $FINCH_HOME/runs)
  --json          one JSON event per line, ending with {"event":"done",...}`;

const oneLine = (s: string, n = 70) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};
const mark = (ok: boolean | null) => (ok ? '✓' : '✗');

function printRows(rows: DemoRow[], tuned: boolean): void {
  for (const r of rows) {
    console.log(`\n  Q: ${oneLine(r.prompt, 100)}   (answer: ${r.reference})`);
    console.log(`  base  ${mark(r.baseCorrect)} ${oneLine(r.base)}`);
    if (tuned && r.tuned !== null) console.log(`  tuned ${mark(r.tunedCorrect)} ${oneLine(r.tuned)}`);
  }
  console.log('');
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('demo', argv, {
    method: { type: 'string', default: 'sft' }, steps: { type: 'string' }, 'eval-rows': { type: 'string' }, threads: { type: 'string', default: '0' }, out: { type: 'string' },
    json: { type: 'boolean', default: false }, ...PROVIDER_OPTIONS,
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const int = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${v}"`);
    return n;
  };
  let steps, evalRows;
  try {
    steps = int(values.steps, 'steps');
    evalRows = int(values['eval-rows'], 'eval-rows');
  } catch (e) {
    console.error(`finch demo: ${(e as Error).message}`);
    return 2;
  }

  if (!['sft', 'dpo'].includes(values.method)) {
    console.error(`finch demo: --method must be sft or dpo, got "${values.method}"`);
    return 2;
  }
  const json = values.json;
  if (values.method === 'dpo') return preferenceDemo(values, steps, evalRows, json);
  let bar: ReturnType<typeof createProgress> | null = null;
  const emit = (e: DemoEvent) => {
    if (json) { console.log(JSON.stringify(e)); return; }
    switch (e.event) {
      case 'loaded':
        console.log(`Loaded the bundled demo model (${(e.parameters / 1e6).toFixed(1)}M parameters, frozen in 4 bits) in ${e.seconds.toFixed(1)} s.`);
        console.log('Asking the base model some held-out problems...');
        break;
      case 'base':
        printRows(e.rows, false);
        console.log(`Base model: ${(e.base_accuracy * 100).toFixed(0)}% of held-out problems right. Fine-tuning with QLoRA...`);
        break;
      case 'prepared':
        bar = createProgress({ label: 'QLoRA', total: e.total_steps, unit: 'steps' });
        break;
      case 'step':
        bar?.update(e.step, { loss: e.loss.toFixed(3), 'tok/s': Math.round(e.tokens_per_s) });
        break;
      case 'train_done':
        bar?.stop();
        break;
      case 'compare':
        console.log('\nBase vs tuned on the same held-out problems:');
        printRows(e.rows, true);
        break;
      case 'done':
        console.log(`Held-out exact match: base ${(e.base_accuracy * 100).toFixed(0)}% -> tuned ${(e.tuned_accuracy * 100).toFixed(0)}%`);
        console.log(`Adapter (PEFT format): ${e.adapter}`);
        console.log(`Total time: ${formatDuration(e.seconds)}`);
        break;
      default:
        break;
    }
  };
  try {
    const device = await chooseProvider(providerFlags(values), values.json ? () => {} : undefined);
    await runDemo({ steps, evalRows, threads: Number(values.threads), out: values.out, provider: device.provider, strictProvider: device.strict }, emit);
    return 0;
  } catch (e) {
    (bar as ReturnType<typeof createProgress> | null)?.stop();
    return reportError('demo', e);
  }
}

const percent = (x: number) => `${(x * 100).toFixed(0)}%`;

/** `finch demo --method dpo`: the preference demo (services/demo.ts runPreferenceDemo). */
async function preferenceDemo(values: { threads: string; out?: string } & Parameters<typeof providerFlags>[0], steps: number | undefined, evalRows: number | undefined, json: boolean): Promise<number> {
  let bar: ReturnType<typeof createProgress> | null = null;
  const emit = (e: PreferenceDemoEvent) => {
    if (json) { console.log(JSON.stringify(e)); return; }
    switch (e.event) {
      case 'loaded':
        console.log(`Loaded the bundled demo model (${(e.parameters / 1e6).toFixed(1)}M parameters, frozen in 4 bits) in ${e.seconds.toFixed(1)} s.`);
        console.log('Preference tuning (DPO): each problem comes with its right worked answer (chosen) and a plausible wrong one (rejected).');
        break;
      case 'prepared':
        bar = createProgress({ label: 'DPO', total: e.total_steps, unit: 'steps' });
        break;
      case 'step':
        bar?.update(e.step, { loss: e.loss.toFixed(3), 'tok/s': Math.round(e.tokens_per_s) });
        break;
      case 'eval':
        console.log(`\nstep ${e.step}: the tuned model prefers the right answer on ${percent(e.reward_accuracy ?? 0)} of held-out pairs (reward margin ${(e.reward_margin ?? 0).toFixed(2)})`);
        break;
      case 'train_done':
        bar?.stop();
        break;
      case 'pairs':
        console.log('\nHeld-out pairs, with the tuned model\'s implicit reward of each answer (higher = preferred):');
        for (const r of e.rows) {
          console.log(`\n  Q: ${oneLine(r.prompt, 100)}`);
          console.log(`  chosen   ${r.rewardChosen.toFixed(2).padStart(6)}  ${oneLine(r.chosen)}`);
          console.log(`  rejected ${r.rewardRejected.toFixed(2).padStart(6)}  ${oneLine(r.rejected)}`);
        }
        console.log('');
        break;
      case 'done':
        console.log(`Held-out reward accuracy: ${percent(e.reward_accuracy)} of ${e.pairs} pairs (chance: 50%), mean margin ${e.reward_margin.toFixed(2)}`);
        console.log(`Adapter (PEFT format): ${e.adapter}`);
        console.log(`Total time: ${formatDuration(e.seconds)}`);
        break;
      default:
        break;
    }
  };
  try {
    const device = await chooseProvider(providerFlags(values), json ? () => {} : undefined);
    await runPreferenceDemo({ steps, evalRows, threads: Number(values.threads), out: values.out, provider: device.provider, strictProvider: device.strict }, emit);
    return 0;
  } catch (e) {
    (bar as ReturnType<typeof createProgress> | null)?.stop();
    return reportError('demo', e);
  }
}
