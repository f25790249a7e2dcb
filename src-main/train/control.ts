// Pause and cancel, honoured in every phase of a run. Whoever drives the run (the app's job host,
// `finch train` on Ctrl-C, the training worker) sets two flags; the run looks at them at its
// boundaries:
//   loading     once the model's files are open
//   quantizing  between tensors (model/quant-cache.ts prepareInt4)
//   data        once the dataset is tokenized
//   graphs      after each graph is built (the step graph of an 8B model takes ~2 s here)
//   sessions    between ONNX Runtime sessions (a session's creation itself cannot be stopped)
//   training    between optimizer steps (a step cannot be stopped either)
//   evaluating  between validation batches
//   checkpoint  once a checkpoint is written (and its sample answers are made)
// A boundary yields to the event loop first, so control messages that arrived meanwhile are
// seen: session.run and the graph builders block the thread while they work.
//
// A pause holds the run at the boundary (it says 'paused', then 'continued'); a cancel ends it
// there: before the first step the run stops with nothing written but what it had, in the loop it
// keeps the steps it took (trainer.ts writes a checkpoint of them).

import type { TrainEvent, TrainPhase } from '../../src-shared/train-events.js';

export interface TrainControl {
  paused: boolean;
  cancelled: boolean;
}

/** Thrown at a boundary once the run is cancelled; the trainer turns it into a 'cancelled' run. */
export class RunCancelled extends Error {
  override name = 'RunCancelled';
  constructor(readonly phase: TrainPhase | null) {
    super(`cancelled${phase ? ` while ${phase}` : ''}`);
  }
}

/** How often a paused run looks at its flags again. */
const PAUSE_POLL_MS = 100;

/** A run's boundaries: where it is (phase, steps done), and what it does there about pause and cancel. */
export class Gate {
  phase: TrainPhase | null = null;
  /** Optimizer steps done (the restored step when resuming). */
  step = 0;

  constructor(
    private readonly control: TrainControl,
    private readonly emit: (e: TrainEvent) => void,
    /** Called as each phase begins, after its event (tests hold or fail a run in a phase here). */
    private readonly onPhase?: (phase: TrainPhase, step: number) => void | Promise<void>,
  ) {}

  get cancelled(): boolean {
    return this.control.cancelled;
  }

  /** Honours a pending pause or cancel, then begins `phase`. */
  async enter(phase: TrainPhase): Promise<void> {
    await this.check();
    this.phase = phase;
    this.emit({ event: 'phase', phase, step: this.step });
    await this.onPhase?.(phase, this.step);
  }

  /** Runs before a pause holds the run (the trainer saves the steps taken since its last checkpoint). */
  beforePause: (() => Promise<void>) | null = null;

  /**
   * A boundary: lets control messages in, holds while paused, and throws RunCancelled once
   * cancelled. Concurrent callers (the 4-bit workers' queue) share one hold.
   */
  async check(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.control.paused && !this.control.cancelled) {
      this.holding ??= this.hold().finally(() => { this.holding = null; });
      await this.holding;
    }
    if (this.control.cancelled) throw new RunCancelled(this.phase);
  }

  private holding: Promise<void> | null = null;

  private async hold(): Promise<void> {
    await this.beforePause?.();
    const at = { step: this.step, phase: this.phase ?? 'loading' };
    this.emit({ event: 'paused', ...at });
    while (this.control.paused && !this.control.cancelled) await new Promise((r) => setTimeout(r, PAUSE_POLL_MS));
    if (!this.control.cancelled) this.emit({ event: 'continued', ...at });
  }
}
