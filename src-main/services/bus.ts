// The services' event bus: every FinchEvent goes out through here to the transports' subscribers.
// A subscriber that throws (a closed socket) is dropped from that delivery, never breaks the others.

import type { FinchEvent } from '../../src-shared/api.js';
import type { EventSource } from './dispatch.js';

export class EventBus implements EventSource {
  private listeners = new Set<(e: FinchEvent) => void>();

  subscribe(listener: (e: FinchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  emit(e: FinchEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A broken subscriber must not stop the run that emitted the event.
      }
    }
  }
}
