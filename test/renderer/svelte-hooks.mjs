// Node module hooks that let node:test import the Svelte app: `.svelte` components and
// `.svelte.ts` rune modules are compiled with Svelte's own compiler (client output, as Vite's
// plugin does), and `svelte` resolves to its browser build (Node's default is the server build).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compile, compileModule } from 'svelte/compiler';

const BROWSER = ['browser', 'import', 'module', 'default'];

export async function resolve(specifier, context, nextResolve) {
  const fromSvelteWorld = /^(svelte|esm-env)(\/|$)/.test(specifier)
    || /\/node_modules\/(svelte|esm-env)\//.test(context.parentURL ?? '')
    || /\.svelte(\.ts)?$/.test(context.parentURL ?? '');
  if (fromSvelteWorld) return nextResolve(specifier, { ...context, conditions: [...new Set([...BROWSER, ...context.conditions])] });
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (url.endsWith('.svelte')) {
    const filename = fileURLToPath(url);
    const source = await readFile(filename, 'utf8');
    const out = compile(source, { filename, generate: 'client', css: 'injected', runes: true });
    return { format: 'module', source: out.js.code, shortCircuit: true };
  }
  if (url.endsWith('.svelte.ts')) {
    const filename = fileURLToPath(url);
    // tsx (the next hook) strips the types; Svelte then compiles the runes.
    const js = await nextLoad(url, { ...context, format: 'module' });
    const out = compileModule(String(js.source), { filename, generate: 'client' });
    return { format: 'module', source: out.js.code, shortCircuit: true };
  }
  return nextLoad(url, context);
}
