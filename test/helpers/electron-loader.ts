// Makes `import ... from 'electron'` load test/helpers/fake-electron.ts in this process, so the
// modules of src-main/electron run in plain Node. Call installFakeElectron() before the first
// (dynamic) import of such a module; then import the fake itself to drive and inspect it.
import { register } from 'node:module';

const FAKE = new URL('./fake-electron.ts', import.meta.url).href;
const HOOKS = `
export async function resolve(specifier, context, next) {
  if (specifier === 'electron') return next(${JSON.stringify(FAKE)}, context);
  return next(specifier, context);
}`;

let installed = false;

export async function installFakeElectron(): Promise<typeof import('./fake-electron.js')> {
  if (!installed) {
    register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);
    installed = true;
  }
  return import('electron') as unknown as Promise<typeof import('./fake-electron.js')>;
}
