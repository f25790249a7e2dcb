// An in-process DesktopApi for renderer unit tests: each test supplies only the calls it needs
// (others fail loudly) and pushes events by hand. The e2e test drives the real back end.
import type { DesktopApi, FinchEvent } from '../../src-shared/api.ts';

export function scriptedApi(calls: Partial<DesktopApi>): { api: DesktopApi; emit: (e: FinchEvent) => void; log: { name: string; args: unknown[] }[] } {
  const listeners = new Set<(e: FinchEvent) => void>();
  const log: { name: string; args: unknown[] }[] = [];
  const api = new Proxy({} as DesktopApi, {
    get(_t, name: string) {
      if (name === 'onEvent') return (l: (e: FinchEvent) => void) => { listeners.add(l); return () => listeners.delete(l); };
      if (name === 'then') return undefined;
      return async (...args: unknown[]) => {
        log.push({ name, args });
        const f = (calls as Record<string, (...a: unknown[]) => unknown>)[name];
        if (!f) throw new Error(`test API: unexpected call ${name}`);
        return f(...args);
      };
    },
  });
  return { api, emit: (e) => { for (const l of listeners) l(e); }, log };
}
