// The 4-bit weight cache: a checkpoint's projections quantized once, kept under FINCH_HOME, so a
// QLoRA run or a `--4bit` generation does not quantize again on every start.
//
// One entry is one safetensors file, <FINCH_HOME>/cache/int4/<key>.safetensors, holding for each
// quantized weight `<name>.q4` (U8 [N, K/2], two 4-bit values a byte, quant.ts's layout) and
// `<name>.scales` (F32 [N, K/block]), each starting at a multiple of 64 KiB in the file (zero
// padding entries between them), so that graphs reference the blocks in place and ONNX Runtime
// maps them: no JS copy, no second copy in the session. The key hashes what the blocks depend on: the checkpoint's
// files (absolute path, size, modification time) and the block size. A changed checkpoint makes a
// new key; the old entry stays until `finch cache clear`. An entry that cannot be read (truncated,
// bad header, missing tensors) is reported, deleted and rebuilt.
//
// Cold quantization runs on a pool of worker threads, one per core (this file is also their entry:
// each opens the checkpoint itself, quantizes the weights it is sent and transfers the blocks
// back), and reports progress per weight.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { startWorker } from '../engine/runtime/worker.js';
import { quantCacheDir } from '../store/paths.js';
import { modelTargets, modulePath, projectionShape } from './lora.js';
import type { FrozenWeights } from './weights/frozen-weights.js';
import { type Int4File, type Int4Weight, int4Blocks, quantizeInt4 } from './quant.js';
import { Checkpoint, SafetensorsError, type TensorToWrite, writeSafetensors } from './safetensors.js';
import type { ModelConfig } from './types.js';

/** Bumped when the stored layout changes, so old entries are never misread (2: 64 KiB-aligned tensors). */
const FORMAT = 2;
/** ONNX Runtime maps external data in place at offsets aligned to the allocation granularity (64 KiB on Windows). */
const ENTRY_ALIGN = 64 * 1024;
const WORKER_MARKER = 'finch.quantize';

interface QuantJob { name: string; N: number; K: number }
type QuantReply = { name: string; packed: Uint8Array; scales: Float32Array } | { name: string; error: string };

export interface QuantizeOptions {
  /** Worker threads for cold quantization (default: one per core). */
  threads?: number;
  /** Called after each quantized weight (cold) or once (warm). */
  onProgress?: (done: number, total: number) => void;
  /** Human-readable notes: a corrupt entry being rebuilt, say. */
  onMessage?: (text: string) => void;
  /** Read and write the cache (default true); false quantizes without keeping the result. */
  cache?: boolean;
  /**
   * Awaited before each weight is handed to a worker (cold): it may hold the work (a paused run)
   * or end it by throwing (a cancelled one), which stops the workers and writes no cache entry.
   */
  between?: () => Promise<void>;
}

export interface QuantizeResult {
  source: 'cache' | 'quantized';
  /** The cache file, or null when caching was off. */
  file: string | null;
  weights: number;
  bytes: number;
}

/** The weights Finch stores in 4 bits: the projections of every layer (model/family.ts) and the LM head. */
export function quantizedWeights(cfg: ModelConfig): QuantJob[] {
  const jobs: QuantJob[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const t of modelTargets(cfg)) {
      const [N, K] = projectionShape(cfg, t);
      jobs.push({ name: `${modulePath(l, t)}.weight`, N, K });
    }
  }
  jobs.push({ name: cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', N: cfg.vocabSize, K: cfg.hiddenSize });
  return jobs;
}

/** The cache key: the checkpoint's files with their sizes and modification times, and the block size. */
export function quantCacheKey(ckpt: Checkpoint, blockSize: number): string {
  const files = ckpt.files().map((f) => {
    const st = statSync(f);
    return [f, st.size, st.mtimeMs];
  });
  return createHash('sha256').update(JSON.stringify({ format: FORMAT, blockSize, files })).digest('hex').slice(0, 32);
}

/** The file of the cache entry with this key. */
const entryFile = (key: string): string => join(quantCacheDir(), `${key}.safetensors`);

/** The first of `sizes` whose cache entry for `checkpoint` (as its files are now) exists; null when none does. */
export function cachedBlockSize(checkpoint: string, sizes: readonly number[]): number | null {
  const ckpt = Checkpoint.open(checkpoint);
  try {
    return sizes.find((b) => existsSync(entryFile(quantCacheKey(ckpt, b)))) ?? null;
  } finally {
    ckpt.close();
  }
}

/**
 * Gives `weights` the 4-bit blocks of every quantized weight of the checkpoint at `checkpoint`:
 * from the cache when an entry exists, else by quantizing on worker threads and storing the
 * result. With the cache, `weights` gets the blocks' places in the entry (graphs read them from
 * there and JS keeps no copy); without it, the blocks themselves.
 */
export async function prepareInt4(checkpoint: string, cfg: ModelConfig, weights: FrozenWeights, o: QuantizeOptions = {}): Promise<QuantizeResult> {
  const jobs = quantizedWeights(cfg);
  const blockSize = weights.blockSize;
  for (const j of jobs) {
    if (j.K % 2) throw new Error(`${j.name}: in_features ${j.K} is odd; 4-bit weights need an even width`);
  }
  const ckpt = Checkpoint.open(checkpoint);
  const key = quantCacheKey(ckpt, blockSize);
  ckpt.close();
  const useCache = o.cache ?? true;
  const file = entryFile(key);
  if (useCache && existsSync(file)) {
    try {
      utimesSync(file, new Date(), new Date()); // the entry's modification time says when it was last used
      const loaded = readEntry(file, key, jobs, blockSize);
      for (const [name, f] of loaded) weights.provideInt4File(name, f);
      o.onProgress?.(jobs.length, jobs.length);
      return { source: 'cache', file, weights: jobs.length, bytes: statSync(file).size };
    } catch (e) {
      o.onMessage?.(`4-bit cache ${file} is unreadable (${(e as Error).message}); deleting it and quantizing again`);
      rmSync(file, { force: true });
    }
  }
  const blocks = await quantizeOnWorkers(checkpoint, jobs, blockSize, o);
  if (!useCache) {
    for (const [name, w] of blocks) weights.provideInt4(name, w);
    return { source: 'quantized', file: null, weights: jobs.length, bytes: 0 };
  }
  const tensors: TensorToWrite[] = [];
  for (const j of jobs) {
    const w = blocks.get(j.name)!;
    tensors.push({ name: `${j.name}.q4`, dtype: 'U8', shape: [j.N, j.K / 2], data: () => w.packed });
    tensors.push({ name: `${j.name}.scales`, dtype: 'F32', shape: [j.N, int4Blocks(j.K, blockSize)], data: () => w.scales });
  }
  writeSafetensors(file, tensors, { finch_int4: String(FORMAT), key, block_size: String(blockSize), checkpoint, created: new Date().toISOString() }, { align: ENTRY_ALIGN });
  blocks.clear(); // from here on the entry holds them
  for (const [name, f] of readEntry(file, key, jobs, blockSize)) weights.provideInt4File(name, f);
  return { source: 'quantized', file, weights: jobs.length, bytes: statSync(file).size };
}

/** Where each weight's blocks sit in the entry `file` (checked against the jobs' shapes; nothing is read). */
function readEntry(file: string, key: string, jobs: readonly QuantJob[], blockSize: number): Map<string, Int4File> {
  const c = Checkpoint.open(file);
  try {
    if (c.metadata.key !== key || c.metadata.finch_int4 !== String(FORMAT)) throw new SafetensorsError('it belongs to another checkpoint or format');
    const out = new Map<string, Int4File>();
    for (const j of jobs) {
      const q = c.info(`${j.name}.q4`), s = c.info(`${j.name}.scales`);
      if (q.begin % ENTRY_ALIGN || s.begin % ENTRY_ALIGN) throw new SafetensorsError(`${j.name} is not aligned to ${ENTRY_ALIGN} bytes`);
      if (q.dtype !== 'U8' || q.shape.join() !== `${j.N},${j.K / 2}` || s.dtype !== 'F32' || s.shape.join() !== `${j.N},${int4Blocks(j.K, blockSize)}`) {
        throw new SafetensorsError(`${j.name} has the wrong shape`);
      }
      out.set(j.name, { N: j.N, K: j.K, blockSize, path: file, packedOffset: q.begin, scalesOffset: s.begin });
    }
    return out;
  } finally {
    c.close();
  }
}

async function quantizeOnWorkers(checkpoint: string, jobs: readonly QuantJob[], blockSize: number, o: QuantizeOptions): Promise<Map<string, Int4Weight>> {
  const threads = Math.max(1, Math.min(o.threads ?? availableParallelism(), jobs.length));
  const out = new Map<string, Int4Weight>();
  const queue = [...jobs].sort((a, b) => b.N * b.K - a.N * a.K); // largest first: the pool ends together
  const byName = new Map(jobs.map((j) => [j.name, j]));
  o.onProgress?.(0, jobs.length);
  const workers = Array.from({ length: threads }, () => startWorker(import.meta.url, { workerData: { [WORKER_MARKER]: { checkpoint, blockSize } }, name: 'finch-quantize' }));
  try {
    await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
      const next = () => {
        void (o.between?.() ?? Promise.resolve()).then(() => {
          const job = queue.shift();
          if (job) w.postMessage(job);
          else { w.postMessage(null); resolve(); }
        }, reject);
      };
      w.on('message', (r: QuantReply) => {
        if ('error' in r) { reject(new Error(`quantizing ${r.name}: ${r.error}`)); return; }
        const j = byName.get(r.name)!;
        out.set(r.name, { N: j.N, K: j.K, blockSize, packed: r.packed, scales: r.scales });
        o.onProgress?.(out.size, jobs.length);
        next();
      });
      w.on('error', reject);
      w.on('exit', (code) => { if (code !== 0) reject(new Error(`a quantization worker exited with code ${code}`)); });
      next();
    })));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return out;
}

export interface CacheEntry {
  file: string;
  key: string;
  checkpoint: string;
  blockSize: number;
  bytes: number;
  created: string;
}

/** The cache's entries (unreadable files are listed with what is known). */
export function listQuantCache(): CacheEntry[] {
  const dir = quantCacheDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort().map((n) => {
    const file = join(dir, n);
    const bytes = statSync(file).size;
    try {
      const c = Checkpoint.open(file);
      const m = c.metadata;
      c.close();
      return { file, key: m.key ?? '', checkpoint: m.checkpoint ?? '', blockSize: Number(m.block_size), bytes, created: m.created ?? '' };
    } catch {
      return { file, key: n.replace(/\.safetensors$/, ''), checkpoint: '(unreadable)', blockSize: 0, bytes, created: '' };
    }
  });
}

/** Deletes every entry (and leftovers of interrupted writes); returns the bytes freed. */
export function clearQuantCache(): number {
  const dir = quantCacheDir();
  if (!existsSync(dir)) return 0;
  let freed = 0;
  for (const n of readdirSync(dir)) {
    const f = join(dir, n);
    freed += statSync(f).size;
    rmSync(f, { force: true, recursive: true });
  }
  return freed;
}

// ---- worker side ------------------------------------------------------------------------------

function serveQuantJobs(o: { checkpoint: string; blockSize: number }): void {
  const ckpt = Checkpoint.open(o.checkpoint);
  parentPort!.on('message', (job: QuantJob | null) => {
    if (job === null) { ckpt.close(); parentPort!.close(); return; }
    try {
      const q = quantizeInt4(ckpt.readTensor(job.name), job.N, job.K, o.blockSize);
      const reply: QuantReply = { name: job.name, packed: q.packed, scales: q.scales };
      parentPort!.postMessage(reply, [q.packed.buffer as ArrayBuffer, q.scales.buffer as ArrayBuffer]);
    } catch (e) {
      parentPort!.postMessage({ name: job.name, error: (e as Error).message } satisfies QuantReply);
    }
  });
}

const mine = (workerData as Record<string, unknown> | null)?.[WORKER_MARKER] as { checkpoint: string; blockSize: number } | undefined;
if (!isMainThread && mine) serveQuantJobs(mine);
