// Exports (merged weights, GGUF, Ollama, Accelerate) as jobs: each runs in a process of its own
// (job-host.ts runExport), so that writing gigabytes of merged weights never holds the API, and
// its progress reaches the app as 'export-progress' events. A job that fails or dies fails its call
// (job_failed when it died) and leaves no partly written files; stopping the app ends the jobs
// still running.

import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ExportResult } from '../../src-shared/api.js';
import type { EventBus } from './bus.js';
import { ServiceError, toApiError } from './errors.js';
import type { ExportDone, ExportPayload, JobHandle, SpawnJob } from './jobs.js';

export interface ExportOptions {
  /** Takes the job's progress instead of the 'export-progress' events for `dest`. */
  onProgress?: (done: number, total: number) => void;
  /** Stops the job: its call rejects with code 'cancelled' and what it wrote is removed. */
  signal?: AbortSignal;
}

const cancelled = () => new ServiceError('cancelled', 'the export was cancelled', null);

export class ExportService {
  private readonly live = new Set<JobHandle>();

  constructor(private readonly bus: EventBus, private readonly spawnJob: SpawnJob) {}

  /**
   * Runs one export into `dest` (a new or empty folder, or a GGUF file's path), which names it in
   * the progress events too. Resolves with what it wrote, file sizes included; on failure, what it
   * had written is removed, so the same call can be made again. A caller that builds for a task of
   * its own (a push) takes the progress itself (`onProgress`: no event is sent for `dest`) and may
   * stop the job (`signal`: the call rejects with code 'cancelled').
   */
  run(payload: ExportPayload, dest: string, o: ExportOptions = {}): Promise<ExportResult> {
    const existed = existsSync(dest);
    // Writers stage in a hidden sibling named after the destination (model/merge.ts: ".<name>.merge-tmp-...").
    const parent = dirname(dest), staging = `.${basename(dest)}.`;
    const siblings = new Set(existsSync(parent) ? readdirSync(parent) : []);
    const removePartial = () => {
      if (!existed) rmSync(dest, { recursive: true, force: true });
      else if (statSync(dest).isDirectory()) for (const name of readdirSync(dest)) rmSync(join(dest, name), { recursive: true, force: true });
      if (!existsSync(parent)) return;
      for (const name of readdirSync(parent)) if (name.startsWith(staging) && !siblings.has(name)) rmSync(join(parent, name), { recursive: true, force: true });
    };
    return new Promise<ExportResult>((resolve, reject) => {
      if (o.signal?.aborted) throw cancelled();
      const job = this.spawnJob('export', payload);
      this.live.add(job);
      let result: ExportDone | null = null;
      let settled = false;
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        this.live.delete(job);
        job.kill();
        o.signal?.removeEventListener('abort', onAbort);
        f();
      };
      const onAbort = () => settle(() => reject(cancelled()));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      job.onMessage((m) => {
        switch (m.type) {
          case 'export-progress':
            if (o.onProgress) o.onProgress(m.done, m.total);
            else this.bus.emit({ type: 'export-progress', dest, done: m.done, total: m.total });
            break;
          case 'export-done': result = m.result; break;
          case 'finished': settle(() => (result ? resolve(withSizes(result)) : reject(new ServiceError('internal', 'the export process finished without saying what it wrote', null)))); break;
          case 'failed': {
            const e = toApiError(Object.assign(new Error(m.message), { name: m.name, hint: m.hint ?? undefined }));
            settle(() => reject(new ServiceError(e.code, e.message, e.hint)));
            break;
          }
          default: break;
        }
      });
      job.onExit((code, signal) => settle(() => reject(new ServiceError('job_failed',
        `the export process ended unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`, 'try again'))));
    }).catch((e: unknown) => {
      removePartial();
      throw e;
    });
  }

  /** The export jobs running now (tests hold one). */
  get running(): number {
    return this.live.size;
  }

  close(): void {
    for (const job of this.live) job.kill();
    this.live.clear();
  }
}

function withSizes(r: ExportDone): ExportResult {
  // A GGUF export's path is the file itself; the others' are folders holding the files.
  const file = (name: string) => (statSync(r.path).isDirectory() ? join(r.path, name) : r.path);
  return { path: r.path, files: r.files.map((name) => ({ name, bytes: statSync(file(name)).size })), ...(r.command ? { command: r.command } : {}) };
}
