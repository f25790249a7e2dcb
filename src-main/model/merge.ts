// Merge a LoRA adapter into its base model and save a plain Hugging Face checkpoint, for tools that
// take no adapters (GGUF converters, plain transformers, serving without PEFT):
//   W' = W + scale * B @ A        W [out, in], B [out, r], A [r, in], scale = alpha / r (or / sqrt r)
// for every adapted projection; every other tensor is copied byte for byte.
//
// Streaming: tensors are read, merged and written one at a time (writeSafetensors calls one thunk
// per tensor), so peak memory is about one tensor in float32 plus its encoded copy, never the model.
// Each tensor keeps the base's dtype (bf16 stays bf16: the sum is formed in float32 and rounded
// once) and its shard (same file names and weight_map). The output appears atomically: everything
// is written and fsynced in a temporary sibling folder that is renamed to `outDir` at the end.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADAPTER_CONFIG, fsyncDir, loadPeftAdapter, writeFileDurable, type PeftAdapter } from './adapter.js';
import { loadModelConfig } from './config.js';
import { loraParams, loraScale, modulePath } from './lora.js';
import { Checkpoint, tensorBytes, writeSafetensors, type TensorInfo, type TensorToWrite } from './safetensors.js';
import type { ModelConfig } from './types.js';
import { resolveModelFolderSync } from './hf-cache.js';

export class MergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MergeError';
  }
}

export interface MergeProgress {
  /** 1-based index of the tensor just written, out of `total`. */
  index: number;
  total: number;
  name: string;
  /** True when this tensor had the adapter added (false: copied). */
  merged: boolean;
}

export interface MergeOptions {
  onProgress?: (p: MergeProgress) => void;
  /** Replace an existing non-empty `outDir` (default: refuse). */
  overwrite?: boolean;
}

export interface MergeResult {
  outDir: string;
  /** Weight files written (relative to outDir), index included when sharded. */
  weightFiles: string[];
  /** Other files copied from the base folder (config, tokenizer, ...). */
  copiedFiles: string[];
  tensors: number;
  mergedTensors: number;
  scale: number;
}

/**
 * Files of a model folder that travel with the weights. The license goes too: derived weights
 * stay under the base model's terms.
 */
const SIDE_FILES = [
  'config.json', 'generation_config.json',
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'tokenizer.model', 'vocab.json', 'merges.txt', 'chat_template.jinja', 'chat_template.json',
];
const SIDE_FILE_PATTERN = /^(LICENSE|LICENCE|NOTICE|USE_POLICY)(\.[A-Za-z]+)?$/;

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** Merges the PEFT adapter in `adapterDir` into the model in `baseDir`, writing `outDir`. */
export function mergeAdapter(baseDir: string, adapterDir: string, outDir: string, opts: MergeOptions = {}): MergeResult {
  const base = resolveModelFolderSync(baseDir).dir; // a Hugging Face cache folder reads from its snapshot
  const out = path.resolve(outDir);
  if (out === base || out === path.resolve(adapterDir)) {
    throw new MergeError(`merge output ${out} must be a new folder, not the base model or the adapter`);
  }
  if (fs.existsSync(out)) {
    if (!fs.statSync(out).isDirectory()) throw new MergeError(`merge output ${out} exists and is not a folder`);
    if (fs.readdirSync(out).length > 0 && !opts.overwrite) {
      throw new MergeError(`merge output ${out} already exists and is not empty; choose a new folder or pass overwrite`);
    }
  }
  if (fs.existsSync(path.join(base, ADAPTER_CONFIG)) && !fs.existsSync(path.join(base, 'config.json'))) {
    throw new MergeError(`${base} is an adapter folder; the first argument must be the base model folder`);
  }

  const cfg = loadModelConfig(base);
  const adapter = loadPeftAdapter(adapterDir, cfg);
  const scale = loraScale(adapter.spec);
  const ck = Checkpoint.open(base);
  try {
    const lora = loraPairs(cfg, adapter);
    for (const [w, { a, b, r }] of lora) {
      if (!ck.has(w)) throw new MergeError(`${ck.source}: the adapter targets ${w}, which the base checkpoint does not have`);
      const t = ck.info(w);
      if (!FLOAT_DTYPES.has(t.dtype)) {
        throw new MergeError(`${t.file}: ${w} is stored as ${t.dtype}; merging needs an unquantized F32/F16/BF16 base checkpoint`);
      }
      const [o, i] = [b.length / r, a.length / r];
      if (t.shape.length !== 2 || t.shape[0] !== o || t.shape[1] !== i) {
        throw new MergeError(`${t.file}: ${w} has shape [${t.shape.join(', ')}], the adapter implies [${o}, ${i}]`);
      }
    }

    // Group tensors by the shard file they live in; a single-file base gives one group.
    const all = ck.tensors();
    const shards = new Map<string, TensorInfo[]>();
    for (const t of all) {
      const f = path.basename(t.file);
      if (!shards.has(f)) shards.set(f, []);
      shards.get(f)!.push(t);
    }
    const sharded = ck.source.endsWith('.json');
    checkFreeSpace(out, tensorBytes(all));

    const tmp = path.join(path.dirname(out), `.${path.basename(out)}.merge-tmp-${process.pid}-${Date.now()}`);
    fs.mkdirSync(tmp, { recursive: true });
    try {
      let done = 0;
      const report = (name: string, merged: boolean) => opts.onProgress?.({ index: ++done, total: all.length, name, merged });
      const weightFiles: string[] = [];
      for (const [file, group] of [...shards].sort(([x], [y]) => (x < y ? -1 : 1))) {
        const toWrite: TensorToWrite[] = group.map((t) => ({
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
          data: () => {
            const pair = lora.get(t.name);
            if (!pair) {
              report(t.name, false);
              return ck.readRaw(t.name); // exact bytes: an untouched tensor stays bit-identical
            }
            const w = ck.readTensor(t.name); // [out, in]
            addScaledProduct(w, pair.b, pair.a, t.shape[0]!, t.shape[1]!, pair.r, scale);
            report(t.name, true);
            return w;
          },
        }));
        writeSafetensors(path.join(tmp, file), toWrite, { format: 'pt' });
        weightFiles.push(file);
      }
      if (sharded) {
        const index = path.basename(ck.source);
        const weightMap = Object.fromEntries(all.map((t) => [t.name, path.basename(t.file)]));
        writeFileDurable(
          path.join(tmp, index),
          JSON.stringify({ metadata: { total_size: tensorBytes(all) }, weight_map: weightMap }, null, 2) + '\n',
        );
        weightFiles.push(index);
      }
      const copiedFiles: string[] = [];
      for (const name of fs.readdirSync(base).sort()) {
        if (!SIDE_FILES.includes(name) && !SIDE_FILE_PATTERN.test(name)) continue;
        const src = path.join(base, name);
        if (!fs.statSync(src).isFile()) continue;
        copyDurable(src, path.join(tmp, name));
        copiedFiles.push(name);
      }
      fsyncDir(tmp);
      if (fs.existsSync(out)) {
        // Empty, or `overwrite`: move the old folder aside first so the rename cannot fail half way.
        const old = path.join(path.dirname(out), `.${path.basename(out)}.old-${process.pid}-${Date.now()}`);
        fs.renameSync(out, old);
        fs.renameSync(tmp, out);
        fs.rmSync(old, { recursive: true, force: true });
      } else {
        fs.renameSync(tmp, out);
      }
      fsyncDir(path.dirname(out));
      return { outDir: out, weightFiles, copiedFiles, tensors: all.length, mergedTensors: lora.size, scale };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  } finally {
    ck.close();
  }
}

/** A LoRA pair of one projection: A [r, in], B [out, r]. */
export interface LoraPair {
  a: Float32Array;
  b: Float32Array;
  r: number;
}

/** Base weight name ("model.layers.0.self_attn.q_proj.weight") -> its adapter's LoRA pair. */
export function loraPairs(cfg: ModelConfig, adapter: PeftAdapter): Map<string, LoraPair> {
  const lora = new Map<string, LoraPair>();
  for (const p of loraParams(cfg, adapter.spec)) {
    if (p.which !== 'A') continue;
    const b = p.name.replace('.lora_A.weight', '.lora_B.weight');
    lora.set(`${modulePath(p.layer, p.target)}.weight`, { a: adapter.tensors.get(p.name)!, b: adapter.tensors.get(b)!, r: p.shape[0] });
  }
  return lora;
}

/**
 * w += scale * b @ a, in place. w [o, i], b [o, r], a [r, i], all row-major. Row by row, each row
 * of `a` scaled and added along w's contiguous row, so the inner loop streams memory.
 */
export function addScaledProduct(w: Float32Array, b: Float32Array, a: Float32Array, o: number, i: number, r: number, scale: number): void {
  for (let row = 0; row < o; row++) {
    const wOff = row * i;
    for (let k = 0; k < r; k++) {
      const c = scale * b[row * r + k]!;
      if (c === 0) continue;
      const aOff = k * i;
      for (let j = 0; j < i; j++) w[wOff + j] = w[wOff + j]! + c * a[aOff + j]!;
    }
  }
}

function copyDurable(src: string, dst: string): void {
  fs.copyFileSync(src, dst);
  const fd = fs.openSync(dst, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Fails before writing anything when the output's file system cannot hold the merged model. */
function checkFreeSpace(out: string, bytes: number): void {
  let dir = path.dirname(out);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  let free: number;
  try {
    const st = fs.statfsSync(dir);
    free = st.bavail * st.bsize;
  } catch {
    return; // statfs unavailable: the write itself will report ENOSPC
  }
  const need = bytes + (1 << 20);
  if (free < need) {
    throw new MergeError(
      `not enough disk space for the merged model in ${dir}: it needs ${(need / 2 ** 30).toFixed(2)} GiB, ${(free / 2 ** 30).toFixed(2)} GiB is free`,
    );
  }
}
