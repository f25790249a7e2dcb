// One file from the Hub's resolve endpoint into `dest`, resumably: bytes go to `dest.part`; a
// later call asks for the rest with an HTTP Range request from the part's size; the part is checked
// against the size and hash the Hub lists (sha256 for large files, the git blob id for small ones)
// and renamed to `dest` only when complete. @huggingface/hub's own downloads can neither resume nor
// report progress, hence this transfer.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError } from './errors.js';
import { errorFromResponse, errorFromThrown, fetchAnswer, type HubTarget } from './http.js';
import type { RepoFile } from './files.js';

export interface TransferOptions {
  url: string;
  dest: string;
  file: RepoFile;
  target: HubTarget;
  token?: string;
  signal?: AbortSignal;
  /** Called per chunk with the bytes of this file on disk so far (including a resumed part) and the chunk's size. */
  onBytes?: (fileBytes: number, chunkBytes: number) => void;
}

export interface TransferResult {
  /** Bytes already in `dest.part` when this transfer started (0 = from scratch). */
  resumedFrom: number;
  /** Bytes received over the network by this call. */
  received: number;
}

export const partPath = (dest: string): string => `${dest}.part`;

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

/** A hash over the whole file: sha256 for LFS/Xet files, git's blob sha1 for the others. */
function newHash(file: RepoFile): { hash: Hash; expected: string | null; kind: string } {
  if (file.lfs) return { hash: createHash('sha256'), expected: file.lfs.oid, kind: 'sha256' };
  const hash = createHash('sha1').update(`blob ${file.size}\0`);
  return { hash, expected: file.oid ?? null, kind: 'git blob id' };
}

async function hashPrefix(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** "bytes 100-199/200" -> its first byte, or null. */
function rangeStart(contentRange: string | null): number | null {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : null;
}

export async function transferFile(o: TransferOptions): Promise<TransferResult> {
  const { file, target, signal } = o;
  const part = partPath(o.dest);
  await mkdir(dirname(o.dest), { recursive: true });
  let have = (await sizeOf(part)) ?? 0;
  if (have > file.size) {
    await rm(part, { force: true }); // longer than the file: not a prefix of it
    have = 0;
  }
  let resumedFrom = have;
  const digest = newHash(file);
  let received = 0;

  if (have < file.size || file.size === 0) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' }; // byte counts must be the file's
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (have > 0) headers.range = `bytes=${have}-`;
    const res = await fetchAnswer(o.url, { headers, redirect: 'follow' }, target, signal);
    if (res.status === 416 && have > 0) {
      // The server says the part already reaches the end; the size and hash checks below decide.
      await res.body?.cancel();
    } else if (!res.ok) {
      throw await errorFromResponse(res, target);
    } else {
      let append = false;
      if (res.status === 206) {
        const start = rangeStart(res.headers.get('content-range'));
        if (start !== have) {
          await res.body?.cancel();
          throw new HubError('network', `${target.repo}: the server answered range ${res.headers.get('content-range')} to a request for bytes ${have}- of ${file.path}`, 'run the download again');
        }
        append = true;
      }
      if (!append) {
        have = resumedFrom = 0; // a 200 answer (a server ignoring Range) is the whole file: start the part again
      }
      if (append && have > 0) await hashPrefix(digest.hash, part);
      const fh = await open(part, append ? 'a' : 'w');
      try {
        if (res.body) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            await fh.write(chunk);
            digest.hash.update(chunk);
            have += chunk.byteLength;
            received += chunk.byteLength;
            o.onBytes?.(have, chunk.byteLength);
          }
        }
      } catch (e) {
        const err = errorFromThrown(e, target, signal);
        if (err.code === 'network') {
          err.message = `the connection was cut after ${have} of ${file.size} bytes of ${file.path} (${target.kind} ${target.repo})`;
        }
        throw err;
      } finally {
        await fh.close();
      }
    }
  }
  if (received === 0 && have > 0) await hashPrefix(digest.hash, part); // nothing new arrived: hash the part as it is
  if (have !== file.size) {
    throw new HubError('network', `${file.path} of ${target.kind} ${target.repo}: got ${have} of ${file.size} bytes`, 'run the download again to resume it');
  }
  const actual = digest.hash.digest('hex');
  if (digest.expected && actual !== digest.expected) {
    await rm(part, { force: true });
    throw new HubError('integrity', `${file.path} of ${target.kind} ${target.repo}: ${digest.kind} ${actual} differs from the Hub's ${digest.expected}`,
      'the partial file was deleted; run the download again');
  }
  await rename(part, o.dest);
  return { resumedFrom, received };
}
