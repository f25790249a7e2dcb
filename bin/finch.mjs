#!/usr/bin/env node
// `finch` entry point. Finch's sources are TypeScript run by tsx, so a fresh clone works right
// after `npm install` with no build step. Worker threads and child processes that Finch starts
// register tsx themselves (see src-main/engine/runtime/worker.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src-main/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
