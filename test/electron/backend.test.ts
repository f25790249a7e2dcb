// src-main/electron/backend.ts: the desktop app's back end lists WebGPU adapters where the app
// runs, in an Electron (here: faked) utility process on engine/runtime/adapter-probe.ts, since
// process.execPath is Electron there and cannot be started as Node; its 'auto' is `finch doctor`'s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installFakeElectron } from '../helpers/electron-loader.js';
import type { AppInfo } from '../../src-shared/api.js';

const { fake } = await installFakeElectron();
const home = mkdtempSync(join(tmpdir(), 'finch-backend-'));
process.env.FINCH_HOME = home;
const { startDesktopBackend } = await import('../../src-main/electron/backend.js');
const { listWebGpuAdapters } = await import('../../src-main/engine/runtime/providers.js');
const { nodeArgsFor } = await import('../../src-main/engine/runtime/worker.js');

const backend = await startDesktopBackend({ pickPath: async () => null });
const appInfo = async (): Promise<AppInfo> => {
  const r = await backend.dispatcher.dispatch('appInfo', []);
  if (!r.ok) throw new Error(r.error.message);
  return r.value as AppInfo;
};

test.after(() => {
  backend.close();
  rmSync(home, { recursive: true, force: true });
});

test('inside Electron a Node child is never spawned for the probe: process.execPath would start Electron', async () => {
  assert.ok(process.versions.electron, 'the fake sets process.versions.electron, as Electron does');
  const r = await listWebGpuAdapters();
  assert.deepEqual(r.adapters, []);
  assert.match(r.error!, /inside Electron, WebGPU adapters are listed by a utility process/);
});

test('appInfo probes once, in a utility process on adapter-probe.ts, and its auto is finch doctor\'s decision', { timeout: 120_000 }, async () => {
  const info = await appInfo();
  const probes = fake.utilityProcesses.filter((p) => p.serviceName === 'Finch GPU probe');
  assert.equal(probes.length, 1);
  const entry = new URL('../../src-main/engine/runtime/adapter-probe.ts', import.meta.url);
  assert.equal(probes[0]!.modulePath, fileURLToPath(entry));
  assert.deepEqual(probes[0]!.execArgv, nodeArgsFor(entry), 'the tsx loader from the sources (a build runs adapter-probe.js as is)');
  // It answered (WebGPU is listed with this machine's adapter, lavapipe in CI) and was ended.
  const webgpu = info.providers.find((p) => p.name === 'webgpu')!;
  assert.equal(webgpu.available, true, webgpu.note);
  await new Promise<void>((resolve) => { if (probes[0]!.process.pid === undefined) resolve(); else probes[0]!.process.once('exit', () => resolve()); });

  const doctor = JSON.parse(execFileSync(process.execPath, ['bin/finch.mjs', 'doctor', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { auto: string; auto_reason: string; auto_adapter: string | null };
  assert.deepEqual({ provider: info.auto.provider, reason: info.auto.reason, adapter: info.auto.adapter?.name ?? null },
    { provider: doctor.auto, reason: doctor.auto_reason, adapter: doctor.auto_adapter });

  await appInfo();
  assert.equal(fake.utilityProcesses.filter((p) => p.serviceName === 'Finch GPU probe').length, 1, 'probed once per process');
});
