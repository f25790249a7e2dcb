// Exports run as jobs (services/exports.ts, job-host.ts runExport): while one is still writing (its
// job held at its first progress message, test/helpers/held-job.ts), the API answers other calls;
// released, it finishes with the files it wrote and their sizes. A failed export leaves nothing
// half-written, so the same call can be made again.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ExportResult, FinchEvent, RunConfig, RunSummary } from '../../src-shared/api.js';
import { failure, startApp, type TestApp } from '../helpers/app.js';
import { heldJobs } from '../helpers/held-job.js';
import { tempDir } from '../helpers/fixtures.js';

const jobs = heldJobs();
let app: TestApp;
let cfg: RunConfig;
let run: RunSummary;
before(async () => {
  app = await startApp('dispatcher', undefined, { spawnJob: jobs.spawn });
  ({ config: cfg } = await app.api.startDemo({ start: false }));
  run = await app.api.startRun({ ...cfg, maxSteps: 2, samplePrompts: 0, threads: 1, name: 'to export' });
  await app.waitFor((e) => e.type === 'run-status' && e.runId === run.id && e.status === 'completed', 'the run to complete');
});
after(() => app.close());

test('the API answers while an export is still writing, in a process of its own', async () => {
  const writing = jobs.blockNext({ message: 'export-progress' }, 'export');
  const dest = join(tempDir(), 'merged');
  let result: ExportResult | null = null;
  const exporting = app.api.exportMerged({ modelId: cfg.modelId, source: { kind: 'run', runId: run.id }, dest }).then((r) => { result = r; return r; });
  await writing.reached();
  // Held mid-export: other calls are answered meanwhile, and the export has not finished.
  assert.equal((await app.api.listRuns()).find((r) => r.id === run.id)?.status, 'completed');
  assert.ok((await app.api.appInfo()).providers.length > 0);
  assert.equal(result, null, 'the export is still running');
  const job = jobs.spawned.filter((j) => j.kind === 'export').at(-1)!.job;
  assert.ok(job.pid && job.pid !== process.pid, 'it runs in its own process');
  assert.ok(app.events.some((e: FinchEvent) => e.type === 'export-progress' && e.dest === dest));

  writing.release();
  const done = await exporting;
  assert.equal(done.path, dest);
  assert.ok(done.files.some((f) => f.name === 'config.json'));
  for (const f of done.files) assert.equal(f.bytes, statSync(join(dest, f.name)).size, f.name);
  assert.deepEqual(readdirSync(dest).sort(), done.files.map((f) => f.name).sort());
});

test('a GGUF export writes its file; a failed export leaves nothing behind and can be made again', async () => {
  const dir = tempDir();
  const gguf = await app.api.exportGguf({ modelId: cfg.modelId, source: { kind: 'run', runId: run.id }, dest: join(dir, 'model.gguf'), dtype: 'f16' });
  assert.equal(gguf.path, join(dir, 'model.gguf'));
  assert.deepEqual(gguf.files, [{ name: 'model.gguf', bytes: statSync(join(dir, 'model.gguf')).size }]);

  // The export process dies mid-way (a crash): the call fails with job_failed, the folder is gone.
  const dying = jobs.blockNext({ message: 'export-progress' }, 'export');
  const parent = tempDir(), dest = join(parent, 'ollama');
  const failing = failure(app.api.exportOllama({ modelId: cfg.modelId, source: { kind: 'run', runId: run.id }, dest, dtype: 'f16' }));
  await dying.reached();
  assert.ok(existsSync(dest));
  process.kill(jobs.spawned.filter((j) => j.kind === 'export').at(-1)!.job.pid!, 'SIGKILL');
  const f = await failing;
  assert.equal(f.code, 'job_failed');
  assert.match(f.message, /the export process ended unexpectedly \(signal SIGKILL\)/);
  assert.deepEqual(readdirSync(parent), [], 'nothing half-written');
  const again = await app.api.exportOllama({ modelId: cfg.modelId, source: { kind: 'run', runId: run.id }, dest, dtype: 'f16' });
  assert.match(again.command ?? '', /ollama create/);
  assert.ok(again.files.some((x) => x.name === 'Modelfile'));
});
