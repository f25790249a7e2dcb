// `finch push`: uploads a LoRA adapter, a merged model or a GGUF file to the Hugging Face Hub with a
// model card, as one commit of a repository that stays private until every file is there; prints
// the repository's address. Progress bars (hashing, uploading) on a terminal, JSON lines with --json.

import { basename } from 'node:path';
import { HubError, type PushKind, type UploadPhase, type UploadProgress, hubToken, planPush, pushToHub } from '../../hub/index.js';
import { parseCommand, usageError } from '../args.js';
import { reportError } from '../errors.js';
import { JsonLines, type ProgressBar, byteScale, createProgress } from '../progress.js';

const USAGE = `Usage: finch push --repo USER/NAME (--adapter DIR | --merged DIR | --gguf FILE) [options]

Uploads a LoRA adapter, a merged model or a GGUF file to the Hugging Face Hub with a model card
(README.md: base model, dataset, method, settings, final losses) as one commit. A new repository
stays private until every file is there, then turns public (unless --private): a failed push
publishes nothing, and the same command run again continues where it stopped (large files already
uploaded are not sent again). An existing repository is updated and keeps its visibility.

  --repo USER/NAME   the repository (USER: your account or an organization where you may write)
  --adapter DIR      a PEFT adapter folder: a run folder of \`finch train\` (its checkpoints stay home)
  --merged DIR       a merged model folder (\`finch merge --out\`)
  --gguf FILE        a GGUF file (\`finch export gguf\`)
  --private          keep the repository private
  --run DIR          the run whose settings and losses the card shows (default: the adapter folder
                     when it is a run folder)
  --base-model ID    the base model's Hub id, for the card and adapter_config.json (default: from the
                     run or the adapter when it came from the Hub)
  --dataset ID       the dataset's Hub id, for the card (default: from the run, when it came from the Hub)
  --token T          a token with write access (default: $HF_TOKEN, else the one in Finch's Settings)
  --endpoint URL     the Hub's address (default: $HF_ENDPOINT or https://huggingface.co)
  --dry-run          print the files and the model card; upload nothing
  --json             one JSON object per line: start, phase, progress, done or error

Examples:
  finch push --repo alice/qwen-math-lora --adapter ~/.finch/runs/2026-12-01T10-00-00-math
  finch push --repo alice/qwen-math --merged ./merged --run ~/.finch/runs/2026-12-01T10-00-00-math
  finch push --repo alice/qwen-math-GGUF --gguf ./qwen-math-q8_0.gguf --base-model Qwen/Qwen2.5-0.5B-Instruct --private`;

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const mb = (n: number): string => (n / 1e6).toFixed(1);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('push', argv, {
    repo: { type: 'string' }, adapter: { type: 'string' }, merged: { type: 'string' }, gguf: { type: 'string' }, private: { type: 'boolean', default: false },
    run: { type: 'string' }, 'base-model': { type: 'string' }, dataset: { type: 'string' }, token: { type: 'string' }, endpoint: { type: 'string' },
    'dry-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const { values } = parsed;
  if (!values.repo) return usageError('push', 'which repository? (--repo USER/NAME)', USAGE);
  const given = (['adapter', 'merged', 'gguf'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) return usageError('push', given.length ? `one of --adapter, --merged, --gguf at a time, got ${given.map((k) => `--${k}`).join(' and ')}` : 'what to push? (--adapter DIR, --merged DIR or --gguf FILE)', USAGE);
  for (const flag of ['base-model', 'dataset'] as const) {
    const id = values[flag];
    if (id !== undefined && !HUB_ID.test(id)) return usageError('push', `--${flag} takes a Hub id like owner/name, got "${id}"`, USAGE);
  }
  const kind: PushKind = given[0]!;
  const json = values.json ? new JsonLines(process.stdout) : null;
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let bar: ProgressBar | null = null;
  try {
    const o = {
      kind, path: values[kind]!, repo: values.repo, runDir: values.run, private: values.private,
      token: await hubToken(values.token, undefined, (why) => console.error(`note: ${why}; pushing without it`)), endpoint: values.endpoint, signal: ac.signal,
      facts: { ...(values['base-model'] ? { baseModel: values['base-model'] } : {}), ...(values.dataset ? { datasets: [values.dataset] } : {}) },
    };
    const plan = planPush(o);
    if (values['dry-run']) {
      if (json) json.emit('plan', { repo: values.repo, kind, files: plan.files.map((f) => f.path), skipped: plan.skipped, card: plan.card });
      else {
        console.error(`would push to ${values.repo}: ${plan.files.map((f) => f.path).join(', ')}`);
        for (const s of plan.skipped) console.error(`note: ${s.path} stays home: ${s.reason}`);
        process.stdout.write(plan.card);
      }
      return 0;
    }
    if (json) json.emit('start', { repo: values.repo, kind, private: values.private, files: plan.files.map((f) => f.path), skipped: plan.skipped });
    else {
      console.error(`${kind === 'adapter' ? 'adapter' : kind === 'merged' ? 'merged model' : 'GGUF file'} -> ${values.repo}: ${plan.files.length} files${values.private ? ' (private)' : ''}`);
      for (const s of plan.skipped) console.error(`note: ${s.path} stays home: ${s.reason}`);
    }
    let phase: UploadPhase | null = null;
    let lastJson = 0;
    let scale = byteScale(0);
    const onProgress = (p: UploadProgress) => {
      if (p.phase !== phase) {
        bar?.stop();
        bar = null;
        phase = p.phase;
        if (json) json.emit('phase', { phase: p.phase });
        else if (p.phase === 'hashing' || p.phase === 'uploading') {
          scale = byteScale(p.total);
          bar = createProgress({ label: p.phase === 'hashing' ? 'hash' : 'upload', total: Math.max(1, Math.round(p.total / scale.div)), unit: scale.unit, stream: process.stderr });
        }
        else console.error(p.phase === 'creating' ? 'creating the repository (private until complete)' : p.phase === 'committing' ? 'committing' : 'making it public');
      }
      if (json) {
        const t = performance.now();
        if (p.total === 0 || (t - lastJson < 100 && p.done < p.total)) return; // at most ~10 lines a second
        lastJson = t;
        json.emit('progress', { phase: p.phase, file: p.file ?? null, done: p.done, total: p.total });
      } else {
        bar?.update(Math.round(p.done / scale.div), p.file ? { file: basename(p.file) } : undefined);
      }
    };
    const r = await pushToHub({ ...o, onProgress }, plan);
    (bar as ProgressBar | null)?.stop();
    if (json) {
      const { card: _card, ...rest } = r;
      json.emit('done', rest);
    } else {
      if (r.alreadyStored.length) console.error(`note: ${r.alreadyStored.join(', ')} ${r.alreadyStored.length === 1 ? 'was' : 'were'} on the Hub already and not sent again`);
      console.error(`${r.files.length} files in commit ${r.commit.slice(0, 10)} (${mb(r.bytesSent)} MB sent); ${r.private ? `private${values.private ? '' : ' (it existed before and keeps its visibility)'}` : 'public'}`);
      console.log(r.url);
    }
    return 0;
  } catch (e) {
    (bar as ProgressBar | null)?.stop();
    if (!(e instanceof HubError)) return reportError('push', e);
    if (json) json.emit('error', { code: e.code, message: e.message, hint: e.hint });
    else console.error(`finch push: ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`);
    return e.code === 'cancelled' ? 130 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
