// A local stand-in for huggingface.co on 127.0.0.1, serving the endpoints Finch's hub module uses,
// answering as the real Hub does (read from @huggingface/hub's and huggingface_hub's clients):
//   GET /api/{models|datasets}/{repo}/revision/{rev}       info JSON with "sha"
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
}

export interface RecordedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

const isLfs = (path: string) => /\.(safetensors|parquet|bin)$/.test(path);
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

    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(revision|tree)\/([^/?]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const kind = api ? (api[1] === 'models' ? 'model' : 'dataset') : resolve ? (resolve[1] ? 'dataset' : 'model') : null;
    if (!kind) return this.error(res, 404, null, 'Not Found');
    const id = decodeURIComponent((api ?? resolve)![2]!);
    const rev = decodeURIComponent(api ? api[4]! : resolve![3]!);
    const repo = this.repos.get(`${kind}:${id}`);
    // The real Hub answers 401 for an unknown repository without a token (private ones stay hidden).
    if (!repo) return this.error(res, token ? 404 : 401, 'RepoNotFound', 'Repository not found');
    const branch = Object.entries(repo.branches ?? {}).find(([name, b]) => rev === name || rev === b.sha)?.[1];
    if (!branch && rev !== repo.sha && rev !== 'HEAD' && !['main', ...(repo.refs ?? [])].includes(rev)) {
      return this.error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    }
    const { sha, files } = branch ?? repo;
    if (api?.[3] === 'revision') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({
        _id: `id-${repo.id}`, id: repo.id, sha, private: false, gated: repo.gated ? 'manual' : false,
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
        entries.push({ type: 'file', oid: gitOid(isLfs(path) ? Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${size}\n`) : b),
          size, path, ...(isLfs(path) ? { lfs: { oid: sha256(b), size, pointerSize: 130 } } : {}) });
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
    if (isLfs(path)) {
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
}
