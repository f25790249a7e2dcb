// Pushes to the Hugging Face Hub from the app: a run's or an imported adapter's result goes up with
// its model card through src-main/hub (one commit, private until complete, resumable), with
// 'export-progress' events that carry the repository. A merged model or a GGUF file is built first,
// by an export job (exports.ts) in a staging folder under FINCH_HOME/tmp, removed when the push
// ends; built again by a later push, it is byte for byte the same, so the Hub's storage still has
// what a failed push sent.
// The card's facts come from the library where it knows better than the run folder: the Hub ids of
// the base model and dataset, and the batch comparison the user ran (or the demo's).

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PushPhase, PushRequest, PushResult, RunSummary } from '../../src-shared/api.js';
import { type CardFacts, pushToHub } from '../hub/index.js';
import { stagingDir } from '../store/paths.js';
import { type Store, newId } from '../store/store.js';
import type { EventBus } from './bus.js';
import { ServiceError } from './errors.js';
import type { ExportService } from './exports.js';
import type { ExportPayload } from './jobs.js';
import type { Library } from './library.js';

export interface PushAccess {
  /** The token for a push: the request's own, else HF_TOKEN, else the saved one (hub/token.ts hubToken). */
  token: (given: string | undefined) => Promise<string | undefined>;
  endpoint: () => string | undefined;
}

export class Pushes {
  private running = new Map<string, AbortController>();

  constructor(
    private readonly bus: EventBus,
    private readonly store: Store,
    private readonly library: Library,
    private readonly run: (id: string) => RunSummary,
    private readonly access: PushAccess,
    private readonly exports: ExportService,
  ) {}

  async push(req: PushRequest): Promise<PushResult> {
    if (this.running.has(req.repo)) throw new ServiceError('conflict', `a push to ${req.repo} is running`, 'wait for it to finish, or cancel it');
    const abort = new AbortController();
    this.running.set(req.repo, abort);
    const staging = join(stagingDir(), `push-${newId()}`);
    try {
      const { adapterDir, runDir, modelId, facts } = this.source(req);
      const endpoint = (this.access.endpoint() || process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
      const dest = `${endpoint}/${req.repo}`;
      let last = 0, lastPhase: PushPhase | null = null;
      const progress = (phase: PushPhase, done: number, total: number) => {
        // At most ~10 events a second; every change of step and every end is sent.
        const now = performance.now();
        if (phase === lastPhase && done < total && now - last < 100) return;
        last = now;
        lastPhase = phase;
        this.bus.emit({ type: 'export-progress', dest, done, total, repo: req.repo, phase });
      };

      let path = adapterDir;
      if (req.what !== 'adapter') {
        // Built by an export job (exports.ts), so that the API answers while gigabytes are written;
        // cancelPush stops that job too.
        const base = this.library.model(modelId);
        mkdirSync(staging, { recursive: true });
        const build = (payload: ExportPayload & { out: string }, phase: PushPhase) =>
          this.exports.run(payload, payload.out, { signal: abort.signal, onProgress: (done, total) => progress(phase, done, total) });
        try {
          if (req.what === 'merged') {
            path = join(staging, 'model');
            await build({ kind: 'merged', model: base.path, adapter: adapterDir, out: path }, 'merging');
          } else {
            const dtype = req.dtype ?? 'q8_0';
            path = join(staging, `${req.repo.split('/')[1]}-${dtype}.gguf`);
            await build({ kind: 'gguf', model: base.path, adapter: adapterDir, loraOnly: false, dtype, out: path, name: base.name }, 'converting');
          }
        } catch (e) {
          if (abort.signal.aborted) throw new ServiceError('cancelled', `the push to ${req.repo} was cancelled while its ${req.what === 'merged' ? 'merged model' : 'GGUF file'} was being built`, null);
          throw e;
        }
      }
      const r = await pushToHub({
        kind: req.what, path, runDir, facts, repo: req.repo, private: req.private, signal: abort.signal,
        token: await this.access.token(req.token), endpoint,
        onProgress: (p) => progress(p.phase, p.done, p.total),
      });
      return {
        repo: r.repo, url: r.url, commit: r.commit, private: r.private, created: r.created,
        files: r.files.map((f) => ({ name: f.path, bytes: f.bytes })), alreadyStored: r.alreadyStored,
      };
    } finally {
      this.running.delete(req.repo);
      rmSync(staging, { recursive: true, force: true });
    }
  }

  cancel(repo: string): void {
    const c = this.running.get(repo);
    if (!c) throw new ServiceError('not_found', `no push to ${repo} is running`, null);
    c.abort();
  }

  cancelAll(): void {
    for (const c of this.running.values()) c.abort();
  }

  /** The adapter folder, the run folder for the card, the base model, and what the library knows better. */
  private source(req: PushRequest): { adapterDir: string; runDir: string | undefined; modelId: string; facts: Partial<CardFacts> } {
    const s = req.source;
    const run = s.kind === 'run' ? this.run(s.runId) : null;
    const adapter = s.kind === 'adapter' ? this.store.adapter(s.adapterId) : null;
    if (s.kind === 'adapter' && !adapter) throw new ServiceError('not_found', `no adapter with id ${s.adapterId}`, null);
    const modelId = req.modelId ?? run?.modelId ?? adapter?.baseModelId;
    if (!modelId) throw new ServiceError('invalid_argument', `run "${run?.name}" has no base model in the library`, 'choose the base model (modelId)');
    const adapterDir = this.library.adapterDir(s, modelId, this.run)!;
    const model = this.library.model(modelId);
    const dataset = run?.datasetId ? this.store.dataset(run.datasetId) : null;
    const facts: Partial<CardFacts> = {
      ...(model.repo ? { baseModel: model.repo } : { baseModel: null, baseModelName: model.name }),
      ...(dataset ? (dataset.repo ? { datasets: [dataset.repo] } : { datasets: [], datasetName: dataset.name }) : {}),
    };
    if (run && s.kind === 'run' && s.step !== undefined) {
      // A checkpoint: the card tells that step's loss, not the run's last.
      facts.steps = s.step;
      facts.finalLoss = this.store.metrics(run.id).find((m) => m.step === s.step)?.loss ?? null;
      facts.evalLoss = this.store.evals(run.id).find((e) => e.step === s.step)?.eval_loss ?? null;
    }
    if (req.comparison) {
      const on = this.library.dataset(req.comparison.datasetId);
      facts.comparison = { on: `rows of ${on.repo ?? on.name}`, rows: req.comparison.rows, baseAccuracy: req.comparison.baseAccuracy, tunedAccuracy: req.comparison.tunedAccuracy };
    } else if (run) {
      const demo = this.store.runRow(run.id)?.demo;
      if (demo && demo.tunedAccuracy !== null) {
        facts.comparison = { on: 'held-out problems of the demo dataset', rows: demo.rows.length, baseAccuracy: demo.baseAccuracy, tunedAccuracy: demo.tunedAccuracy };
      }
    }
    return { adapterDir, runDir: run && existsSync(join(run.dir, 'run.json')) ? run.dir : undefined, modelId, facts };
  }
}
