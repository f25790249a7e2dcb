// The run-configuration schema is the one door keeper: for every setting, `finch train` and the
// app accept the same values, and a value the command line sets arrives in the trainer's config
// unchanged whichever door it came through; values one door refuses, the other refuses too, each
// naming the setting. The walk covers every entry of the schema, so a new setting is tested here
// without a line of this file changing.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import type { ApiCalls, ApiError, RunConfig } from '../../src-shared/api.js';
import { SETTINGS, type Setting, TRAIN_DEFAULTS, TrainConfig, describeType, inputLimits, settingValue } from '../../src-shared/run-config.js';
import { RUN_DEFAULTS } from '../../src-shared/schemas.js';
import { configFrom, readConfigFile, settingsHelp, UsageError } from '../../src-main/cli/run-options.js';
import { createDispatcher } from '../../src-main/services/dispatch.js';
import { toTrainConfig } from '../../src-main/services/runs.js';
import { tempDir } from '../helpers/fixtures.js';

const PATHS = { model: '/models/m', data: '/data/d.jsonl', out: '/runs/r' };
const work = tempDir('finch-run-config-');

/** A valid value other than the default, and how the command line writes it. */
function nonDefault(s: Setting): { value: unknown; text: string | true } {
  const t = s.type;
  switch (t.kind) {
    case 'number': {
      let v = t.max !== null ? (t.maxExclusive ? (t.min + t.max) / 2 : t.max) : (typeof s.default === 'number' ? s.default : t.min) + 1;
      if (v === s.default) v = t.min + 1;
      return { value: v, text: String(v) };
    }
    case 'switch': return { value: true, text: true };
    case 'choice': {
      const c = t.choices.find((x) => x !== s.default)!;
      return { value: c, text: String(c) };
    }
    case 'list': return { value: [t.choices[1], t.choices[0]], text: `${t.choices[1]},${t.choices[0]}` };
    case 'map': return { value: { [t.keys[0]!]: 'col a', [t.keys[1]!]: 'col_b' }, text: `${t.keys[0]}=col a,${t.keys[1]}=col_b` };
    case 'path': return { value: '/runs/sft run/adapter', text: '/runs/sft run/adapter' };
  }
}

/** Values the schema refuses, as the API and the command line write them. */
function refused(s: Setting): { value: unknown; text: string }[] {
  const t = s.type;
  switch (t.kind) {
    case 'number': return [
      { value: t.minExclusive ? t.min : t.min - 1, text: String(t.minExclusive ? t.min : t.min - 1) },
      ...(t.max !== null ? [{ value: t.max * 2 + 1, text: String(t.max * 2 + 1) }] : []),
      ...(t.maxExclusive ? [{ value: t.max!, text: String(t.max) }] : []),
      ...(t.integer ? [{ value: t.min + 1.5, text: String(t.min + 1.5) }] : []),
      { value: 'many', text: 'many' },
    ];
    case 'switch': return [{ value: 'yes', text: 'yes' }];
    case 'choice': return [{ value: 'bogus', text: 'bogus' }];
    case 'list': return [{ value: ['bogus'], text: 'bogus' }, { value: [], text: '' }];
    case 'map': return [{ value: { bogus: 'x' }, text: 'bogus=x' }];
    case 'path': return [{ value: '', text: '' }];
  }
}

/** { lora: { rank: 8 } } for ('lora.rank', 8). */
function nested(path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  return { [head!]: rest.length ? nested(rest.join('.'), value) : value };
}

/** The app's door: the dispatcher validates startRun's argument; the service sees what passed. */
async function appStart(config: unknown): Promise<{ ok: true; config: RunConfig } | { ok: false; error: ApiError }> {
  let seen: RunConfig | null = null;
  const dispatcher = createDispatcher({ startRun: async (c: RunConfig) => { seen = c; return null; } } as unknown as ApiCalls, { subscribe: () => () => {} });
  const r = await dispatcher.dispatch('startRun', [config]);
  return r.ok ? { ok: true, config: seen! } : { ok: false, error: r.error };
}

test('the walk covers every setting, each once, with a distinct long option', () => {
  assert.ok(SETTINGS.length >= 35, `${SETTINGS.length} settings`);
  assert.equal(new Set(SETTINGS.map((s) => s.flag)).size, SETTINGS.length);
  assert.equal(new Set(SETTINGS.map((s) => s.path)).size, SETTINGS.length);
  // The long options of today's `finch train`, none renamed or dropped (documented interface).
  for (const flag of ['format', 'map', 'train-on', 'template', 'seq-len', 'pack', 'static-seq', 'group-by-length', 'val-fraction', 'on-bad-row',
    'rank', 'alpha', 'dropout', 'targets', 'rslora', '4bit', 'block-size', 'lr', 'schedule', 'warmup', 'epochs', 'max-steps', 'batch',
    'grad-accum', 'weight-decay', 'max-grad-norm', 'gradient-checkpointing', 'eval-every', 'checkpoint-every', 'seed', 'threads',
    'provider', 'strict-provider', 'compute-dtype']) {
    assert.ok(SETTINGS.some((s) => s.flag === flag), `--${flag}`);
  }
});

for (const s of SETTINGS) {
  test(`${s.path} (--${s.flag}): a non-default value passes both doors and reaches the trainer's config unchanged`, async () => {
    const { value, text } = nonDefault(s);
    assert.notDeepEqual(value, s.default);
    const cli = configFrom({ ...PATHS, [s.flag]: text });
    assert.deepEqual(settingValue(cli, s.path), value, 'the command line');
    const app = await appStart({ modelId: 'm', datasetId: 'd', ...nested(s.path, value) });
    assert.ok(app.ok, !app.ok ? app.error.message : '');
    assert.deepEqual(settingValue(app.config, s.path), value, 'the app\'s validation');
    const trainer = toTrainConfig(app.config, PATHS.model, PATHS.data, PATHS.out, app.config.provider);
    assert.deepEqual(trainer, cli, 'the same trainer config through either door');
  });

  test(`${s.path} (--${s.flag}): what one door refuses, the other refuses, each naming the setting`, async () => {
    for (const { value, text } of refused(s)) {
      const app = await appStart({ modelId: 'm', datasetId: 'd', ...nested(s.path, value) });
      assert.ok(!app.ok, `the app accepted ${JSON.stringify(value)}`);
      assert.equal(app.error.code, 'invalid_argument');
      assert.ok(app.error.field === `0.${s.path}` || app.error.field!.startsWith(`0.${s.path}.`), `${app.error.field}: ${app.error.message}`);
      // The same sentence at both doors (a map's unknown field is named as such by the app).
      const sentence = app.error.message.includes('must be ') ? app.error.message.slice(app.error.message.indexOf('must be ')) : null;
      assert.ok(sentence || /unknown field "bogus"/.test(app.error.message), app.error.message);
      assert.throws(() => configFrom({ ...PATHS, [s.flag]: text }), (e: Error) => {
        assert.ok(e instanceof UsageError, e.message);
        assert.equal(e.message, `--${s.flag} ${sentence ?? `must be ${describeType(s.type)}`}, got ${JSON.stringify(text)}`);
        return true;
      }, `the command line accepted ${JSON.stringify(text)}`);
    }
  });
}

test('the drifts between the doors, one rule each: block size 32|64, alpha > 0, learning rate in (0, 1], clipping 0 = off', async () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['block-size', '128', { blockSize: 128 }],
    ['alpha', '0', { lora: { alpha: 0 } }],
    ['lr', '2', { lr: 2 }],
    ['lr', '0', { lr: 0 }],
  ];
  for (const [flag, text, patch] of cases) {
    assert.throws(() => configFrom({ ...PATHS, [flag]: text }), new RegExp(`--${flag} must be `));
    assert.equal((await appStart({ modelId: 'm', datasetId: 'd', ...patch })).ok, false, `${flag} ${text}`);
  }
  assert.equal(configFrom({ ...PATHS, 'max-grad-norm': '0' }).maxGradNorm, null);
  const app = await appStart({ modelId: 'm', datasetId: 'd', maxGradNorm: 0 });
  assert.ok(app.ok && app.config.maxGradNorm === null);
  assert.equal(configFrom({ ...PATHS, lr: '1', alpha: '0.5', 'block-size': '64' }).blockSize, 64);
});

test('every setting at once: the app and the command line give the same complete trainer config, and defaults fill the rest', async () => {
  const cliValues: Record<string, string | true> = { ...PATHS };
  let appConfig: Record<string, unknown> = { modelId: 'm', datasetId: 'd' };
  for (const s of SETTINGS) {
    const { value, text } = nonDefault(s);
    cliValues[s.flag] = text;
    const patch = nested(s.path, value);
    appConfig = { ...appConfig, ...patch, ...(patch.lora ? { lora: { ...(appConfig.lora as object), ...(patch.lora as object) } } : {}) };
  }
  const cli = configFrom(cliValues);
  const app = await appStart(appConfig);
  assert.ok(app.ok, !app.ok ? app.error.message : '');
  const trainer = toTrainConfig(app.config, PATHS.model, PATHS.data, PATHS.out, app.config.provider);
  assert.deepEqual(trainer, cli);
  for (const s of SETTINGS) assert.deepEqual(settingValue(trainer, s.path), nonDefault(s).value, s.path);

  // Nothing given: the trainer's defaults, which are the app's.
  const bare = await appStart({ modelId: 'm', datasetId: 'd' });
  assert.ok(bare.ok);
  assert.deepEqual(bare.config, { ...RUN_DEFAULTS, modelId: 'm', datasetId: 'd' });
  assert.deepEqual(toTrainConfig(bare.config, PATHS.model, PATHS.data, PATHS.out, 'auto'), configFrom(PATHS));
  assert.deepEqual(configFrom(PATHS), { ...PATHS, ...TRAIN_DEFAULTS });
  assert.deepEqual(TrainConfig.parse(configFrom(PATHS)), configFrom(PATHS), 'a parsed config parses to itself (run.json round trip)');
});

test('a --config file sets any setting by its long option name, lists and maps in YAML form too; the command line wins', () => {
  const doc: Record<string, unknown> = { ...PATHS };
  for (const s of SETTINGS) {
    const { value, text } = nonDefault(s);
    doc[s.flag] = s.type.kind === 'list' || s.type.kind === 'map' ? value : text === true ? true : s.type.kind === 'number' ? value : text;
  }
  const file = join(work, 'all.yaml');
  writeFileSync(file, YAML.stringify(doc));
  const allowed = [...Object.keys(PATHS), ...SETTINGS.map((s) => s.flag)];
  const fromFile = configFrom({}, { path: file, values: readConfigFile(file, allowed) });
  const fromCli = configFrom(Object.fromEntries(SETTINGS.map((s) => [s.flag, nonDefault(s).text])) as Record<string, string | true>, { path: file, values: { ...PATHS } });
  assert.deepEqual(fromFile, fromCli);
  assert.equal(configFrom({ 'seq-len': '128' }, { path: file, values: readConfigFile(file, allowed) }).seqLen, 128);

  writeFileSync(file, 'model: m\ndata: d\nout: o\nseq-len: 4\n');
  assert.throws(() => configFrom({}, { path: file, values: readConfigFile(file, allowed) }), new RegExp(`${file}: seq-len must be an integer from 8 to 131072, got "4"$`));
  writeFileSync(file, 'model: m\ndata: d\nout: o\nlearning-rate: 1\n');
  assert.throws(() => readConfigFile(file, allowed), /unknown key "learning-rate"/);
});

test('--help lists every setting with its range or choices and its default', () => {
  const help = settingsHelp();
  for (const s of SETTINGS) {
    const line = help.split('\n').findIndex((l) => l.startsWith(`  --${s.flag}${s.value ? ` ${s.value}` : ''} `) || l.trimEnd() === `  --${s.flag}`);
    assert.ok(line >= 0, `--${s.flag} in --help`);
  }
  assert.match(help, /--lr LR +peak learning rate \(a number > 0 and <= 1; default 0\.0002\)/);
  assert.match(help, /--block-size N +32 \| 64: /);
  assert.match(help, /--alpha A +[^-]*\(a number > 0 and <= 10000;/);
});

test('the wizard\'s number inputs take their limits from the schema', () => {
  assert.deepEqual(inputLimits('lora.rank'), { min: 1, max: 1024, step: 1 });
  assert.deepEqual(inputLimits('lr'), { min: 0, max: 1, step: 'any' });
  assert.deepEqual(inputLimits('warmupSteps'), { min: 0, step: 1 });
  assert.throws(() => inputLimits('template'), /not a number/);
});
