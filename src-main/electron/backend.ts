// The back end as the desktop app hosts it: the services (createServices) behind their one
// validating dispatcher, with jobs in Electron utility processes (jobs.ts) and pickPath answered
// by native dialogs.

import type { ApiCalls } from '../../src-shared/api.js';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import type { Services } from '../services/index.js';
import { utilityJobs } from './jobs.js';

/**
 * The job host's entry: in a build, the bundle scripts/build-electron.mjs writes beside main.js;
 * running from the TypeScript sources (tests), the module itself with the tsx loader.
 */
function jobHostEntry(): URL {
  const fromSources = new URL(import.meta.url).pathname.endsWith('.ts');
  return fromSources ? new URL('../services/job-host.ts', import.meta.url) : new URL('./job-host.js', import.meta.url);
}

export async function startDesktopBackend(o: { pickPath: ApiCalls['pickPath'] }): Promise<Services> {
  // Loaded here, not at the top: main.ts sets FINCH_ASSETS (where the demo model lives) first.
  const { createServices } = await import('../services/index.js');
  const entry = jobHostEntry();
  return createServices({ spawnJob: utilityJobs({ entry: fileURLToPath(entry), execArgv: nodeArgsFor(entry) }), pickPath: o.pickPath });
}
