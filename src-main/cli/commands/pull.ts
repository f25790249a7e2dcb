// `finch pull`: downloads a model or dataset repository from the Hugging Face Hub into Finch's
// cache and prints the local folder; a progress bar with ETA on a terminal, JSON lines with --json.

import { basename } from 'node:path';
import { HubError, downloadRepo, hubToken, listDatasetFiles, type DownloadProgress } from '../../hub/index.js';
import { parseCommand, usageError } from '../args.js';
import { reportError } from '../errors.js';
import { EtaEstimator, JsonLines, byteScale, createProgress, type ProgressBar } from '../progress.js';

const USAGE = `Usage: finch pull REPO[@REVISION] [options]

Downloads a model (config, tokenizer and safetensors weights) or a dataset (its data files) from
the Hugging Face Hub into <FINCH_HOME>/hub and prints the local folder. Pickle files (*.bin, *.pt,
*.pth, *.pkl) are never downloaded. An interrupted download resumes where it stopped.

  --dataset        REPO is a dataset (as is REPO written datasets/OWNER/NAME)
  --file PATH      only this file of the repository (repeat for several)
  --list           datasets: list the data files with format, size and split; download nothing
  --token T        token for gated or private repositories (default: $HF_TOKEN, else the
                   token saved in Finch's Settings)
  --endpoint URL   the Hub's address (default: $HF_ENDPOINT or https://huggingface.co)
  --cache DIR      download folder (default: <FINCH_HOME>/hub)
  --json           one JSON object per line: start, file, progress, file-done, done or error

Examples:
  finch pull meta-llama/Llama-3.2-1B-Instruct --token hf_...
  finch pull Qwen/Qwen2.5-0.5B-Instruct@main
  finch pull meta-math/MetaMathQA --dataset --list
  finch pull meta-math/MetaMathQA --dataset --file MetaMathQA-395K.json`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('pull', argv, {
    dataset: { type: 'boolean', default: false }, file: { type: 'string', multiple: true }, list: { type: 'boolean', default: false },
    token: { type: 'string' }, endpoint: { type: 'string' }, cache: { type: 'string' }, json: { type: 'boolean', default: false },
  }, USAGE, true);
  if ('exit' in parsed) return parsed.exit;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usageError('pull', positionals.length ? `one repository at a time, got ${positionals.join(' ')}` : 'which repository? (e.g. finch pull Qwen/Qwen2.5-0.5B-Instruct)', USAGE);
  const at = positionals[0]!.lastIndexOf('@');
  const repo = at > 0 ? positionals[0]!.slice(0, at) : positionals[0]!;
  const revision = at > 0 ? positionals[0]!.slice(at + 1) : undefined;
  const kind = values.dataset || repo.startsWith('datasets/') ? 'dataset' : 'model';
  const token = await hubToken(values.token, undefined, (why) => console.error(`note: ${why}; pulling without it`));
  const access = { repo, revision, token, endpoint: values.endpoint };
  const json = values.json ? new JsonLines(process.stdout) : null;
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);

  let bar: ProgressBar | null = null;
  try {
    if (values.list) {
      if (kind !== 'dataset') return usageError('pull', '--list lists a dataset\'s data files (add --dataset)', USAGE);
      const files = await listDatasetFiles({ ...access, signal: ac.signal });
      if (json) json.emit('files', { repo, files });
      else {
        for (const f of files) console.log(`${f.path}\t${f.format}\t${f.size}\t${f.split ?? '-'}`);
        const elsewhere = files.find((f) => f.revision)?.revision;
        if (elsewhere) console.error(`note: ${repo} has no data files of its own; these are the Hub's conversion on ${elsewhere}: finch pull ${repo}@${elsewhere} --dataset --file PATH`);
      }
      return 0;
    }
    let eta = new EtaEstimator(0);
    let scale = byteScale(0);
    let lastJson = 0;
    const onProgress = (p: DownloadProgress) => {
      if (json) {
        if (p.event === 'bytes') {
          const t = performance.now();
          if (t - lastJson < 100) return; // at most ~10 lines a second
          lastJson = t;
          eta.add(t, p.bytes);
          json.emit('progress', { file: p.file, fileBytes: p.fileBytes, fileTotal: p.fileTotal, bytes: p.bytes, total: p.total, etaSeconds: eta.etaSeconds() });
        } else if (p.event === 'start') {
          eta = new EtaEstimator(p.total);
          eta.add(performance.now(), p.bytes);
          json.emit('start', { repo, kind, revision: revision ?? 'main', files: p.filesTotal, total: p.total, bytesOnDisk: p.bytes });
        } else if (p.event === 'file') {
          json.emit('file', { path: p.file, size: p.fileTotal, resumedFrom: p.resumedFrom ?? 0 });
        } else {
          json.emit('file-done', { path: p.file, size: p.fileTotal, filesDone: p.filesDone, filesTotal: p.filesTotal });
        }
        return;
      }
      if (p.event === 'start') {
        scale = byteScale(p.total);
        console.error(`${kind} ${repo}${revision ? `@${revision}` : ''}: ${p.filesTotal} files, ${(p.total / scale.div).toFixed(1)} ${scale.unit}${p.bytes ? ` (${(p.bytes / scale.div).toFixed(1)} already here)` : ''}`);
        bar = createProgress({ label: 'pull', total: Math.max(1, Math.round(p.total / scale.div)), unit: scale.unit, stream: process.stderr });
      }
      bar?.update(Math.round(p.bytes / scale.div), p.file ? { file: basename(p.file) } : undefined);
    };
    const r = await downloadRepo({ ...access, kind, files: values.file, cacheDir: values.cache, signal: ac.signal, onProgress });
    (bar as ProgressBar | null)?.stop();
    if (json) {
      json.emit('done', { dir: r.dir, repo: r.repo, kind: r.kind, revision: r.revision, commit: r.commit, files: r.files, skipped: r.skipped, bytesReceived: r.bytesReceived });
    } else {
      for (const s of r.skipped.filter((x) => x.pickle)) console.error(`note: skipped ${s.path}: ${s.reason}`);
      const others = r.skipped.filter((x) => !x.pickle).length;
      if (others) console.error(`note: ${others} other file(s) of the repository are not needed and were not downloaded`);
      console.error(`${r.files.length} files at commit ${r.commit.slice(0, 10)}, ${r.files.filter((f) => f.cached).length} already in the cache`);
      console.log(r.dir);
    }
    return 0;
  } catch (e) {
    (bar as ProgressBar | null)?.stop();
    if (!(e instanceof HubError)) return reportError('pull', e);
    if (json) json.emit('error', { code: e.code, message: e.message, hint: e.hint });
    else console.error(`finch pull: ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`);
    return e.code === 'cancelled' ? 130 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
