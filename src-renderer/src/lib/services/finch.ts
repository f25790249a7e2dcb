// The app's one door to the back end. Stores call `finch()` for requests and `onEvent` for pushed
// events; components never touch a transport. Tests install their own API with `useApi`.

import type { DesktopApi, FinchEvent, FinchEventType } from '../../../../src-shared/api.ts';
import { connect, type Connection } from '../api/client.ts';

let conn: Connection | null = null;
type Listener = (e: FinchEvent) => void;
const listeners = new Map<FinchEventType | '*', Set<Listener>>();
let unsubscribe: (() => void) | null = null;

function dispatch(e: FinchEvent): void {
  for (const key of [e.type, '*'] as const) for (const l of listeners.get(key) ?? []) l(e);
}

/** Sets the API (once at start-up; tests pass a fake-free in-process one or a WS client). */
export function useApi(c: Connection): void {
  unsubscribe?.();
  conn = c;
  unsubscribe = c.api.onEvent(dispatch);
}

export function finch(): DesktopApi {
  if (!conn) useApi(connect());
  return conn!.api;
}

export function connection(): Connection {
  finch();
  return conn!;
}

/** Listens to one event type (or '*'); returns the unsubscribe function. Registering does not
 * connect: events flow once the first call (or useApi) has set up the connection. */
export function onEvent<T extends FinchEventType>(type: T | '*', listener: (e: Extract<FinchEvent, { type: T }>) => void): () => void {
  let set = listeners.get(type);
  if (!set) listeners.set(type, (set = new Set()));
  set.add(listener as Listener);
  return () => { set.delete(listener as Listener); };
}
