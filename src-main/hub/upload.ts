// Uploading files to a Hugging Face model repository through @huggingface/hub, atomic and
// resumable from the user's point of view:
//   1. the repository is created private (POST /api/repos/create); one that exists (409) is updated
//      in place and keeps its visibility;
//   2. one commit carries every file: preupload sorts small from large files, the LFS batch says
//      where each large file goes (nowhere when the Hub stores it already), the large files are
//      PUT to storage (in parts above the Hub's multipart threshold), and one POST .../commit/main
//      names them all, so the repository shows either none of this push's files or all of them;
//   3. the repository is made public (PUT /api/models/{repo}/settings {"visibility": "public"}, as
//      huggingface_hub's update_repo_settings sends it), when that was asked.
// A push that fails leaves at most a private repository without this push's files, which nobody
// else sees. Running it again continues: the LFS batch answers "stored" for the large files sent
// before, so only the rest travel. A journal (FINCH_HOME/push/<owner>/<name>.json) remembers that
// the repository was created private on its way to public, and the commit once it is made. Within
// one push a cut connection or a 5xx answer is retried (the whole commit, which skips what is stored).
//
// Files travel over Git LFS (useXet: false), the protocol the tests check against a fake Hub that
// answers as huggingface.co does, and the one huggingface_hub itself falls back to without hf_xet;
// Xet's deduplicating upload (CAS xorbs and shards) is not used.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HubApiError, commitIter, createRepo, modelInfo, type CommitOperation, type CommitOutput } from '@huggingface/hub';
import { finchHome } from '../store/paths.js';
import { HubError } from './errors.js';
import { isSafeRelativePath } from './files.js';
import { delay, serverMessage } from './http.js';

const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface UploadFile {
  /** The path in the repository ("adapter_config.json"). */
  path: string;
  /** A local file, or the bytes themselves (the model card). */
  source: string | Uint8Array;
}

export interface UploadOptions {
  /** "owner/name": the account or organization, and the repository's name. */
  repo: string;
  files: UploadFile[];
  /** Keep the repository private (default: public once every file is there). */
  private?: boolean;
  /** The commit's title and description. */
  title: string;
  description?: string;
  /** A token with write access (hub/token.ts hubToken() finds the user's). */
  token?: string;
  /** The Hub's address; default HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  signal?: AbortSignal;
  /** Retries of the commit after a cut connection, a 5xx or a 429 (default 3; 0 = fail at the first). */
  retries?: number;
  onProgress?: (p: UploadProgress) => void;
}

export type UploadPhase = 'creating' | 'hashing' | 'uploading' | 'committing' | 'publishing';

export interface UploadProgress {
  phase: UploadPhase;
  /** The file the bytes belong to ('hashing', 'uploading'). */
  file?: string;
  /**
   * 'hashing': bytes of the large files hashed (LFS names a file by its sha256); 'uploading' and
   * 'committing': bytes of the large files sent or found stored already, of all files once the
   * commit is made (the small ones travel in it). 0 for the other phases.
   */
  done: number;
  total: number;
}

export interface UploadResult {
  repo: string;
  /** The repository's page. */
  url: string;
  commit: string;
  commitUrl: string;
  /** This push (or an earlier, failed run of it) created the repository. */
  created: boolean;
  private: boolean;
  files: { path: string; bytes: number; lfs: boolean }[];
  /** Bytes of large files sent to storage by this call: less than their total when a push resumed. */
  bytesSent: number;
  /** Large files the Hub stored already (sent by an earlier run, or unchanged): not sent again. */
  alreadyStored: string[];
}

// "owner/name" as the Hub allows them (96 characters at most for the name).
const PUSH_REPO_ID = /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/;
const RETRYABLE = new Set(['network', 'rate_limited']);
export const WRITE_TOKEN_HINT = 'create a token with write access at https://huggingface.co/settings/tokens (a fine-grained token needs "write" on the namespace) and put it in the HF_TOKEN environment variable, in Finch\'s Settings, or pass --token';

/** The calls of one push, for messages and error mapping. */
type Step = 'create' | 'info' | 'preupload' | 'lfs-batch' | 'lfs-upload' | 'commit' | 'settings';
const DOING: Record<Step, string> = {
  create: 'creating the repository', info: 'reading the repository\'s settings', preupload: 'preparing the upload',
  'lfs-batch': 'asking where the large files go', 'lfs-upload': 'uploading', commit: 'the commit', settings: 'making the repository public',
};

interface Push {
  repo: string;
  endpoint: string;
  token: string;
  signal: AbortSignal | undefined;
  /** Paths the preupload answer sent to LFS. */
  lfs: Set<string>;
  /** Bytes read into request bodies per path, this attempt and in all. */
  sent: Map<string, number>;
  sentEver: Map<string, number>;
  onSent: (path: string) => void;
}

interface Journal {
  endpoint: string;
  repo: string;
  /** Created private by Finch: to be made public once the commit is there. */
  publish: boolean;
  /** The commit of these very files, once made (a later run only publishes), and which went to LFS. */
  committed?: { fingerprint: string; commit: string; commitUrl: string; lfs: string[] };
}

/** Repositories this process is pushing to now. */
const pushing = new Set<string>();

/** Uploads `files` to a model repository as one commit; see the top of this file. */
export async function uploadToRepo(o: UploadOptions): Promise<UploadResult> {
  const p = checkUpload(o);
  const key = `${p.endpoint} ${p.repo}`;
  if (pushing.has(key)) throw new HubError('busy', `a push to ${p.repo} is already running`, 'wait for it to finish, or cancel it');
  pushing.add(key);
  try {
    return await upload(o, p);
  } finally {
    pushing.delete(key);
  }
}

function checkUpload(o: UploadOptions): Push {
  if (!PUSH_REPO_ID.test(o.repo) || o.repo.includes('..')) {
    throw new HubError('bad_request', `"${o.repo}" is not a repository id to push to`, 'write it as USER/NAME (or ORGANIZATION/NAME): letters, digits, "-", "_" and "."');
  }
  if (!o.token) throw new HubError('unauthorized', `pushing to ${o.repo} needs a Hugging Face token with write access`, WRITE_TOKEN_HINT);
  if (!/^hf_\w+$/.test(o.token)) throw new HubError('bad_request', 'the Hugging Face token does not look like one (tokens start with "hf_")', 'copy it again from https://huggingface.co/settings/tokens');
  if (!o.files.length) throw new HubError('bad_request', `nothing to push to ${o.repo}`, '');
  const seen = new Set<string>();
  for (const f of o.files) {
    if (!isSafeRelativePath(f.path)) throw new HubError('bad_request', `"${f.path}" is not a path inside a repository`, '');
    if (seen.has(f.path)) throw new HubError('bad_request', `${f.path} is pushed twice`, '');
    seen.add(f.path);
  }
  const endpoint = (o.endpoint || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  return { repo: o.repo, endpoint, token: o.token, signal: o.signal, lfs: new Set(), sent: new Map(), sentEver: new Map(), onSent: () => undefined };
}

async function upload(o: UploadOptions, p: Push): Promise<UploadResult> {
  const files = o.files.map((f) => ({ ...f, size: typeof f.source === 'string' ? statSync(f.source).size : f.source.byteLength }));
  const total = files.reduce((a, f) => a + f.size, 0);
  const sizeOf = new Map(files.map((f) => [f.path, f.size]));
  const emit = (phase: UploadPhase, done = 0, of = 0, file?: string) => o.onProgress?.({ phase, ...(file ? { file } : {}), done, total: of });
  const fetchFn = pushFetch(p);
  const access = { accessToken: p.token, hubUrl: p.endpoint, fetch: fetchFn };
  const repo = { type: 'model' as const, name: p.repo };
  const page = `${p.endpoint}/${p.repo}`;

  // 1. The repository: created private, or the one that exists. The journal is written before the
  //    repository exists, so a push stopped at any point finds it on the next run.
  emit('creating');
  const earlier = readJournal(p);
  if (!o.private && !earlier) writeJournal(p, { endpoint: p.endpoint, repo: p.repo, publish: true });
  let created: boolean, isPrivate: boolean;
  try {
    await createRepo({ repo, private: true, ...access });
    created = isPrivate = true;
  } catch (e) {
    if (!earlier) removeJournal(p); // the repository existed before this push, or could not be made
    if (!(e instanceof HubApiError && e.statusCode === 409)) throw toHubError(e, 'create', p);
    isPrivate = (await modelInfo({ name: p.repo, ...access }).catch((err: unknown) => { throw toHubError(err, 'info', p); })).private;
    created = earlier !== null && isPrivate;
  }
  if (o.private && !isPrivate) {
    throw new HubError('conflict', `${p.repo} exists and is public: pushing with "private" would publish these files`, `make it private first (${page}/settings), or push to a new name`);
  }
  // Public at the end only a repository this push made private on the way; an existing one keeps its visibility.
  const publish = !o.private && created;
  const journal: Journal = { endpoint: p.endpoint, repo: p.repo, publish, ...(earlier?.committed ? { committed: earlier.committed } : {}) };
  if (publish) writeJournal(p, journal);
  else removeJournal(p);
  const stateNote = created
    ? `nothing of this push is public: ${p.repo} stays private until every file is there; run the same push again to continue (large files already uploaded are not sent again)`
    : `${p.repo} is unchanged (one commit carries every file); run the push again to continue (large files already uploaded are not sent again)`;

  // 2. One commit with every file, retried as a whole (stored files are skipped on the next try).
  const fingerprint = fingerprintOf(files);
  const completed = new Set<string>(), alreadyStored = new Set<string>(), hashed = new Map<string, number>();
  let bytesSent = 0;
  const lfsTotal = () => [...p.lfs].reduce((a, path) => a + (sizeOf.get(path) ?? 0), 0);
  const uploadedBytes = () => [...p.lfs].reduce((a, path) => a + (completed.has(path) ? sizeOf.get(path)! : Math.min(sizeOf.get(path)!, p.sent.get(path) ?? 0)), 0);
  p.onSent = (path) => {
    bytesSent = [...p.sentEver.values()].reduce((a, b) => a + b, 0);
    emit('uploading', uploadedBytes(), total, path);
  };
  let commit: { commit: string; commitUrl: string };
  if (journal.committed?.fingerprint === fingerprint) {
    // An earlier run committed these files and stopped before publishing.
    commit = { commit: journal.committed.commit, commitUrl: journal.committed.commitUrl };
    for (const path of journal.committed.lfs) p.lfs.add(path);
  } else {
    const operations: CommitOperation[] = files.map((f) => ({
      operation: 'addOrUpdate', path: f.path, content: typeof f.source === 'string' ? pathToFileURL(f.source) : new Blob([Uint8Array.from(f.source)]),
    }));
    const once = async (): Promise<CommitOutput> => {
      p.sent.clear();
      const it = commitIter({ repo, operations, title: o.title, description: o.description, ...access, abortSignal: o.signal, useXet: false });
      for (let r = await it.next(); ; r = await it.next()) {
        if (r.done) {
          if (!r.value) throw new HubError('network', `the Hub gave no commit for ${p.repo}`, 'run the push again');
          return r.value;
        }
        const ev = r.value;
        if (ev.event === 'phase') {
          if (ev.phase === 'committing') emit('committing', uploadedBytes(), total);
        } else if (ev.state === 'hashing') {
          hashed.set(ev.path, ev.progress * (sizeOf.get(ev.path) ?? 0));
          emit('hashing', [...hashed.values()].reduce((a, b) => a + b, 0), lfsTotal(), ev.path);
        } else if (ev.state === 'uploading' && ev.progress >= 1 && p.lfs.has(ev.path) && !completed.has(ev.path)) {
          completed.add(ev.path);
          if (!p.sentEver.get(ev.path)) alreadyStored.add(ev.path); // the LFS batch asked for no upload
          emit('uploading', uploadedBytes(), total, ev.path);
        }
      }
    };
    const out = await withRetries(once, 'commit', p, o.retries ?? 3).catch((e: HubError) => { throw withHint(e, stateNote); });
    commit = { commit: out.commit.oid, commitUrl: out.commit.url };
    if (publish) writeJournal(p, { ...journal, committed: { fingerprint, ...commit, lfs: [...p.lfs] } });
  }
  emit('committing', total, total);

  // 3. Public, when asked (and only for a repository this push created).
  if (publish) {
    emit('publishing');
    await withRetries(async () => {
      await fetchFn(`${p.endpoint}/api/models/${p.repo}/settings`, {
        method: 'PUT', headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ visibility: 'public' }), signal: o.signal,
      });
    }, 'settings', p, o.retries ?? 3).catch((e: HubError) => {
      throw withHint(e, `every file is in ${p.repo}, which is still private; run the push again to make it public, or change it on ${page}/settings`);
    });
    removeJournal(p);
  }
  return {
    repo: p.repo, url: page, ...commit, created, private: !publish && isPrivate,
    files: files.map((f) => ({ path: f.path, bytes: f.size, lfs: p.lfs.has(f.path) })), bytesSent, alreadyStored: [...alreadyStored],
  };
}

/** Runs `call`, again after a retryable failure (with a growing pause), up to `retries` more times. */
async function withRetries<T>(call: () => Promise<T>, step: Step, p: Push, retries: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      const err = toHubError(e, step, p);
      if (!RETRYABLE.has(err.code) || attempt >= retries || p.signal?.aborted) throw err;
      await delay(500 * 2 ** attempt, p.signal).catch(() => undefined); // a cancel surfaces from the next try
    }
  }
}

const withHint = (e: HubError, note: string): HubError => {
  if (e.code !== 'cancelled' && e.code !== 'network' && e.code !== 'rate_limited') return e;
  return new HubError(e.code, e.message, e.hint ? `${e.hint}; ${note}` : note, { cause: e.cause });
};

/** Paths, sizes and modification times (bytes: their hash): the same files give the same fingerprint. */
function fingerprintOf(files: readonly (UploadFile & { size: number })[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f.path}\0${f.size}\0`);
    h.update(typeof f.source === 'string' ? String(statSync(f.source).mtimeMs) : createHash('sha256').update(f.source).digest('hex'));
    h.update('\n');
  }
  return h.digest('hex');
}

// ---- HTTP: @huggingface/hub's requests through one fetch ----------------------------------------

/** A Blob that reports the bytes read from it: fetch reads a request body as it sends it. */
class CountingBlob extends Blob {
  constructor(private readonly inner: Blob, private readonly onBytes: (n: number) => void) {
    super();
  }
  override get size(): number {
    return this.inner.size;
  }
  override get type(): string {
    return this.inner.type;
  }
  override slice(start?: number, end?: number, type?: string): Blob {
    return this.inner.slice(start, end, type);
  }
  override arrayBuffer(): Promise<ArrayBuffer> {
    return this.inner.arrayBuffer();
  }
  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const onBytes = this.onBytes;
    return this.inner.stream().pipeThrough(new TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>>({
      transform(chunk, out) {
        onBytes(chunk.byteLength);
        out.enqueue(chunk);
      },
    }));
  }
}

const stepOf = (url: string, endpoint: string): Step => {
  if (!url.startsWith(`${endpoint}/`)) return 'lfs-upload'; // storage on another origin (presigned PUTs)
  const path = new URL(url).pathname;
  if (path === '/api/repos/create') return 'create';
  if (/^\/api\/models\/[^/]+\/[^/]+\/preupload\//.test(path)) return 'preupload';
  if (path.endsWith('.git/info/lfs/objects/batch')) return 'lfs-batch';
  if (/^\/api\/models\/[^/]+\/[^/]+\/commit\//.test(path)) return 'commit';
  if (/^\/api\/models\/[^/]+\/[^/]+\/settings$/.test(path)) return 'settings';
  if (path.startsWith('/api/models/')) return 'info';
  return 'lfs-upload'; // the multipart completion, on the Hub's origin
};

/**
 * The fetch @huggingface/hub gets: counts the bytes of large-file bodies (the library marks them
 * with a progressHint), learns which files go to LFS from the preupload answer, and turns every
 * failure into a HubError that names the step (a 409 to the create call means "exists": passed on).
 */
function pushFetch(p: Push): typeof fetch {
  return async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input);
    const step = stepOf(url, p.endpoint);
    const path = (init as { progressHint?: { path?: string } }).progressHint?.path;
    const body = path && init.body instanceof Blob
      ? new CountingBlob(init.body, (n) => {
        p.sent.set(path, (p.sent.get(path) ?? 0) + n);
        p.sentEver.set(path, (p.sentEver.get(path) ?? 0) + n);
        p.onSent(path);
      })
      : init.body;
    let res: Response;
    try {
      res = await fetch(input, { ...init, body });
    } catch (e) {
      throw thrownError(e, step, p, path);
    }
    if (step === 'create' && res.status === 409) return res;
    if (!res.ok) throw await answerError(res, step, p, path);
    if (step === 'preupload') {
      const json = await res.clone().json() as { files?: { path: string; uploadMode?: string }[] };
      for (const f of json.files ?? []) if (f.uploadMode === 'lfs') p.lfs.add(f.path);
    }
    return res;
  };
}

function thrownError(e: unknown, step: Step, p: Push, file: string | undefined): HubError {
  if (e instanceof HubError) return e;
  if (p.signal?.aborted) return new HubError('cancelled', `the push to ${p.repo} was cancelled`, '', { cause: e });
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const detail = err.cause?.code ?? err.cause?.message ?? err.message;
  return new HubError('network', `the connection was cut while ${DOING[step]}${file ? ` (${file})` : ''} for ${p.repo}: ${detail}`,
    'check the network connection (and HF_ENDPOINT if set)', { cause: e });
}

async function answerError(res: Response, step: Step, p: Push, file: string | undefined): Promise<HubError> {
  const said = await serverMessage(res).then((m) => (m ? ` (the Hub says: ${m})` : ''));
  if (step === 'lfs-upload') {
    return new HubError(res.status === 429 ? 'rate_limited' : 'network', `the Hub's storage answered ${res.status} while uploading ${file ?? 'a large file'} for ${p.repo}${said}`, '');
  }
  return statusError(res.status, step, p, said);
}

function statusError(status: number, step: Step, p: Push, said: string): HubError {
  const owner = p.repo.split('/')[0];
  if (status === 401) return new HubError('unauthorized', `the Hub did not accept the token (${DOING[step]} for ${p.repo}): it is invalid or expired${said}`, WRITE_TOKEN_HINT);
  if (status === 403) {
    return new HubError('forbidden', `the token may not write to ${p.repo}${said}`,
      `"${owner}" must be the token's account or an organization where it may write; ${WRITE_TOKEN_HINT}`);
  }
  if (status === 404) return new HubError('not_found', `model ${p.repo} does not exist on ${p.endpoint}, or the token cannot see it${said}`, 'check the repository id');
  if (status === 409 || status === 412) return new HubError('conflict', `${p.repo} changed during ${DOING[step]}${said}`, 'run the push again');
  if (status === 429) return new HubError('rate_limited', `the Hub is rate-limiting ${DOING[step]} for ${p.repo}${said}`, 'wait a few minutes and run the push again');
  if (status >= 500) return new HubError('network', `the Hub answered ${status} to ${DOING[step]} for ${p.repo}${said}`, 'the Hub may be unavailable; try again later');
  return new HubError('bad_request', `the Hub refused ${DOING[step]} for ${p.repo} (${status})${said}`, '');
}

/** A HubError for whatever @huggingface/hub threw (its HubApiError carries the status and the Hub's words). */
function toHubError(e: unknown, step: Step, p: Push): HubError {
  if (e instanceof HubError) return e;
  if (e instanceof HubApiError) return statusError(e.statusCode, step, p, ` (${e.message})`);
  return thrownError(e, step, p, undefined);
}

// ---- the journal ------------------------------------------------------------------------------------

const journalFile = (p: Push): string => {
  const [owner, name] = p.repo.split('/');
  return join(finchHome(), 'push', owner!, `${name}.json`);
};

function readJournal(p: Push): Journal | null {
  try {
    const j = JSON.parse(readFileSync(journalFile(p), 'utf8')) as Journal;
    return j.endpoint === p.endpoint && j.repo === p.repo ? j : null;
  } catch {
    return null;
  }
}

function writeJournal(p: Push, j: Journal): void {
  const file = journalFile(p);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(j, null, 2));
  renameSync(`${file}.tmp`, file);
}

function removeJournal(p: Push): void {
  rmSync(journalFile(p), { force: true });
}
