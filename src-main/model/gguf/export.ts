// Hugging Face model folder (+ optional PEFT adapter) -> GGUF for llama.cpp, Ollama, LM Studio.
//
//   exportGguf           a whole model: base weights with the adapter folded in (W + scale B A),
//                        in f32, f16, q8_0 or q4_0, with architecture and tokenizer metadata;
//   exportGgufAdapter    the adapter alone as a GGUF LoRA adapter (llama.cpp applies it at load
//                        time over the base GGUF: `--lora FILE`, Ollama's ADAPTER);
//   exportOllama         a folder with the GGUF file(s) and a Modelfile.
//
// Tensors stream one at a time from the checkpoint to the file (see format.ts): peak memory is one
// tensor in float32 plus its encoding.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPeftAdapter } from '../adapter.js';
import { loadModelConfig } from '../config.js';
import { LORA_TARGET_ORDER, loraScale, modulePath } from '../lora.js';
import { addScaledProduct, loraPairs, type LoraPair } from '../merge.js';
import { Checkpoint, writeFileAtomic } from '../safetensors.js';
import type { ModelConfig } from '../types.js';
import { readJsonObject } from '../../util/json-file.js';
import { architectureMetadata, ggufArchitecture, ggufNotes, longRopeFactors, permuteRotary, projectionName, ropeFreqFactors, rotaryHeads, tensorMap, type MappedTensor } from './architecture.js';
import { f32, GgufError, str, u32, writeGguf, type GgufTensor, type GgufValue } from './format.js';
import { encodeTensor, GGML_TYPES, type GgmlType } from './quantize.js';
import { ggufVocab } from './vocab.js';
import { resolveModelFolderSync } from '../hf-cache.js';

export const GGUF_DTYPES = ['f32', 'f16', 'q8_0', 'q4_0'] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];

/** general.file_type (llama_ftype) of each export dtype. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

export interface GgufExportOptions {
  /** Base model folder (config.json, safetensors, tokenizer.json). */
  model: string;
  /** PEFT adapter folder to fold in (exportGguf) or to export (exportGgufAdapter). */
  adapter?: string | null;
  dtype: GgufDtype;
  out: string;
  /** general.name; default: the model folder's name. */
  name?: string;
  onProgress?: (index: number, total: number, name: string) => void;
}

export interface GgufExportResult {
  out: string;
  bytes: number;
  tensors: number;
  /** Token strings generation should stop on (for Ollama's Modelfile). */
  stopTokens: string[];
  /** Where llama.cpp runs the model differently from transformers and Finch (architecture.ts ggufNotes). */
  notes: string[];
}

/**
 * The ggml type of one tensor. 1-D tensors (norms, biases) stay F32, as llama.cpp keeps them.
 * q4_0 keeps the output projection (token_embd when tied) in q8_0: it is the most sensitive
 * matrix, and llama.cpp's own quantizer also gives it a higher-precision type.
 */
function tensorType(dtype: GgufDtype, t: MappedTensor, cfg: ModelConfig): GgmlType {
  if (t.shape.length < 2 || dtype === 'f32') return 'F32';
  if (dtype === 'f16') return 'F16';
  const rowLength = t.shape[t.shape.length - 1]!;
  if (rowLength % GGML_TYPES.Q8_0.blockSize !== 0) return 'F16'; // rows that are not whole blocks
  const isOutput = t.ggufName === 'output.weight' || (cfg.tieWordEmbeddings && t.ggufName === 'token_embd.weight');
  return dtype === 'q4_0' && !isOutput ? 'Q4_0' : 'Q8_0';
}

/**
 * The options with `model` as the folder to read: a Hugging Face cache folder (model/hf-cache.ts)
 * becomes its snapshot, and names the GGUF after its repository unless a name is given.
 */
function inModelFolder<T extends { model: string; name?: string }>(o: T): T {
  const f = resolveModelFolderSync(o.model);
  return { ...o, model: f.dir, name: o.name ?? f.repo ?? undefined };
}

function generalMetadata(cfg: ModelConfig, name: string, type: 'model' | 'adapter'): Map<string, GgufValue> {
  const md = new Map<string, GgufValue>();
  md.set('general.architecture', str(ggufArchitecture(cfg)));
  md.set('general.type', str(type));
  md.set('general.name', str(name));
  return md;
}

/** Writes the base model in `o.model`, with the adapter in `o.adapter` merged when given, as GGUF. */
export function exportGguf(opts: GgufExportOptions): GgufExportResult {
  const o = inModelFolder(opts);
  const cfg = loadModelConfig(o.model);
  const vocab = ggufVocab(o.model, cfg.vocabSize);
  const adapter = o.adapter ? loadPeftAdapter(o.adapter, cfg) : null;
  const pairs = adapter ? loraPairs(cfg, adapter) : new Map<string, LoraPair>();
  const scale = adapter ? loraScale(adapter.spec) : 0;

  const md = generalMetadata(cfg, o.name ?? path.basename(path.resolve(o.model)), 'model');
  md.set('general.file_type', u32(FILE_TYPE[o.dtype]));
  if (o.dtype.startsWith('q')) md.set('general.quantization_version', u32(2));
  for (const [k, v] of architectureMetadata(cfg)) md.set(k, v);
  for (const [k, v] of vocab.metadata) md.set(k, v);

  const ck = Checkpoint.open(o.model);
  try {
    const tensors: GgufTensor[] = [];
    const freqFactors = ropeFreqFactors(cfg);
    if (freqFactors) tensors.push({ name: 'rope_freqs.weight', shape: [freqFactors.length], type: 'F32', data: () => encodeTensor('F32', freqFactors) });
    const longRope = longRopeFactors(cfg);
    if (longRope) {
      for (const [name, v] of [['rope_factors_long.weight', longRope.long], ['rope_factors_short.weight', longRope.short]] as const) {
        tensors.push({ name, shape: [v.length], type: 'F32', data: () => encodeTensor('F32', v) });
      }
    }
    for (const t of tensorMap(cfg)) {
      if (!ck.has(t.hfName)) throw new GgufError(`${ck.source}: tensor "${t.hfName}" is missing (is this a complete ${cfg.modelType} checkpoint?)`);
      const stored = ck.info(t.hfName).shape;
      if (stored.join() !== t.shape.join()) throw new GgufError(`${ck.source}: ${t.hfName} has shape [${stored.join(', ')}], config.json implies [${t.shape.join(', ')}]`);
      const type = tensorType(o.dtype, t, cfg);
      tensors.push({
        name: t.ggufName,
        shape: t.shape,
        type,
        data: () => {
          let w = ck.readTensor(t.hfName);
          const pair = pairs.get(t.hfName);
          if (pair) addScaledProduct(w, pair.b, pair.a, t.shape[0]!, t.shape[1]!, pair.r, scale);
          if (t.rotaryHeads) w = permuteRotary(w, t.rotaryHeads, t.shape[1] ?? 1);
          if (t.add !== 0 || t.scale !== 1) w = w.map((x) => (x + t.add) * t.scale);
          return encodeTensor(type, w);
        },
      });
    }
    const bytes = writeGguf(o.out, md, tensors, { onTensor: o.onProgress });
    return { out: path.resolve(o.out), bytes, tensors: tensors.length, stopTokens: vocab.stopTokens, notes: ggufNotes(cfg) };
  } finally {
    ck.close();
  }
}

/**
 * Writes the adapter in `o.adapter` as a GGUF LoRA adapter for the base in `o.model`:
 * `blk.N.<proj>.weight.lora_a` [r, in] and `.lora_b` [out, r] (B's rows in llama.cpp's rotary
 * layout for q/k), `adapter.lora.alpha` such that llama.cpp's scale alpha / r is PEFT's scale.
 */
export function exportGgufAdapter(opts: GgufExportOptions): GgufExportResult {
  const o = inModelFolder(opts);
  if (!o.adapter) throw new GgufError('a LoRA-only GGUF export needs an adapter folder (--adapter DIR)');
  if (o.dtype !== 'f32' && o.dtype !== 'f16') throw new GgufError(`a LoRA adapter is exported as f32 or f16, not ${o.dtype}`);
  const cfg = loadModelConfig(o.model);
  const adapter = loadPeftAdapter(o.adapter, cfg);
  const { rank } = adapter.spec;
  const md = generalMetadata(cfg, o.name ?? path.basename(path.resolve(o.adapter)), 'adapter');
  md.set('adapter.type', str('lora'));
  md.set('adapter.lora.alpha', f32(loraScale(adapter.spec) * rank));
  const type: GgmlType = o.dtype === 'f16' ? 'F16' : 'F32';
  const pairs = loraPairs(cfg, adapter);
  const tensors: GgufTensor[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const target of LORA_TARGET_ORDER) {
      const pair = pairs.get(`${modulePath(l, target)}.weight`);
      if (!pair) continue;
      const name = projectionName(l, target);
      const heads = rotaryHeads(cfg, target);
      tensors.push({ name: `${name}.lora_a`, shape: [pair.r, pair.a.length / pair.r], type, data: () => encodeTensor(type, pair.a) });
      tensors.push({
        name: `${name}.lora_b`,
        shape: [pair.b.length / pair.r, pair.r],
        type,
        data: () => encodeTensor(type, heads ? permuteRotary(pair.b, heads, pair.r) : pair.b),
      });
    }
  }
  const bytes = writeGguf(o.out, md, tensors, { onTensor: o.onProgress });
  return { out: path.resolve(o.out), bytes, tensors: tensors.length, stopTokens: [], notes: ggufNotes(cfg) };
}

export interface OllamaExportResult {
  outDir: string;
  modelfile: string;
  files: string[];
  /** The command that registers the model with Ollama. */
  createCommand: string;
}

/**
 * Writes `outDir/model.gguf` (merged when an adapter is given, unless `separateAdapter`, which
 * writes the base and `adapter.gguf`) and `outDir/Modelfile`.
 */
export function exportOllama(o: Omit<GgufExportOptions, 'out'> & { outDir: string; separateAdapter?: boolean; modelName?: string }): OllamaExportResult {
  const outDir = path.resolve(o.outDir);
  if (!fs.existsSync(path.dirname(outDir))) throw new GgufError(`cannot write ${outDir}: the folder ${path.dirname(outDir)} does not exist`);
  fs.mkdirSync(outDir, { recursive: true });
  const separate = Boolean(o.separateAdapter && o.adapter);
  const model = exportGguf({ ...o, adapter: separate ? null : o.adapter, out: path.join(outDir, 'model.gguf') });
  const files = ['model.gguf'];
  if (separate) {
    exportGgufAdapter({ ...o, dtype: o.dtype === 'f16' ? 'f16' : 'f32', out: path.join(outDir, 'adapter.gguf') });
    files.push('adapter.gguf');
  }
  const gen = readJsonObject(path.join(resolveModelFolderSync(o.model).dir, 'generation_config.json'), { required: false, missingHint: '', error: (m) => new GgufError(m) }) ?? {};
  const cfg = loadModelConfig(o.model);
  const lines = [
    '# Written by Finch (finch export ollama). Ollama reads the chat template from the GGUF file.',
    'FROM ./model.gguf',
    ...(separate ? ['ADAPTER ./adapter.gguf'] : []),
    `PARAMETER num_ctx ${Math.min(cfg.maxPositionEmbeddings, 8192)}`,
    ...(['temperature', 'top_p', 'top_k'] as const)
      .filter((k) => typeof gen[k] === 'number')
      .map((k) => `PARAMETER ${k} ${gen[k] as number}`),
    ...model.stopTokens.map((t) => `PARAMETER stop ${JSON.stringify(t)}`),
  ];
  const modelfile = path.join(outDir, 'Modelfile');
  writeFileAtomic(modelfile, lines.join('\n') + '\n');
  files.push('Modelfile');
  const name = (o.modelName ?? path.basename(outDir)).toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  return { outDir, modelfile, files, createCommand: `ollama create ${name} -f ${JSON.stringify(modelfile)}` };
}
