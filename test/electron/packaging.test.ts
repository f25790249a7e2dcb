// What `npm run dist` packages, checked by behaviour: electron-builder.yml passes electron-builder's
// own schema (and a broken copy does not); its patterns, matched the way electron-builder matches
// them (minimatch), unpack every native binary from the asar, keep each OS's binaries only in its
// package, and ship the demo assets and icons; the icon files are real ICO/ICNS/PNG images of the
// sizes they claim; and the bundles that scripts/build-electron.mjs writes start the app.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minimatch } from 'minimatch';
import { parse } from 'yaml';
import { contentSecurityPolicy } from '../../src-shared/csp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);
interface BuilderConfig {
  asarUnpack: string[];
  files: string[];
  extraResources: { from: string; to: string; filter: string[] }[];
  linux: { icon: string; files: string[] };
  win: { icon: string; files: string[] };
  mac: { icon: string; files: string[] };
}
const cfg = parse(readFileSync(join(root, 'electron-builder.yml'), 'utf8')) as BuilderConfig;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
/** electron-builder's file-set rule: included by some positive pattern and by no "!" pattern after it. */
function selected(path: string, patterns: string[]): boolean {
  let keep = false;
  for (const p of patterns) {
    if (p.startsWith('!')) { if (minimatch(path, p.slice(1), { dot: true })) keep = false; } else if (minimatch(path, p, { dot: true })) keep = true;
  }
  return keep;
}

test('electron-builder.yml passes electron-builder\'s own schema, and a broken copy does not', () => {
  const Ajv = require('ajv') as new (o: object) => { validate(s: object, d: unknown): boolean; errors: unknown };
  const schema = JSON.parse(readFileSync(require.resolve('app-builder-lib/scheme.json'), 'utf8')) as object;
  const ajv = new Ajv({ allErrors: true, strict: false });
  assert.ok(ajv.validate(schema, cfg), JSON.stringify(ajv.errors));
  assert.equal(ajv.validate(schema, { ...cfg, linux: { ...cfg.linux, target: 'AppImage', icons: 'x' } }), false);
});

test('every native binary of onnxruntime-node and better-sqlite3 is unpacked from the asar, each OS keeping its own', () => {
  const natives = [...walk(join(root, 'node_modules/onnxruntime-node/bin')), ...walk(join(root, 'node_modules/better-sqlite3/build/Release')).filter((f) => f.endsWith('.node'))]
    .map((f) => relative(root, f).split('\\').join('/'));
  assert.ok(natives.some((f) => f.endsWith('onnxruntime_binding.node')) && natives.some((f) => f.endsWith('better_sqlite3.node')));
  for (const f of natives) assert.ok(cfg.asarUnpack.some((p) => minimatch(f, p, { dot: true })), `${f} would stay inside app.asar`);
  const orFiles = natives.filter((f) => f.includes('onnxruntime-node/bin/'));
  for (const [os, key] of [['linux', 'linux'], ['win32', 'win'], ['darwin', 'mac']] as const) {
    const kept = orFiles.filter((f) => selected(f, ['**/*', ...cfg[key].files]));
    assert.ok(kept.length > 0, `${os}: no ONNX Runtime binaries`);
    for (const f of kept) assert.ok(f.includes(`/napi-v6/${os}/`), `${key} package would carry ${f}`);
  }
  assert.ok(orFiles.some((f) => f.endsWith('DirectML.dll') && selected(f, ['**/*', ...cfg.win.files])), 'Windows keeps DirectML');
});

test('the app files, demo model and dataset, and icons are in the package; READMEs and source maps are not', () => {
  assert.ok(selected('dist/electron/main.js', cfg.files) && selected('dist/electron/preload.cjs', cfg.files) && selected('dist/renderer/index.html', cfg.files));
  assert.equal(selected('dist/electron/main.js.map', cfg.files), false);
  assert.equal(selected('src-main/electron/main.ts', cfg.files), false);
  const res = cfg.extraResources.find((r) => r.from === 'assets')!;
  const assets = walk(join(root, 'assets')).map((f) => relative(join(root, 'assets'), f).split('\\').join('/'));
  const shipped = assets.filter((f) => selected(f, res.filter));
  for (const f of ['demo/model/model.safetensors', 'demo/model/config.json', 'demo/model/tokenizer.json', 'demo/data/train.jsonl', 'demo/data/test.jsonl', 'icon/png/512x512.png']) assert.ok(shipped.includes(f), `${f} is not shipped`);
  assert.ok(!shipped.some((f) => f.endsWith('README.md')));
});

const png = (b: Buffer) => {
  assert.equal(b.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'not a PNG');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
};

test('the icons are real images of the sizes they claim: Linux PNGs, the Windows ICO, the macOS ICNS', () => {
  const dir = join(root, cfg.linux.icon);
  const pngs = readdirSync(dir);
  assert.ok(pngs.includes('512x512.png') && pngs.includes('256x256.png'));
  for (const f of pngs) {
    const [w, h] = f.replace('.png', '').split('x').map(Number);
    assert.deepEqual(png(readFileSync(join(dir, f))), { width: w, height: h }, f);
  }
  const ico = readFileSync(join(root, cfg.win.icon));
  assert.deepEqual([ico.readUInt16LE(0), ico.readUInt16LE(2)], [0, 1], 'ICONDIR of an icon');
  const sizes: number[] = [];
  for (let i = 0; i < ico.readUInt16LE(4); i++) {
    const e = 6 + 16 * i;
    const n = ico.readUInt8(e) || 256;
    const image = ico.subarray(ico.readUInt32LE(e + 12), ico.readUInt32LE(e + 12) + ico.readUInt32LE(e + 8));
    assert.deepEqual(png(image), { width: n, height: n });
    sizes.push(n);
  }
  assert.ok(sizes.includes(256) && sizes.includes(16), 'NSIS needs a 256 px entry');
  const icns = readFileSync(join(root, cfg.mac.icon));
  assert.equal(icns.subarray(0, 4).toString('latin1'), 'icns');
  assert.equal(icns.readUInt32BE(4), icns.length);
  const px: Record<string, number> = { icp4: 16, icp5: 32, icp6: 64, ic07: 128, ic08: 256, ic09: 512, ic10: 1024, ic11: 32, ic12: 64, ic13: 256, ic14: 512 };
  const types: string[] = [];
  for (let o = 8; o < icns.length;) {
    const type = icns.subarray(o, o + 4).toString('latin1');
    const len = icns.readUInt32BE(o + 4);
    assert.deepEqual(png(icns.subarray(o + 8, o + len)), { width: px[type], height: px[type] }, type);
    types.push(type);
    o += len;
  }
  assert.ok(types.includes('ic10'), '1024 px for Retina');
});

test('the bundles from scripts/build-electron.mjs start the app (under the faked electron module)', () => {
  // Inside the checkout, so the bundle finds node_modules as the packaged app does.
  mkdirSync(join(root, 'dist'), { recursive: true });
  const out = mkdtempSync(join(root, 'dist', 'test-electron-'));
  try {
    execFileSync(process.execPath, [join(root, 'scripts/build-electron.mjs'), '--outdir', out], { cwd: root, stdio: 'pipe' });
    assert.ok(existsSync(join(out, 'main.js')) && existsSync(join(out, 'preload.cjs')));
    const child = fileURLToPath(new URL('./main-launch.child.ts', import.meta.url));
    const r = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', child, 'normal', join(out, 'main.js')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').at(-1)!) as { windows: number; url: string; preload: string; csp: string };
    assert.equal(r.windows, 1);
    assert.equal(r.url, 'app://finch/index.html');
    assert.equal(r.preload, join(out, 'preload.cjs'));
    assert.equal(r.csp, contentSecurityPolicy());
    // The adapter probe's bundle runs on its own (the app starts it as a utility process): it answers with the adapters.
    const probe = execFileSync(process.execPath, [join(out, 'adapter-probe.js')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const answer = JSON.parse(probe.split('\n').find((l) => l.startsWith('FINCH_ADAPTERS '))!.slice('FINCH_ADAPTERS '.length)) as { adapters?: unknown[]; error?: string };
    assert.ok(Array.isArray(answer.adapters), answer.error);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
