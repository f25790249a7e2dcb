// Test setup for the renderer: a happy-dom window as the global DOM and the Svelte hooks above.
// Import this first, then import components and stores dynamically (static imports are linked
// before this module runs, so they would miss the hooks).
import { register } from 'node:module';
import { Window } from 'happy-dom';

register('./svelte-hooks.mjs', import.meta.url);

const window = new Window({ url: 'http://127.0.0.1:4321/?token=test' });
const g = globalThis as Record<string, unknown>;
for (const key of [
  'window', 'document', 'navigator', 'location', 'localStorage', 'getComputedStyle', 'requestAnimationFrame', 'cancelAnimationFrame',
  'Node', 'Element', 'HTMLElement', 'HTMLInputElement', 'HTMLSelectElement', 'HTMLTextAreaElement', 'HTMLButtonElement', 'HTMLCanvasElement', 'HTMLFormElement', 'HTMLMediaElement',
  'Text', 'Comment', 'DocumentFragment', 'SVGElement', 'Event', 'CustomEvent', 'KeyboardEvent', 'MouseEvent', 'InputEvent', 'FocusEvent',
  'MutationObserver', 'ResizeObserver', 'matchMedia',
]) {
  const value = (window as unknown as Record<string, unknown>)[key];
  if (value !== undefined && !(key in g && key === 'navigator')) g[key] = typeof value === 'function' && /^[a-z]/.test(key) ? (value as Function).bind(window) : value;
}
Object.defineProperty(globalThis, 'navigator', { value: window.navigator, configurable: true });

/** Lets Svelte's effects and pending promises settle. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  const { flushSync } = await import('svelte');
  flushSync();
}

export { window };
