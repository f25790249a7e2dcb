// A local stand-in for huggingface.co on 127.0.0.1, serving the endpoints Finch's hub module uses,
// answering as the real Hub does (read from @huggingface/hub's and huggingface_hub's clients):
//   GET /api/{models|datasets}/{repo}/revision/{rev}       info JSON with "sha" and "private"
//   GET /api/{models|datasets}/{repo}/tree/{rev}?recursive  [{type, oid, size, path, lfs?}]
//   GET /{repo}/resolve/{rev}/{path}, /datasets/{repo}/resolve/...
//       small files: 200/206 with ETag (git blob id) and X-Repo-Commit;
//       LFS files: 302 to a CDN (a second server: another origin) with X-Linked-Etag / X-Linked-Size;
//       the CDN serves Range. Requests to it are recorded as /cdn/<sha256>.
// A repository may have other branches with their own commit (refs/convert/parquet, the Hub's
// Parquet conversion of a dataset). Errors carry X-Error-Code (GatedRepo, RepoNotFound,
// RevisionNotFound, EntryNotFound) and a JSON {"error": ...} body. Faults for tests: cut the
// connection after N bytes of a file (stall, then cut) or before any answer, ignore Range,
// corrupt a byte.
//
// Uploads, the calls @huggingface/hub's createRepo and commit make (lib/create-repo.ts, commit.ts)
// with useXet false, answered as the Hub answers them:
//   POST /api/repos/create {name, organization, type, visibility}  {url, name, id}; 409 when it exists,
//       403 outside the token's namespaces; a new repository holds the Hub's default .gitattributes
//   POST /api/models/{repo}/preupload/{rev} {files: [{path, size, sample}]}  uploadMode per file:
//       "lfs" for .gitattributes patterns, 10 MB and more, or a sample with a NUL byte
//   POST /{repo}.git/info/lfs/objects/batch (Git LFS batch API)  transfer "basic": per object an
//       upload action (none when this repository stores it already): a presigned PUT on the storage
//       origin, or above `multipartThreshold` a multipart upload (header chunk_size and one URL per
//       part, href the completion on the Hub); the storage checks Content-Length, size and sha256
//   POST /api/models/{repo}/commit/{rev} (NDJSON: header, file, lfsFile, deletedFile)  one commit,
//       refused when an lfsFile is not in storage
//   PUT /api/models/{repo}/settings {visibility} (or {private}, as older clients send it)
// Tokens are users (addUser) with write access or not; private repositories answer RepoNotFound to
// others. Upload faults: a one-shot answer or hang-up per step (`faults`), and a storage PUT held
// after N bytes until cutHeld() (a connection cut mid-upload).

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  kind: 'model' | 'dataset';
  id: string; // owner/name
  files: Map<string, Buffer>; // path -> content, at the one commit `sha`
  sha: string;
  /** Other names of the commit (branches, tags); "main" always. */
  refs?: string[];
  /** Gated: files need a token in `grantedTokens`. */
  gated?: boolean;
  /** Other branches with their own commit and files ("refs/convert/parquet": the Hub's Parquet conversion). */
  branches?: Record<string, { sha: string; files: Map<string, Buffer> }>;
  /** Visible to its owner's tokens only. */
  private?: boolean;
  /** The namespace (user or organization) of a repository created through the API. */
  owner?: string;
  /** Files committed as LFS files (default: by extension, as the fixtures are). */
  lfsPaths?: Set<string>;
  /** sha256 of the LFS objects in this repository's storage. */
  stored?: Set<string>;
  /** Commits made through the API, oldest first, with the repository's visibility when each was made. */
  commits?: { oid: string; title: string; paths: string[]; private: boolean }[];
}

/** A token's account: its name, organizations, and whether it may write. */
export interface FakeUser {
  name: string;
  write: boolean;
  orgs: string[];
}

/** The upload calls, for one-shot faults. */
export type UploadStep = 'create' | 'preupload' | 'lfs-batch' | 'lfs-upload' | 'commit' | 'settings';
/** A one-shot fault: an error answer, or the connection closed with no answer (after the request body). */
export type Fault = 'hang-up' | { status: number; message: string; code?: string };

/** The Hub's .gitattributes of a new repository (the LFS part of it). */
export const DEFAULT_GITATTRIBUTES = ['*.7z', '*.arrow', '*.bin', '*.ckpt', '*.h5', '*.npy', '*.onnx', '*.parquet', '*.pkl', '*.pt', '*.pth',
  '*.safetensors', '*.tar', '*.zip', '*.zst'].map((p) => `${p} filter=lfs diff=lfs merge=lfs -text`).join('\n') + '\n';

export interface RecordedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

const isLfs = (path: string) => /\.(safetensors|parquet|bin)$/.test(path);
const lfsIn = (repo: FakeRepo, path: string) => repo.lfsPaths ? repo.lfsPaths.has(path) : isLfs(path);
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  readonly grantedTokens = new Set<string>();
  readonly validTokens = new Set<string>();
  /** Paths whose next request gets no answer at all: the connection is closed (one-shot). */
  readonly hangUpOnce = new Set<string>();
  /** Paths whose Range requests are answered with the whole file (200), as some proxies do. */
  readonly ignoreRange = new Set<string>();
  /** Paths served with one byte changed (what a broken proxy or disk would do). */
  readonly corrupt = new Set<string>();
  /** path -> bytes after which responses stall (headers and some data sent, then nothing). */
  readonly stallAfter = new Map<string, number>();
  private readonly stalled = new Set<ServerResponse>();
  /** Token -> account (addUser); tokens only in validTokens are accounts that may write nowhere. */
  readonly users = new Map<string, FakeUser>();
  /** One-shot faults of the upload calls. */
  readonly faults = new Map<UploadStep, Fault>();
  /** sha256 -> bytes after which a storage PUT of that object is held (no reading, no answer) until cutHeld(). */
  readonly holdUploadAfter = new Map<string, number>();
  /** Large files at least this size get a multipart upload, in parts of `partSize` (the Hub: far larger). */
  multipartThreshold = 4 * 1024 * 1024;
  partSize = 1024 * 1024;
  /** Storage PUTs: the object (sha256), the part (null: a whole-object PUT), bytes received. */
  readonly puts: { oid: string; part: number | null; bytes: number }[] = [];
  private readonly held = new Set<IncomingMessage>();
  /** Objects stored, in order (sha256). */
  readonly stores: string[] = [];
  private readonly multiparts = new Map<string, { repo: FakeRepo; oid: string; size: number; parts: Map<number, Buffer> }>();
  private readonly repos = new Map<string, FakeRepo>();
  private readonly claimedSizes = new Map<string, number>(); // "repo:path" -> size the listing claims
  private readonly blobs = new Map<string, Buffer>(); // sha256 -> content (the "CDN")
  private server: Server | null = null;
  private cdn: Server | null = null; // another origin, as the real Hub's CDN is
  url = '';
  cdnUrl = '';

  add(repo: FakeRepo): FakeRepo {
    this.repos.set(`${repo.kind}:${repo.id}`, repo);
    for (const files of [repo.files, ...Object.values(repo.branches ?? {}).map((b) => b.files)]) {
      for (const [path, b] of files) if (isLfs(path)) this.blobs.set(sha256(b), b);
    }
    return repo;
  }

  /** A token of account `name` (with write access unless `write: false`), member of `orgs`. */
  addUser(token: string, name: string, o: { write?: boolean; orgs?: string[] } = {}): void {
    this.validTokens.add(token);
    this.users.set(token, { name, write: o.write ?? true, orgs: o.orgs ?? [] });
  }

  /** A repository by id, as it is now (tests read pushed files and commits from it). */
  repo(id: string, kind: FakeRepo['kind'] = 'model'): FakeRepo | undefined {
    return this.repos.get(`${kind}:${id}`);
  }

  /** How many times an object was stored (a whole PUT or a multipart completion). */
  timesStored(oid: string): number {
    return this.stores.filter((o) => o === oid).length;
  }

  /** Storage PUTs held now (holdUploadAfter). */
  get heldUploads(): number {
    return this.held.size;
  }

  /** Cuts the connections of held storage PUTs, as a network failure mid-upload would. */
  cutHeld(): void {
    for (const req of this.held) req.socket.destroy();
    this.held.clear();
  }

  /** Makes the tree listing claim another size for a file (the disk-space check reads the listing). */
  claimSize(repoId: string, path: string, size: number): void {
    this.claimedSizes.set(`${repoId}:${path}`, size);
  }

  async start(): Promise<this> {
    const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    };
    ({ server: this.server, url: this.url } = await listen((req, res) => this.handle(req, res)));
    ({ server: this.cdn, url: this.cdnUrl } = await listen((req, res) => this.handleCdn(req, res)));
    return this;
  }

  async stop(): Promise<void> {
    for (const s of [this.server, this.cdn]) {
      s?.closeAllConnections();
      await new Promise<void>((resolve) => s?.close(() => resolve()));
    }
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({ method: req.method ?? '', url: `/cdn${req.url ?? ''}`, range: req.headers.range, authorization: req.headers.authorization });
    const url = new URL(req.url ?? '/', this.cdnUrl);
    if (req.method === 'PUT') return void this.handleStoragePut(req, res, url).catch((e: Error) => this.error(res, 500, null, e.message));
    const blob = this.blobs.get(url.pathname.slice(1));
    if (!blob) return this.error(res, 404, null, 'Not Found');
    this.sendBytes(req, res, blob, url.searchParams.get('path') ?? '', { etag: `"${url.pathname.slice(1)}"` });
  }

  /**
   * Cuts the connections of stalled responses mid-body, as a network failure would. Tests call it
   * once the client has written the stalled bytes, so the cut point is exact on a loaded machine
   * (a cut racing the client's reads would lose bytes it had received but not yet consumed).
   */
  cutStalled(): void {
    for (const res of this.stalled) res.socket?.destroy();
  }

  /** Requests for one file's bytes (resolve and CDN), in order. */
  fileRequests(path: string): RecordedRequest[] {
    const blob = [...this.repos.values()].map((r) => r.files.get(path)).find(Boolean);
    const cdn = blob && isLfs(path) ? `/cdn/${sha256(blob)}` : null;
    return this.requests.filter((r) => r.url.includes(`/resolve/`) ? r.url.endsWith(`/${path}`) : cdn !== null && r.url.startsWith(cdn));
  }

  private error(res: ServerResponse, status: number, code: string | null, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...(code ? { 'x-error-code': code } : {}) });
    res.end(JSON.stringify({ error: message }));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const auth = req.headers.authorization;
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', range: req.headers.range, authorization: auth });
    const url = new URL(req.url ?? '/', this.url);
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : null;
    if (token !== null && !this.validTokens.has(token)) return this.error(res, 401, null, 'Invalid credentials in Authorization header');
    if (req.method === 'POST' || req.method === 'PUT') {
      return void this.handleWrite(req, res, url, token).catch((e: Error) => this.error(res, 500, null, e.message));
    }

    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(revision|tree)\/([^/?]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const kind = api ? (api[1] === 'models' ? 'model' : 'dataset') : resolve ? (resolve[1] ? 'dataset' : 'model') : null;
    if (!kind) return this.error(res, 404, null, 'Not Found');
    const id = decodeURIComponent((api ?? resolve)![2]!);
    const rev = decodeURIComponent(api ? api[4]! : resolve![3]!);
    const repo = this.repos.get(`${kind}:${id}`);
    // The real Hub answers 401 for an unknown repository without a token (private ones stay hidden).
    if (!repo || !this.mayRead(token, repo)) return this.error(res, token ? 404 : 401, 'RepoNotFound', 'Repository not found');
    const branch = Object.entries(repo.branches ?? {}).find(([name, b]) => rev === name || rev === b.sha)?.[1];
    if (!branch && rev !== repo.sha && rev !== 'HEAD' && !['main', ...(repo.refs ?? [])].includes(rev)) {
      return this.error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    }
    const { sha, files } = branch ?? repo;
    if (api?.[3] === 'revision') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({
        _id: `id-${repo.id}`, id: repo.id, sha, private: repo.private ?? false, gated: repo.gated ? 'manual' : false,
        downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00.000Z', siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
      }));
    }
    if (api) {
      const entries: object[] = [];
      const dirs = new Set<string>();
      for (const [path, b] of files) {
        const parts = path.split('/');
        for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
        const size = this.claimedSizes.get(`${repo.id}:${path}`) ?? b.length;
        entries.push({ type: 'file', oid: gitOid(lfsIn(repo, path) ? Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${size}\n`) : b),
          size, path, ...(lfsIn(repo, path) ? { lfs: { oid: sha256(b), size, pointerSize: 130 } } : {}) });
      }
      for (const d of dirs) entries.push({ type: 'directory', oid: gitOid(Buffer.from(d)), size: 0, path: d });
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(entries));
    }
    const path = decodeURIComponent(resolve![4]!);
    if (repo.gated && (token === null || !this.grantedTokens.has(token))) {
      const what = `${kind === 'model' ? 'model' : 'dataset'} ${repo.id}`;
      return token === null
        ? this.error(res, 401, 'GatedRepo', `Access to ${what} is restricted. You must have access to it and be authenticated to access it. Please log in.`)
        : this.error(res, 403, 'GatedRepo', `Access to ${what} is restricted and you are not in the authorized list. Visit ${this.url}/${repo.id} to ask for access.`);
    }
    if (this.hangUpOnce.delete(path)) return void req.socket.destroy();
    const blob = files.get(path);
    if (!blob) return this.error(res, 404, 'EntryNotFound', 'Entry not found');
    if (lfsIn(repo, path)) {
      res.writeHead(302, {
        location: `${this.cdnUrl}/${sha256(blob)}?path=${encodeURIComponent(path)}`,
        'x-linked-etag': `"${sha256(blob)}"`, 'x-linked-size': String(blob.length), 'x-repo-commit': sha, etag: `"${gitOid(blob)}"`,
      });
      return void res.end();
    }
    this.sendBytes(req, res, blob, path, { etag: `"${gitOid(blob)}"`, 'x-repo-commit': sha });
  }

  /** 200, or 206 for `Range: bytes=N-` / `bytes=N-M`, or 416; applies the cut and stall faults. */
  private sendBytes(req: IncomingMessage, res: ServerResponse, blob: Buffer, path: string, headers: Record<string, string>): void {
    let start = 0, end = blob.length - 1;
    const range = this.ignoreRange.has(path) ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(Number(range[2]), end);
      if (start >= blob.length) {
        res.writeHead(416, { 'content-range': `bytes */${blob.length}` });
        return void res.end();
      }
    }
    const body = Buffer.from(blob.subarray(start, end + 1));
    if (this.corrupt.has(path) && body.length) body[body.length >> 1] = 255 - body[body.length >> 1]!;
    res.writeHead(range ? 206 : 200, {
      'content-type': 'application/octet-stream', 'content-length': String(body.length), 'accept-ranges': 'bytes', ...headers,
      ...(range ? { 'content-range': `bytes ${start}-${end}/${blob.length}` } : {}),
    });
    const stall = this.stallAfter.get(path);
    if (stall !== undefined) {
      res.write(body.subarray(0, stall)); // then nothing, until the client goes away or cutStalled()
      this.stalled.add(res);
      res.on('close', () => this.stalled.delete(res));
      return;
    }
    res.end(body);
  }

  // ---- uploads ------------------------------------------------------------------------------------

  private mayRead(token: string | null, repo: FakeRepo): boolean {
    return !repo.private || (token !== null && this.mayWrite(token, repo.owner ?? ''));
  }

  private mayWrite(token: string | null, namespace: string): boolean {
    const u = token === null ? undefined : this.users.get(token);
    return !!u && u.write && (u.name === namespace || u.orgs.includes(namespace));
  }

  /** Applies a one-shot fault of `step`, if one is set; true when it answered (or hung up). */
  private fault(step: UploadStep, req: IncomingMessage, res: ServerResponse): boolean {
    const f = this.faults.get(step);
    if (!f) return false;
    this.faults.delete(step);
    if (f === 'hang-up') req.socket.destroy();
    else this.error(res, f.status, f.code ?? null, f.message);
    return true;
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** A repository the token may write to, or the Hub's answer (404 when it may not even see it). */
  private writable(id: string, token: string | null, res: ServerResponse): FakeRepo | null {
    const repo = this.repos.get(`model:${id}`);
    if (!repo || !this.mayRead(token, repo)) {
      this.error(res, token ? 404 : 401, 'RepoNotFound', 'Repository not found');
      return null;
    }
    if (!this.mayWrite(token, repo.owner ?? id.split('/')[0]!)) {
      this.error(res, 403, null, `You don't have the rights to write to model ${id}`);
      return null;
    }
    return repo;
  }

  private json(res: ServerResponse, value: unknown, type = 'application/json'): void {
    res.writeHead(200, { 'content-type': type });
    res.end(JSON.stringify(value));
  }

  private async handleWrite(req: IncomingMessage, res: ServerResponse, url: URL, token: string | null): Promise<void> {
    const p = url.pathname;
    const body = await this.body(req);
    let m: RegExpExecArray | null;
    if (p === '/api/repos/create' && req.method === 'POST') return this.createRepo(req, res, token, body);
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/preupload\/([^/]+)$/.exec(p)) && req.method === 'POST') {
      if (this.fault('preupload', req, res)) return;
      const repo = this.writable(decodeURIComponent(m[1]!), token, res);
      if (!repo) return;
      const ask = JSON.parse(body.toString('utf8')) as { gitAttributes?: string; files: { path: string; size: number; sample: string }[] };
      const patterns = (ask.gitAttributes ?? repo.files.get('.gitattributes')?.toString('utf8') ?? '').split('\n')
        .filter((l) => /filter=lfs/.test(l)).map((l) => l.split(/\s+/)[0]!);
      const lfsByName = (path: string) => patterns.some((pat) => pat.startsWith('*.') && path.endsWith(pat.slice(1)));
      return this.json(res, {
        files: ask.files.map((f) => ({
          path: f.path, shouldIgnore: false,
          uploadMode: lfsByName(f.path) || f.size >= 10_000_000 || Buffer.from(f.sample, 'base64').includes(0) ? 'lfs' : 'regular',
        })),
      });
    }
    if ((m = /^\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/.exec(p)) && req.method === 'POST') {
      if (this.fault('lfs-batch', req, res)) return;
      const repo = this.writable(decodeURIComponent(m[1]!), token, res);
      if (!repo) return;
      if (!String(req.headers['content-type']).startsWith('application/vnd.git-lfs+json')) return this.error(res, 415, null, 'Git LFS batch requests are application/vnd.git-lfs+json');
      const ask = JSON.parse(body.toString('utf8')) as { operation: string; transfers?: string[]; objects: { oid: string; size: number }[] };
      if (ask.operation !== 'upload') return this.error(res, 400, null, 'only uploads here');
      const multipart = ask.transfers?.includes('multipart') ?? false;
      return this.json(res, {
        transfer: 'basic', // a repository without Xet: the answer to a client that also offers "xet"
        objects: ask.objects.map(({ oid, size }) => {
          if (repo.stored?.has(oid)) return { oid, size }; // stored already: no action
          if (multipart && size >= this.multipartThreshold) {
            const uploadId = createHash('sha1').update(`${repo.id}${oid}${Math.random()}`).digest('hex');
            this.multiparts.set(uploadId, { repo, oid, size, parts: new Map() });
            const header: Record<string, string> = { chunk_size: String(this.partSize) };
            for (let i = 1; i <= Math.ceil(size / this.partSize); i++) header[String(i).padStart(5, '0')] = `${this.cdnUrl}/part/${uploadId}/${i}`;
            return { oid, size, authenticated: true, actions: { upload: { href: `${this.url}/api/complete_multipart?uploadId=${uploadId}`, header, expires_in: 86400 } } };
          }
          return { oid, size, authenticated: true, actions: { upload: { href: `${this.cdnUrl}/upload/${encodeURIComponent(repo.id)}/${oid}?size=${size}`, expires_in: 86400 } } };
        }),
      }, 'application/vnd.git-lfs+json');
    }
    if (p === '/api/complete_multipart' && req.method === 'POST') {
      const up = this.multiparts.get(url.searchParams.get('uploadId') ?? '');
      if (!up) return this.error(res, 404, null, 'No such upload');
      const ask = JSON.parse(body.toString('utf8')) as { oid: string; parts: { partNumber: number; etag: string }[] };
      const parts: Buffer[] = [];
      for (let i = 1; i <= Math.ceil(up.size / this.partSize); i++) {
        const part = up.parts.get(i);
        const named = ask.parts.find((x) => x.partNumber === i);
        if (!part || !named || named.etag !== `"${createHash('md5').update(part).digest('hex')}"`) return this.error(res, 400, null, `part ${i} missing or its ETag differs`);
        parts.push(part);
      }
      const whole = Buffer.concat(parts);
      if (ask.oid !== up.oid || whole.length !== up.size || sha256(whole) !== up.oid) return this.error(res, 400, null, 'the parts do not make the object announced');
      this.multiparts.delete(url.searchParams.get('uploadId')!);
      this.store(up.repo, up.oid, whole);
      return this.json(res, {});
    }
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/commit\/([^/]+)$/.exec(p)) && req.method === 'POST') {
      if (this.fault('commit', req, res)) return;
      const repo = this.writable(decodeURIComponent(m[1]!), token, res);
      if (!repo) return;
      return this.commit(repo, body, res);
    }
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/settings$/.exec(p)) && req.method === 'PUT') {
      if (this.fault('settings', req, res)) return;
      const repo = this.writable(decodeURIComponent(m[1]!), token, res);
      if (!repo) return;
      const ask = JSON.parse(body.toString('utf8')) as { visibility?: string; private?: boolean };
      if (ask.visibility === 'public' || ask.visibility === 'private') repo.private = ask.visibility === 'private';
      else if (typeof ask.private === 'boolean') repo.private = ask.private; // what older clients send
      return this.json(res, {});
    }
    return this.error(res, 404, null, 'Not Found');
  }

  private createRepo(req: IncomingMessage, res: ServerResponse, token: string | null, body: Buffer): void {
    if (this.fault('create', req, res)) return;
    const ask = JSON.parse(body.toString('utf8')) as { name: string; organization?: string; type?: string; visibility?: string; private?: boolean };
    const user = token === null ? undefined : this.users.get(token);
    if (!user) return this.error(res, 401, null, 'You must be authenticated to create a repository');
    const namespace = ask.organization ?? user.name;
    if (!this.mayWrite(token, namespace)) return this.error(res, 403, null, `You don't have the rights to create a model under the namespace "${namespace}"`);
    if ((ask.type ?? 'model') !== 'model') return this.error(res, 400, null, 'this fake creates models only');
    const id = `${namespace}/${ask.name}`;
    if (this.repos.has(`model:${id}`)) {
      res.writeHead(409, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: 'You already created this model repo', url: `${this.url}/${id}` }));
    }
    const files = new Map([['.gitattributes', Buffer.from(DEFAULT_GITATTRIBUTES)]]);
    this.add({
      kind: 'model', id, files, sha: gitOid(Buffer.from(`initial ${id}`)), owner: namespace, private: ask.visibility === 'private' || ask.private === true,
      lfsPaths: new Set(), stored: new Set(), commits: [{ oid: gitOid(Buffer.from(`initial ${id}`)), title: 'initial commit', paths: ['.gitattributes'], private: ask.visibility === 'private' || ask.private === true }],
    });
    this.json(res, { url: `${this.url}/${id}`, name: id, id: `id-${id}` });
  }

  /** One NDJSON commit: every LFS file must be in the repository's storage, else nothing changes. */
  private commit(repo: FakeRepo, body: Buffer, res: ServerResponse): void {
    const lines = body.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
    const header = lines.find((l) => l.key === 'header')?.value as { summary?: string; parentCommit?: string } | undefined;
    if (!header?.summary) return this.error(res, 400, null, 'a commit needs a header with a summary');
    if (header.parentCommit && header.parentCommit !== repo.sha) return this.error(res, 412, null, 'A commit has happened since. Please refresh and try again.');
    const files = new Map(repo.files), lfs = new Set(repo.lfsPaths ?? []);
    for (const { key, value } of lines) {
      const path = String(value.path ?? '');
      if (key === 'file') {
        files.set(path, Buffer.from(String(value.content), value.encoding === 'base64' ? 'base64' : 'utf8'));
        lfs.delete(path);
      } else if (key === 'lfsFile') {
        const oid = String(value.oid), blob = this.blobs.get(oid);
        if (!repo.stored?.has(oid) || !blob || blob.length !== value.size) {
          return this.error(res, 422, null, `Your push was rejected because an LFS pointer pointed to a file that does not exist: ${path} (${oid})`);
        }
        files.set(path, blob);
        lfs.add(path);
      } else if (key === 'deletedFile') {
        files.delete(path);
        lfs.delete(path);
      }
    }
    repo.files = files;
    repo.lfsPaths = lfs;
    repo.sha = createHash('sha1').update(repo.sha).update(body).digest('hex');
    (repo.commits ??= []).push({ oid: repo.sha, title: header.summary, paths: lines.filter((l) => l.key !== 'header').map((l) => String(l.value.path)), private: repo.private ?? false });
    this.json(res, { success: true, commitOid: repo.sha, commitUrl: `${this.url}/${repo.id}/commit/${repo.sha}`, hookOutput: '' });
  }

  private store(repo: FakeRepo, oid: string, bytes: Buffer): void {
    this.blobs.set(oid, bytes);
    (repo.stored ??= new Set()).add(oid);
    this.stores.push(oid);
  }

  /** The storage origin's PUTs: a whole object (/upload/<repo>/<oid>) or one part (/part/<uploadId>/<n>), as S3 takes them. */
  private async handleStoragePut(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const whole = /^\/upload\/([^/]+)\/([0-9a-f]{64})$/.exec(url.pathname);
    const part = /^\/part\/([0-9a-f]+)\/(\d+)$/.exec(url.pathname);
    const up = part ? this.multiparts.get(part[1]!) : undefined;
    const oid = whole ? whole[2]! : up?.oid;
    if (!oid || (part && !up)) return this.error(res, 404, null, 'NoSuchUpload');
    if (req.headers['content-length'] === undefined) return this.error(res, 411, null, 'MissingContentLength: You must provide the Content-Length HTTP header.');
    if (this.fault('lfs-upload', req, res)) return;
    const record = { oid, part: part ? Number(part[2]) : null, bytes: 0 };
    this.puts.push(record);
    const chunks: Buffer[] = [];
    const hold = this.holdUploadAfter.get(oid);
    const complete = await new Promise<boolean>((resolve) => {
      req.on('data', (c: Buffer) => {
        chunks.push(c);
        record.bytes += c.length;
        if (hold !== undefined && record.bytes >= hold && this.holdUploadAfter.has(oid)) {
          this.holdUploadAfter.delete(oid);
          req.pause(); // then nothing, until cutHeld()
          this.held.add(req);
          resolve(false);
        }
      });
      req.on('end', () => resolve(true));
      req.on('close', () => resolve(false));
    });
    if (!complete) return;
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== Number(req.headers['content-length'])) return this.error(res, 400, null, 'IncompleteBody');
    if (up) {
      up.parts.set(record.part!, bytes);
      res.writeHead(200, { etag: `"${createHash('md5').update(bytes).digest('hex')}"` });
      return void res.end();
    }
    if (bytes.length !== Number(url.searchParams.get('size')) || sha256(bytes) !== oid) return this.error(res, 400, null, 'BadDigest: the object is not the one announced');
    const repo = this.repos.get(`model:${decodeURIComponent(whole![1]!)}`)!;
    this.store(repo, oid, bytes);
    res.writeHead(200, { etag: `"${createHash('md5').update(bytes).digest('hex')}"` });
    res.end();
  }

}
