#!/usr/bin/env node
// Bundles the Electron main process and preload into dist/electron/ (the renderer is built by
// Vite into dist/renderer/). Needed only for the desktop app: the CLI runs TypeScript directly.
//  - main.js: ESM, Finch's own sources inlined, npm packages left to node_modules (native ones
//    such as onnxruntime-node and better-sqlite3 cannot be bundled).
//  - job-host.js: the services' job process (training, generation), run as a utility process;
//    ESM like main.js, npm packages (onnxruntime-node) from node_modules.
//  - adapter-probe.js: the WebGPU adapter probe, run as a utility process (webgpu from node_modules).
//  - preload.cjs: CommonJS, everything inlined: a sandboxed preload may require only 'electron'.
// esbuild comes with tsx (a runtime dependency), so this needs nothing extra.
// Usage: node scripts/build-electron.mjs [--outdir DIR]   (default dist/electron)
import { build } from 'esbuild';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist/electron' } } });
const outdir = values.outdir;
const common = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node22', sourcemap: true, logLevel: 'warning', outdir };

await build({
  ...common,
  entryPoints: { main: 'src-main/electron/main.ts', 'job-host': 'src-main/services/job-host.ts', 'adapter-probe': 'src-main/engine/runtime/adapter-probe.ts' },
  format: 'esm',
  packages: 'external',
  outExtension: { '.js': '.js' },
});
await build({
  ...common,
  entryPoints: { preload: 'src-main/electron/preload.ts' },
  format: 'cjs',
  external: ['electron'],
  outExtension: { '.js': '.cjs' },
});
console.log(`built ${outdir}/main.js, job-host.js, adapter-probe.js and preload.cjs`);
