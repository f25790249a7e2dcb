// Hugging Face downloads in flight and finished: the latest 'download' event of each, so any screen
// can show progress, the error (with the access hint for gated repositories) or the new library id.

import type { FinchEvent } from '../../../../src-shared/api.ts';
import { finch, onEvent } from '../services/finch.ts';
import { library } from './library.svelte.ts';

export type DownloadState = Extract<FinchEvent, { type: 'download' }>;

class Downloads {
  byId = $state<Record<string, DownloadState>>({});
  private order = $state<string[]>([]);
  private listening = false;

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    onEvent('download', (e) => {
      if (!this.byId[e.downloadId]) this.order.push(e.downloadId);
      this.byId[e.downloadId] = e;
      if (e.state === 'done') void library.refresh(e.kind === 'model' ? 'models' : 'datasets');
    });
  }

  async start(kind: 'model', repo: string, token?: string): Promise<string>;
  async start(kind: 'dataset', repo: string, token: string | undefined, file: string): Promise<string>;
  async start(kind: 'model' | 'dataset', repo: string, token?: string, file?: string): Promise<string> {
    this.listen();
    const tok = token ? { token } : {};
    const { downloadId } = kind === 'model'
      ? await finch().downloadModel({ repo, ...tok })
      : await finch().downloadDataset({ repo, file: file!, ...tok });
    if (!this.byId[downloadId]) {
      this.order.push(downloadId);
      this.byId[downloadId] = {
        type: 'download', downloadId, kind, repo, state: 'running', file: null, bytes: 0, totalBytes: null,
        bytesPerS: 0, etaS: null, modelId: null, datasetId: null, error: null,
      };
    }
    return downloadId;
  }

  async cancel(id: string): Promise<void> {
    await finch().cancelDownload(id);
  }

  latest(kind: 'model' | 'dataset'): DownloadState | null {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const d = this.byId[this.order[i]!];
      if (d?.kind === kind) return d;
    }
    return null;
  }
}

export const downloads = new Downloads();
