// Hugging Face Hub downloads in the app: a model repository or one dataset file goes into the
// cache (src-main/hub does the transfer: resumable partial files, disk-space check, no pickle),
// with 'download' events for progress, and joins the library when complete. The token comes from
// the call, else HF_TOKEN, else the saved one (hub/token.ts hubToken).

import type { DownloadDatasetRequest, DownloadModelRequest, FinchEvent, HubDatasetFile } from '../../src-shared/api.js';
import { downloadRepo, listDatasetFiles, type DownloadProgress } from '../hub/index.js';
import type { EventBus } from './bus.js';
import { ServiceError, toApiError } from './errors.js';
import type { Library } from './library.js';
import { newId } from '../store/store.js';

export interface HubAccessSettings {
  /** The token when a call brings none. */
  token: () => Promise<string | undefined>;
  endpoint: () => string | undefined;
  cacheDir: () => string | undefined;
}

type DownloadEvent = Extract<FinchEvent, { type: 'download' }>;

export class Downloads {
  private running = new Map<string, AbortController>();

  constructor(private readonly bus: EventBus, private readonly library: Library, private readonly access: HubAccessSettings) {}

  model(req: DownloadModelRequest): string {
    return this.start('model', req.repo, async (signal, onProgress) => {
      const r = await downloadRepo({ repo: req.repo, revision: req.revision, kind: 'model', ...(await this.auth(req.token)), cacheDir: this.access.cacheDir(), signal, onProgress });
      const m = await this.library.addModel(r.dir, { name: req.name ?? req.repo, source: 'hub', repo: req.repo, revision: r.commit });
      this.bus.emit({ type: 'library-changed', what: 'models' });
      return { modelId: m.id, datasetId: null };
    });
  }

  dataset(req: DownloadDatasetRequest): string {
    return this.start('dataset', req.repo, async (signal, onProgress) => {
      const r = await downloadRepo({ repo: req.repo, revision: req.revision, kind: 'dataset', files: [req.file], ...(await this.auth(req.token)), cacheDir: this.access.cacheDir(), signal, onProgress });
      const file = r.files.find((f) => f.path === req.file);
      if (!file) throw new ServiceError('hub', `${req.repo}: ${req.file} was not downloaded`, 'pick one of the files listHubDatasetFiles shows');
      const listed = await listDatasetFiles({ repo: req.repo, revision: r.commit, ...(await this.auth(req.token)) }).catch(() => []);
      const split = listed.find((f) => f.path === req.file)?.split ?? null;
      const d = await this.library.addDataset(file.localPath, {
        name: req.name ?? `${req.repo}${split ? ` (${split})` : ''}`, source: 'hub', repo: req.repo, split, format: req.format, map: req.map,
      });
      this.bus.emit({ type: 'library-changed', what: 'datasets' });
      return { modelId: null, datasetId: d.id };
    });
  }

  async listDatasetFiles(repo: string, revision: string | undefined, token: string | undefined): Promise<HubDatasetFile[]> {
    const files = await listDatasetFiles({ repo, revision, ...(await this.auth(token)) });
    return files.map((f) => ({ path: f.path, size: f.size, format: f.format as HubDatasetFile['format'], split: f.split ?? null }));
  }

  cancel(id: string): void {
    const c = this.running.get(id);
    if (!c) throw new ServiceError('not_found', `no download with id ${id} is running`, null);
    c.abort();
  }

  cancelAll(): void {
    for (const c of this.running.values()) c.abort();
  }

  private async auth(token: string | undefined): Promise<{ token?: string; endpoint?: string }> {
    const t = token ?? (await this.access.token()), endpoint = this.access.endpoint();
    return { ...(t ? { token: t } : {}), ...(endpoint ? { endpoint } : {}) };
  }

  private start(kind: 'model' | 'dataset', repo: string, work: (signal: AbortSignal, onProgress: (p: DownloadProgress) => void) => Promise<{ modelId: string | null; datasetId: string | null }>): string {
    const id = newId();
    const abort = new AbortController();
    this.running.set(id, abort);
    const t0 = performance.now();
    let last: DownloadEvent = {
      type: 'download', downloadId: id, kind, repo, state: 'running', file: null, bytes: 0, totalBytes: null, bytesPerS: 0, etaS: null, modelId: null, datasetId: null, error: null,
    };
    let lastSent = 0;
    const onProgress = (p: DownloadProgress) => {
      const s = (performance.now() - t0) / 1000, rate = s > 0 ? p.bytes / s : 0;
      last = { ...last, file: p.file ?? last.file, bytes: p.bytes, totalBytes: p.total, bytesPerS: rate, etaS: rate > 0 ? (p.total - p.bytes) / rate : null };
      // At most ~10 progress events a second; every file boundary is sent.
      if (p.event !== 'bytes' || performance.now() - lastSent > 100) {
        lastSent = performance.now();
        this.bus.emit(last);
      }
    };
    this.bus.emit(last);
    work(abort.signal, onProgress).then(
      (made) => this.bus.emit({ ...last, state: 'done', ...made }),
      (e) => {
        const error = toApiError(e);
        this.bus.emit({ ...last, state: error.code === 'cancelled' ? 'cancelled' : 'failed', error });
      },
    ).finally(() => this.running.delete(id));
    return id;
  }
}
