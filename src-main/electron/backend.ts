// The back end as the desktop app hosts it: the services behind the one validating dispatcher,
// with the shell's own part of the contract (pickPath: native dialogs) filled in here.

import type { ApiCalls, PickPathRequest } from '../../src-shared/api.js';
import { createDispatcher, type Dispatcher } from '../services/dispatch.js';
import { ServiceError } from '../services/errors.js';

export interface DesktopBackend {
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

export interface ShellParts {
  pickPath(req: PickPathRequest): Promise<string | null>;
}

export async function startDesktopBackend(shell: ShellParts): Promise<DesktopBackend> {
  const notYet = (name: string) => async (): Promise<never> => {
    throw new ServiceError('internal', `${name} is not wired into this build of the desktop app yet`, 'use browser mode: npx finch serve');
  };
  const services = Object.fromEntries(
    (['appInfo'] as const).map((n) => [n, notYet(n)]),
  ) as unknown as ApiCalls;
  const listeners = new Set<(e: never) => void>();
  const dispatcher = createDispatcher(
    new Proxy({ ...services, pickPath: shell.pickPath }, { get: (t, k: string) => (t as Record<string, unknown>)[k] ?? notYet(k) }),
    { subscribe: (l) => { listeners.add(l); return () => listeners.delete(l); } },
  );
  return { dispatcher, close: async () => {} };
}
