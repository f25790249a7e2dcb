import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);

test('electron-builder.yml is valid against electron-builder\'s own schema and unpacks native modules', () => {
  const Ajv = require('ajv') as new (o: object) => { validate(s: object, d: unknown): boolean; errors: unknown };
  const schema = JSON.parse(readFileSync(require.resolve('app-builder-lib/scheme.json'), 'utf8')) as object;
  const cfg = parse(readFileSync(join(root, 'electron-builder.yml'), 'utf8')) as { asarUnpack: string[] };
  const ajv = new Ajv({ allErrors: true, strict: false });
  assert.ok(ajv.validate(schema, cfg), JSON.stringify(ajv.errors));
  assert.ok(cfg.asarUnpack.some((p) => p.startsWith('node_modules/onnxruntime-node/')));
  assert.ok(cfg.asarUnpack.some((p) => p.startsWith('node_modules/better-sqlite3/')));
});

test('the sandboxed preload bundles to CommonJS that requires only electron', async () => {
  const out = mkdtempSync(join(tmpdir(), 'finch-preload-'));
  try {
    await build({ absWorkingDir: root, entryPoints: ['src-main/electron/preload.ts'], bundle: true, platform: 'node', format: 'cjs', external: ['electron'], outfile: join(out, 'preload.cjs'), logLevel: 'silent' });
    const code = readFileSync(join(out, 'preload.cjs'), 'utf8');
    const required = [...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    assert.deepEqual([...new Set(required)], ['electron']);
    assert.match(code, /exposeInMainWorld\("api"/);
    for (const call of ['appInfo', 'listModels', 'startRun', 'stopRun', 'onRunEvent']) assert.match(code, new RegExp(`${call}`));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the main process keeps the renderer sandboxed and isolated', () => {
  const src = readFileSync(join(root, 'src-main/electron/main.ts'), 'utf8');
  assert.match(src, /contextIsolation: true/);
  assert.match(src, /nodeIntegration: false/);
  assert.match(src, /sandbox: true/);
  assert.match(src, /Content-Security-Policy/);
  assert.match(src, /action: 'deny'/);
});
