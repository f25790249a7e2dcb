#!/usr/bin/env node
// Packs `finch bench gpu-check` into one self-contained folder and a .tar.xz, for a Linux x64
// machine with a GPU but no Node: this Node binary (process.execPath), the Finch sources the
// check reaches by static imports (run by tsx, as bin/finch.mjs does), the PyTorch peer script,
// and the npm packages those sources import, pruned to linux-x64 (ONNX Runtime's native library,
// Dawn's binding, esbuild's binary for tsx). On the GPU machine:
//   tar -xJf finch-gpu-check-linux-x64.tar.xz && finch-gpu-check/gpu-check > result.json
// Usage: node scripts/pack-gpu-check.mjs [--outdir DIR] [--level 0-9] [--no-archive]
//   (defaults: dist/, xz level 6; a lower level is faster and only larger)
// Prints one JSON line: {"folder", "archive", "folder_mb", "archive_mb"}.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync, chmodSync, renameSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { outdir: { type: 'string', default: join(root, 'dist') }, level: { type: 'string', default: '6' }, 'no-archive': { type: 'boolean', default: false } } });
if (!/^[0-9]$/.test(values.level)) { console.error(`pack-gpu-check: --level must be 0-9, got "${values.level}"`); process.exit(2); }
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`pack-gpu-check: packs for linux-x64 with this machine's Node; this is ${process.platform}-${process.arch}`);
  process.exit(2);
}
const name = 'finch-gpu-check';
const outdir = resolve(values.outdir);
const folder = join(outdir, name);
const archive = join(outdir, `${name}-linux-x64.tar.xz`);

// Entry points: the CLI route to the check, and the child processes it starts by file path.
const ENTRIES = ['src-main/cli/main.ts', 'src-main/cli/commands/bench.ts', 'src-main/bench/gpu-check.ts', 'src-main/bench/train-finch.ts', 'src-main/engine/runtime/adapter-probe.ts'];
const EXTRA_FILES = ['bin/finch.mjs', 'package.json', 'tsconfig.json', 'src-main/bench/peers/torch_lora_train.py'];
// Packages loaded without a static import: tsx (the --import loader of every child) and webgpu
// (adapter-probe.ts imports it when it lists adapters, in a child process).
const EXTRA_PACKAGES = ['tsx', 'webgpu'];

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;

/** The source files reachable from ENTRIES through static relative imports, and the bare packages they import. */
function reachable() {
  const files = new Set(), packages = new Set(EXTRA_PACKAGES);
  const queue = ENTRIES.map((f) => join(root, f));
  while (queue.length) {
    const file = queue.pop();
    if (files.has(file)) continue;
    files.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = m[1];
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        const ts = target.replace(/\.js$/, '.ts');
        queue.push(existsSync(ts) ? ts : target);
      } else {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
      }
    }
  }
  return { files: [...files], packages: [...packages] };
}

/** The package folders needed by `packages`, following dependencies and installed optional dependencies. */
function packageClosure(packages) {
  const found = new Map(); // name -> folder
  const queue = packages.map((p) => [p, join(root, 'node_modules')]);
  while (queue.length) {
    const [pkg, from] = queue.pop();
    const dir = [join(from, pkg), join(root, 'node_modules', pkg)].find((d) => existsSync(join(d, 'package.json')));
    if (!dir) {
      if (packages.includes(pkg)) throw new Error(`pack-gpu-check: package ${pkg} is not installed (run npm ci)`);
      continue; // an optional dependency for another platform
    }
    if ([...found.values()].includes(dir)) continue;
    found.set(relative(root, dir), dir);
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const dep of Object.keys({ ...meta.dependencies, ...meta.optionalDependencies })) queue.push([dep, join(dir, 'node_modules')]);
  }
  return [...found.values()];
}

// Other platforms' native files, which would triple the archive, and esbuild's CLI copy of its
// binary (tsx calls the one in @esbuild/linux-x64).
const PRUNE = [
  ['node_modules/esbuild/bin', () => true],
  // CUDA/TensorRT provider libraries (hundreds of MB) where this install downloaded them; on the
  // GPU machine `./node node_modules/onnxruntime-node/script/install.js` fetches them.
  ['node_modules/onnxruntime-node/bin', (p) => /libonnxruntime_providers_(cuda|tensorrt)/.test(p)],
  ['node_modules/onnxruntime-node/bin', (p) => /napi-v\d+\/(darwin|win32|linux\/arm64)$/.test(p)],
  ['node_modules/webgpu/dist', (p) => /dist\/(?!linux-x64$)[^/]+$/.test(p)],
];

function folderBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

const { files, packages } = reachable();
const tmp = `${folder}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
for (const f of [...files.map((f) => relative(root, f)), ...EXTRA_FILES]) cpSync(join(root, f), join(tmp, f));
for (const dir of packageClosure(packages)) {
  const rel = relative(root, dir);
  cpSync(dir, join(tmp, rel), { recursive: true, dereference: true, filter: (src) => !PRUNE.some(([base, drop]) => relative(root, src).startsWith(base) && drop(relative(root, src))) });
}
cpSync(process.execPath, join(tmp, 'node'));
writeFileSync(join(tmp, 'gpu-check'), `#!/bin/sh
# Runs Finch's GPU check with the Node packed beside this script; arguments go to the check
# (--help lists them). Prints one JSON object on stdout.
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/node" "$here/bin/finch.mjs" bench gpu-check "$@"
`);
chmodSync(join(tmp, 'gpu-check'), 0o755);
rmSync(folder, { recursive: true, force: true });
renameSync(tmp, folder); // the folder appears complete or not at all

const result = { folder, archive: null, folder_mb: folderBytes(folder) / 2 ** 20, archive_mb: null };
if (!values['no-archive']) {
  const partial = `${archive}.tmp-${process.pid}`;
  execFileSync('tar', ['-C', outdir, '-cJf', partial, name], { env: { ...process.env, XZ_OPT: `-${values.level} -T0` }, stdio: 'inherit' });
  renameSync(partial, archive);
  result.archive = archive;
  result.archive_mb = statSync(archive).size / 2 ** 20;
}
console.log(JSON.stringify(result));
