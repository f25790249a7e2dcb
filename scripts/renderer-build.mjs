// Builds the renderer (src-renderer -> dist/renderer, `npm run build:renderer`) when its output is
// missing or older than its sources (src-renderer, and src-shared which it imports). Used by
// `npm start` and by tests that load the built pages.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const RENDERER_INDEX = join(ROOT, 'dist', 'renderer', 'index.html');

function newest(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newest(p) : st.mtimeMs);
  }
  return t;
}

export function rendererIsStale() {
  if (!existsSync(RENDERER_INDEX)) return true;
  return statSync(RENDERER_INDEX).mtimeMs < Math.max(newest(join(ROOT, 'src-renderer')), newest(join(ROOT, 'src-shared')));
}

/** Builds dist/renderer if needed; throws with vite's exit status when the build fails. */
export function ensureRendererBuilt({ quiet = false } = {}) {
  if (!rendererIsStale()) return false;
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', '--config', 'src-renderer/vite.config.ts', '--logLevel', quiet ? 'error' : 'warn'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`building the renderer failed (vite exit ${r.status ?? r.signal}); run \`npm run build:renderer\` to see why`);
  return true;
}
