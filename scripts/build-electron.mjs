#!/usr/bin/env node
// Bundles the Electron main process and preload into dist/electron/ (the renderer is built by
// Vite into dist/renderer/). Needed only for the desktop app: the CLI runs TypeScript directly.
//  - main.js: ESM, Finch's own sources inlined, npm packages left to node_modules (native ones
//    such as onnxruntime-node and better-sqlite3 cannot be bundled).
//  - preload.cjs: CommonJS, everything inlined: a sandboxed preload may require only 'electron'.
// esbuild comes with tsx (a runtime dependency), so this needs nothing extra.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const common = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: { main: 'src-main/electron/main.ts' },
  outdir: 'dist/electron',
  format: 'esm',
  packages: 'external',
  outExtension: { '.js': '.js' },
});
await build({
  ...common,
  entryPoints: { preload: 'src-main/electron/preload.ts' },
  outdir: 'dist/electron',
  format: 'cjs',
  external: ['electron'],
  outExtension: { '.js': '.cjs' },
});
console.log('built dist/electron/main.js and dist/electron/preload.cjs');
