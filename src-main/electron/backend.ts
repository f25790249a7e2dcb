// The back end as the desktop app hosts it: the services (createServices) behind their one
// validating dispatcher, with jobs and the WebGPU adapter probe in Electron utility processes
// (jobs.ts), pickPath answered by native dialogs, and the Hugging Face token encrypted by the
// system keychain where there is one (token-cipher.ts).

import type { ApiCalls } from '../../src-shared/api.js';
import { fileURLToPath } from 'node:url';
import { nodeArgsFor } from '../engine/runtime/worker.js';
import type { Services } from '../services/index.js';
import { utilityAdapterList, utilityJobs, type UtilityJobOptions } from './jobs.js';
import { keychainCipher } from './token-cipher.js';

/**
 * A utility process's module: in a build, the bundle scripts/build-electron.mjs writes beside
 * main.js; running from the TypeScript sources (tests), the module itself with the tsx loader.
 */
function utilityEntry(source: string, bundle: string): UtilityJobOptions {
  const fromSources = new URL(import.meta.url).pathname.endsWith('.ts');
  const entry = fromSources ? new URL(source, import.meta.url) : new URL(bundle, import.meta.url);
  return { entry: fileURLToPath(entry), execArgv: nodeArgsFor(entry) };
}

export async function startDesktopBackend(o: { pickPath: ApiCalls['pickPath'] }): Promise<Services> {
  // Loaded here, not at the top: main.ts sets FINCH_ASSETS (where the demo model lives) first.
  const { createServices } = await import('../services/index.js');
  return createServices({
    spawnJob: utilityJobs(utilityEntry('../services/job-host.ts', './job-host.js')),
    listAdapters: utilityAdapterList(utilityEntry('../engine/runtime/adapter-probe.ts', './adapter-probe.js')),
    pickPath: o.pickPath,
    tokenCipher: await keychainCipher(),
  });
}
