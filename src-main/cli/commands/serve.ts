// `finch serve`: browser mode. Builds the renderer when its build is missing or older than its
// sources, starts the services and the server on 127.0.0.1, prints the URL with the launch token,
// and runs until Ctrl-C (a training run in progress becomes 'interrupted', resumable next time).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServices, type ServicesOptions } from '../../services/index.js';
import { startServer } from '../../server/index.js';
import { parseCommand, usageError } from '../args.js';
import { reportError } from '../errors.js';

const USAGE = `Usage: finch serve [--port N] [--open] [--json]

Serves Finch's app to a browser on this machine only (127.0.0.1) and prints its address, which
carries a token made for this launch: only pages opened from that address can use the API.
  --port N   listen on port N (default: a free port)
  --open     open the address in the default browser
  --json     print {"url", "port"} as one JSON line instead of text`;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const RENDERER_DIR = join(ROOT, 'dist', 'renderer');
const RENDERER_SRC = join(ROOT, 'src-renderer');
const VITE_CONFIG = join(RENDERER_SRC, 'vite.config.ts');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** The renderer build, made first when missing or stale; throws with what to do when it cannot be built. */
export function ensureRendererBuilt(log: (s: string) => void): string {
  const index = join(RENDERER_DIR, 'index.html');
  const built = existsSync(index) ? statSync(index).mtimeMs : 0;
  // src-shared counts too: the renderer imports the contract, and its CSP <meta> comes from src-shared/csp.ts.
  if (built && (!existsSync(RENDERER_SRC) || Math.max(newestMtime(RENDERER_SRC), newestMtime(join(ROOT, 'src-shared'))) <= built)) return RENDERER_DIR;
  if (!existsSync(VITE_CONFIG)) {
    if (built) return RENDERER_DIR;
    throw new Error(`the app's pages are not built (${index} is missing) and ${VITE_CONFIG} does not exist in this copy of Finch; reinstall Finch, or run the API alone with a renderer build from elsewhere`);
  }
  log(built ? 'the app\'s sources changed since the last build: rebuilding (vite)...' : 'building the app\'s pages once (vite)...');
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', '--config', VITE_CONFIG, '--logLevel', 'warn'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !existsSync(index)) throw new Error(`building the app's pages failed (vite exit code ${r.status}); run \`npx vite build --config src-renderer/vite.config.ts\` to see why`);
  return RENDERER_DIR;
}

function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  const child = spawn(cmd as string, args as string[], { stdio: 'ignore', detached: true });
  child.on('error', () => console.error(`finch serve: could not open a browser (${cmd}); open the address above yourself`));
  child.unref();
}

/** `finch serve ARGV`; `hosting`: how its jobs are hosted (tests hold a run at a step). */
export async function run(argv: string[], hosting: Pick<ServicesOptions, 'spawnJob'> = {}): Promise<number> {
  const parsed = parseCommand('serve', argv, { port: { type: 'string' }, open: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return usageError('serve', `--port must be a port number (0-65535), got "${values.port}"`, USAGE);
  let services: ReturnType<typeof createServices> | null = null;
  try {
    const rendererDir = ensureRendererBuilt((s) => console.error(`finch serve: ${s}`));
    services = createServices({ browserMode: true, ...hosting });
    const srv = await startServer({ dispatcher: services.dispatcher, port, rendererDir });
    if (values.json) console.log(JSON.stringify({ url: srv.url, port: srv.port }));
    else console.log(`Finch is running at\n\n  ${srv.url}\n\nOpen that address in a browser on this machine (it carries this launch's token). Ctrl-C stops Finch.`);
    if (values.open) openBrowser(srv.url);
    const app = services;
    await new Promise<void>((done) => {
      const stop = () => { void srv.close().then(() => { app.close(); done(); }); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  } catch (e) {
    services?.close();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return reportError('serve', new Error(`port ${port} is in use: choose another with --port, or leave it out to get a free one`));
    return reportError('serve', e);
  }
}
