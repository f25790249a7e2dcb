// A push to the Hugging Face Hub from the Export step: its progress (the 'export-progress' events
// that carry its repository), then the result or the error. One push at a time from this screen;
// the back end refuses a second push to the same repository anyway.

import type { PushPhase, PushRequest, PushResult } from '../../../../src-shared/api.ts';
import { finch, onEvent } from '../services/finch.ts';

/** What each step is called on screen. */
export const PUSH_STEPS: Record<PushPhase, string> = {
  merging: 'Merging the adapter into the base model',
  converting: 'Writing the GGUF file',
  creating: 'Creating the repository (private until complete)',
  hashing: 'Hashing the large files',
  uploading: 'Uploading',
  committing: 'Committing every file at once',
  publishing: 'Making it public',
};

class PushSession {
  repo = $state('');
  running = $state(false);
  phase = $state<PushPhase | null>(null);
  done = $state(0);
  total = $state(0);
  result = $state<PushResult | null>(null);
  error = $state<unknown>(null);
  private listening = false;

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    onEvent('export-progress', (e) => {
      if (!this.running || e.repo !== this.repo || !e.phase) return;
      this.phase = e.phase;
      this.done = e.done;
      this.total = e.total;
    });
  }

  async start(req: PushRequest): Promise<void> {
    this.listen();
    Object.assign(this, { repo: req.repo, running: true, phase: null, done: 0, total: 0, result: null, error: null });
    try {
      this.result = await finch().pushToHub(req);
    } catch (e) {
      this.error = e;
    } finally {
      this.running = false;
    }
  }

  async cancel(): Promise<void> {
    try {
      await finch().cancelPush(this.repo);
    } catch (e) {
      this.error = e;
    }
  }
}

export const push = new PushSession();
