// What the desktop shell does around training runs, driven by the back end's events:
//  - keeps the system awake (powerSaveBlocker) while any run is training;
//  - says in a desktop notification when a run completes or fails;
//  - on quit with a run in progress, asks first; "Save and quit" cancels each run through the
//    dispatcher (cancel = stop after the current step and write a checkpoint there, so the run
//    resumes exactly), waits for the runs to settle, then quits.

import { app, dialog, Notification, powerSaveBlocker, type BrowserWindow } from 'electron';
import type { FinchEvent, RunId, RunStatus } from '../../src-shared/api.js';
import type { Dispatcher } from '../services/dispatch.js';

/**
 * Runs whose job trains: quitting must checkpoint them. A paused run is not among them: its pause
 * wrote a checkpoint, and it stays paused across a restart.
 */
const ACTIVE: ReadonlySet<RunStatus> = new Set(['running']);
/** How long quitting waits for cancelled runs to write their checkpoints. */
export const QUIT_WAIT_MS = 120_000;

export class RunWatch {
  private readonly status = new Map<RunId, RunStatus>();
  private readonly settledWaiters = new Set<() => void>();
  private blocker: number | null = null;
  private quitApproved = false;
  private asking = false;

  constructor(private readonly dispatcher: Dispatcher, private readonly window: () => BrowserWindow | null) {
    dispatcher.events.subscribe((e) => this.onEvent(e));
  }

  /** Runs training now. */
  activeRuns(): RunId[] {
    return [...this.status].filter(([, s]) => ACTIVE.has(s)).map(([id]) => id);
  }

  /** True while the system is kept awake. */
  get keepingAwake(): boolean {
    return this.blocker !== null && powerSaveBlocker.isStarted(this.blocker);
  }

  private onEvent(e: FinchEvent): void {
    if (e.type === 'run-status') {
      this.status.set(e.runId, e.status);
      if (e.status === 'failed') void this.notify(e.runId, 'failed', e.error ? e.error.message : 'the run stopped with an error');
      this.updateBlocker();
      if (!ACTIVE.has(e.status)) for (const w of this.settledWaiters) w();
    } else if (e.type === 'run-done' && e.status === 'completed') {
      void this.notify(e.runId, 'completed', e.adapter ? `Adapter saved to ${e.adapter}` : `${e.steps} steps`);
    }
  }

  private updateBlocker(): void {
    const training = [...this.status.values()].some((s) => s === 'running');
    if (training && this.blocker === null) {
      this.blocker = powerSaveBlocker.start('prevent-app-suspension');
    } else if (!training && this.blocker !== null) {
      powerSaveBlocker.stop(this.blocker);
      this.blocker = null;
    }
  }

  private async notify(runId: RunId, outcome: 'completed' | 'failed', body: string): Promise<void> {
    if (!Notification.isSupported()) return;
    const details = await this.dispatcher.dispatch('runDetails', [runId]);
    const name = details.ok ? (details.value as { name: string }).name : runId;
    new Notification({ title: outcome === 'completed' ? `Finch: "${name}" finished` : `Finch: "${name}" failed`, body }).show();
  }

  /**
   * Asks before quitting while runs are active: app 'before-quit' and, off macOS, closing the
   * window (which would quit) are held until the user chooses.
   */
  installQuitGuard(): void {
    app.on('before-quit', (event) => {
      if (this.quitApproved || this.activeRuns().length === 0) return;
      event.preventDefault();
      void this.confirmQuit();
    });
  }

  /** Off macOS closing the last window quits: hold it while runs are active, and ask. */
  guardWindow(win: BrowserWindow): void {
    if (process.platform === 'darwin') return;
    win.on('close', (event) => {
      if (this.quitApproved || this.activeRuns().length === 0) return;
      event.preventDefault();
      void this.confirmQuit();
    });
  }

  private async confirmQuit(): Promise<void> {
    if (this.asking) return;
    this.asking = true;
    try {
      const active = this.activeRuns();
      const parent = this.window();
      const options = {
        type: 'question' as const,
        buttons: ['Save a checkpoint and quit', 'Keep training'],
        defaultId: 0,
        cancelId: 1,
        title: 'Quit Finch?',
        message: active.length === 1 ? 'A run is training.' : `${active.length} runs are training.`,
        detail: 'Finch stops after the current step and saves a checkpoint there; resume the run later from the run history.',
      };
      const { response } = parent ? await dialog.showMessageBox(parent, options) : await dialog.showMessageBox(options);
      if (response !== 0) return;
      for (const id of active) {
        const r = await this.dispatcher.dispatch('cancelRun', [id]);
        if (!r.ok) console.warn(`finch: cancelling run ${id} before quitting: ${r.error.message}`);
      }
      const settled = await this.untilSettled(QUIT_WAIT_MS);
      if (!settled) console.warn(`finch: runs ${this.activeRuns().join(', ')} did not stop within ${QUIT_WAIT_MS / 1000} s; quitting (they resume from their last checkpoint)`);
      this.quitApproved = true;
      app.quit();
    } finally {
      this.asking = false;
    }
  }

  /** Resolves true once no run is active, false after `ms`. */
  private untilSettled(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.activeRuns().length > 0) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), ms);
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.settledWaiters.delete(check);
        resolve(v);
      };
      this.settledWaiters.add(check);
      check();
    });
  }
}
