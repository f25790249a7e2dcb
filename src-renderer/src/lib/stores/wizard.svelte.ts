// The "New fine-tune" wizard's state: the chosen model and dataset, the dataset preview, the run
// config being edited (a complete RunConfig from RUN_DEFAULTS), and the memory estimate, which is
// re-asked whenever a knob changes (debounced so typing a number asks once).

import type { ColumnMap, DatasetPreview, FormatName, MemoryEstimateResult, RunConfig, RunSummary } from '../../../../src-shared/api.ts';
import { LORA_TARGETS } from '../../../../src-shared/choices.ts';
import { RUN_DEFAULTS, RunConfig as RunConfigSchema } from '../../../../src-shared/schemas.ts';
import { finch } from '../services/finch.ts';

export type WizardStep = 'model' | 'dataset' | 'settings' | 'review';
export const STEPS: { id: WizardStep; label: string }[] = [
  { id: 'model', label: 'Model' },
  { id: 'dataset', label: 'Dataset' },
  { id: 'settings', label: 'Settings' },
  { id: 'review', label: 'Review and start' },
];

export type PresetName = 'quick' | 'balanced' | 'quality';
type Knobs = Omit<RunConfig, 'modelId' | 'datasetId' | 'name' | 'format' | 'map'>;

const ALL_TARGETS: RunConfig['lora']['targets'] = [...LORA_TARGETS];

/** Each preset's exact settings (the screen lists them, so nothing is hidden behind a name). */
export const PRESETS: Record<PresetName, { label: string; blurb: string; set: Partial<Knobs> }> = {
  quick: {
    label: 'Quick',
    blurb: 'A first look in minutes: small adapter on attention only, short sequences.',
    set: { lora: { rank: 8, alpha: 16, dropout: 0, rslora: false, targets: ['q_proj', 'v_proj'] }, lr: 3e-4, epochs: 1, maxSteps: 200, seqLen: 256, batch: 4, gradAccum: 1, schedule: 'constant' },
  },
  balanced: {
    label: 'Balanced',
    blurb: 'The usual LoRA recipe: every linear layer, rank 16, one epoch.',
    set: { lora: { rank: 16, alpha: 32, dropout: 0.05, rslora: false, targets: ALL_TARGETS }, lr: 2e-4, epochs: 1, maxSteps: null, seqLen: 512, batch: 4, gradAccum: 1, schedule: 'cosine' },
  },
  quality: {
    label: 'Quality',
    blurb: 'More capacity and passes: rank 32, three epochs, longer sequences.',
    set: { lora: { rank: 32, alpha: 64, dropout: 0.05, rslora: false, targets: ALL_TARGETS }, lr: 1e-4, epochs: 3, maxSteps: null, seqLen: 1024, batch: 4, gradAccum: 2, schedule: 'cosine' },
  },
};

/** The settings a preset sets, as "name: value" lines for the preset card. */
export function describePreset(p: PresetName): string[] {
  const s = PRESETS[p].set;
  const l = s.lora!;
  return [
    `LoRA rank ${l.rank}, alpha ${l.alpha}, dropout ${l.dropout}`,
    `targets ${l.targets.length === ALL_TARGETS.length ? 'all linear layers' : l.targets.join(', ')}`,
    `learning rate ${s.lr} (${s.schedule})`,
    s.maxSteps ? `${s.maxSteps} steps at most` : `${s.epochs} epoch${s.epochs === 1 ? '' : 's'}`,
    `batch ${s.batch} × accumulation ${s.gradAccum}, sequence length ${s.seqLen}`,
  ];
}

/** Whether a previewed dataset holds preference pairs (null: its format is not known yet). */
export function dataHasPairs(p: DatasetPreview | null): boolean | null {
  return p?.format ? p.format.name === 'preference' : null;
}

/** The training methods as the settings step offers them, each with its one-line explanation. */
export const METHOD_CHOICES: { id: RunConfig['method']; label: string; pairs: boolean; blurb: string }[] = [
  { id: 'sft', label: 'Supervised (SFT)', pairs: false, blurb: 'Learn to write the answers in the data: each row is a prompt and the answer to imitate.' },
  { id: 'dpo', label: 'Preference: DPO', pairs: true, blurb: 'Learn which of two answers is better: each row is a prompt, a chosen and a rejected answer. Stays close to a frozen reference (the base, or the adapter it starts from); beta sets how close.' },
  { id: 'orpo', label: 'Preference: ORPO', pairs: true, blurb: 'Supervised learning on the chosen answer plus a push away from the rejected one, in one pass with no reference model; lambda weighs the push.' },
];

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** The settings the back end checks a run with (the run-configuration schema), without the library ids. */
const KNOBS_SCHEMA = RunConfigSchema.omit({ modelId: true, datasetId: true, name: true, format: true, map: true });

/**
 * What is wrong with the settings, by setting path ("lora.rank" -> "must be an integer from 1 to
 * 1024"), judged by the schema the back end refuses a run with; empty when they are valid.
 */
export function settingProblems(knobs: unknown): Record<string, string> {
  const r = KNOBS_SCHEMA.safeParse(knobs);
  if (r.success) return {};
  const problems: Record<string, string> = {};
  for (const issue of r.error.issues) problems[issue.path.join('.')] ??= issue.message;
  return problems;
}

export class Wizard {
  step = $state<WizardStep>('model');
  modelId = $state<string | null>(null);
  datasetId = $state<string | null>(null);
  name = $state('');
  format = $state<FormatName | null>(null);
  map = $state<ColumnMap | null>(null);
  knobs = $state<Knobs>(clone({ ...RUN_DEFAULTS, ...PRESETS.balanced.set }) as Knobs);
  preset = $state<PresetName | null>('balanced');

  preview = $state<DatasetPreview | null>(null);
  previewing = $state(false);
  previewError = $state<unknown>(null);

  estimate = $state<MemoryEstimateResult | null>(null);
  estimating = $state(false);
  estimateError = $state<unknown>(null);

  starting = $state(false);
  startError = $state<unknown>(null);

  /** Settings the back end would refuse, shown beside their fields; Review and Start wait for none. */
  readonly problems = $derived(settingProblems(this.knobs));
  readonly valid = $derived(Object.keys(this.problems).length === 0);
  /** The dataset's columns resolve to a format (recognised, or mapped by the person), so a run can read it. */
  readonly datasetReadable = $derived(this.preview?.format != null);

  private estimateTimer: ReturnType<typeof setTimeout> | null = null;
  private estimateSeq = 0;
  private previewSeq = 0;

  readonly config = $derived<RunConfig | null>(
    this.modelId && this.datasetId
      ? {
        ...clone(this.knobs),
        modelId: this.modelId,
        datasetId: this.datasetId,
        ...(this.name.trim() ? { name: this.name.trim() } : {}),
        ...(this.format ? { format: this.format } : {}),
        ...(this.map ? { map: clone(this.map) } : {}),
      }
      : null,
  );

  /** Whether a step may be opened (earlier choices made). */
  canOpen(s: WizardStep): boolean {
    if (s === 'model') return true;
    if (s === 'dataset') return this.modelId !== null;
    if (!this.datasetReadable || (s === 'review' && !this.valid)) return false;
    return this.modelId !== null && this.datasetId !== null;
  }

  reset(): void {
    this.step = 'model';
    this.modelId = null;
    this.datasetId = null;
    this.name = '';
    this.format = null;
    this.map = null;
    this.applyPreset('balanced');
    this.preview = null;
    this.estimate = null;
    this.startError = null;
  }

  /** Starts from another run's settings ("clone settings"). */
  cloneFrom(c: RunConfig): void {
    const { modelId, datasetId, name, format, map, ...knobs } = clone(c);
    this.modelId = modelId;
    this.datasetId = datasetId;
    this.name = name ? `${name} (copy)` : '';
    this.format = format ?? null;
    this.map = map ?? null;
    this.knobs = { ...clone(RUN_DEFAULTS), ...knobs } as Knobs;
    this.preset = null;
    this.step = 'settings';
    this.preview = null;
    void this.loadPreview();
    this.scheduleEstimate(0);
  }

  chooseModel(id: string): void {
    this.modelId = id;
    if (this.datasetId) void this.loadPreview();
  }

  chooseDataset(id: string): void {
    this.datasetId = id;
    this.format = null;
    this.map = null;
    void this.loadPreview();
  }

  setMapping(format: FormatName | null, map: ColumnMap | null): void {
    this.format = format;
    this.map = map;
    void this.loadPreview();
  }

  applyPreset(p: PresetName): void {
    this.knobs = { ...this.knobs, ...clone(PRESETS[p].set) };
    this.preset = p;
    this.changed();
  }

  /** Apply a partial config (a suggestion from the estimate). */
  apply(change: Partial<RunConfig>): void {
    const { modelId: _m, datasetId: _d, ...rest } = clone(change);
    this.knobs = { ...this.knobs, ...rest, lora: { ...this.knobs.lora, ...(rest.lora ?? {}) } };
    this.preset = null;
    this.changed();
  }

  /** Call after editing `knobs` directly (the settings form binds to it). */
  changed(): void {
    this.scheduleEstimate(250);
  }

  async loadPreview(): Promise<void> {
    if (!this.datasetId) return;
    const seq = ++this.previewSeq;
    this.previewing = true;
    this.previewError = null;
    try {
      const p = await finch().previewDataset({
        datasetId: this.datasetId,
        ...(this.modelId ? { modelId: this.modelId } : {}),
        ...(this.format ? { format: this.format } : {}),
        ...(this.map ? { map: clone(this.map) } : {}),
        trainOn: this.knobs.trainOn,
        seqLen: this.knobs.seqLen,
        rows: 8,
      });
      if (seq !== this.previewSeq) return;
      // A detected format stays implicit (the back end detects it again at start); only a mapping
      // the person chose is sent with the run.
      this.preview = p;
      this.matchMethodToData(p);
    } catch (e) {
      if (seq === this.previewSeq) this.previewError = e;
    } finally {
      if (seq === this.previewSeq) this.previewing = false;
    }
  }

  /**
   * The method follows the data (the trainer refuses a mismatch): preference pairs train with a
   * preference method (DPO unless ORPO was chosen), any other format with supervised fine-tuning.
   */
  private matchMethodToData(p: DatasetPreview): void {
    const pairs = dataHasPairs(p);
    if (pairs === null || pairs === (this.knobs.method !== 'sft')) return;
    this.knobs.method = pairs ? 'dpo' : 'sft';
    this.changed();
  }

  scheduleEstimate(delayMs: number): void {
    if (this.estimateTimer) clearTimeout(this.estimateTimer);
    this.estimateTimer = setTimeout(() => void this.runEstimate(), delayMs);
  }

  async runEstimate(): Promise<void> {
    const cfg = this.config;
    if (!cfg || !this.valid) return; // the back end would refuse it: the fields say why
    const seq = ++this.estimateSeq;
    this.estimating = true;
    try {
      const r = await finch().estimateMemory(cfg);
      if (seq !== this.estimateSeq) return;
      this.estimate = r;
      this.estimateError = null;
    } catch (e) {
      if (seq === this.estimateSeq) this.estimateError = e;
    } finally {
      if (seq === this.estimateSeq) this.estimating = false;
    }
  }

  async start(): Promise<RunSummary | null> {
    const cfg = this.config;
    if (!cfg || !this.valid) return null;
    this.starting = true;
    this.startError = null;
    try {
      return await finch().startRun(cfg);
    } catch (e) {
      this.startError = e;
      return null;
    } finally {
      this.starting = false;
    }
  }
}

export const wizard = new Wizard();
