// Runs the PyTorch Llama oracle (test/oracle/oracle_llama.py) on a batch: writes the weights,
// batch tensors and LoRA matrices as one little-endian blob with a JSON index, and reads back the
// oracle's loss, logits [B*T, V] and LoRA gradients by name.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '../../src-main/engine/runtime/session.js';
import type { LoraSpec } from '../../src-main/model/lora.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import { PYTHON } from './torch.js';

type Data = Float32Array | BigInt64Array | Int32Array;

export interface LlamaOracleInput {
  cfg: ModelConfig;
  invFreq: Float64Array;
  /** Base weights by HF name (already dequantized when the graph under test uses a 4-bit base). */
  weights: Iterable<[string, { shape: number[]; data: Float32Array }]>;
  /** input_ids, position_ids [B, T] int64, attn_bias [B, 1, T, T] float32, targets [B*T] int32. */
  batch: Record<'input_ids' | 'position_ids' | 'attn_bias' | 'targets', HostTensor>;
  spec: LoraSpec;
  /** LoRA matrices by PEFT name, with their shapes (zeros = the base model). */
  lora: Iterable<[string, { shape: number[]; data: Float32Array }]>;
}

/** Runs the oracle; returns a reader of its outputs ('loss', 'logits', 'grad:<PEFT name>'). */
export function runLlamaOracle(o: LlamaOracleInput): (name: string) => Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'finch-llama-'));
  try {
    const index: Record<string, { dtype: string; shape: number[]; offset: number }> = {};
    const parts: Buffer[] = [];
    let off = 0;
    const put = (name: string, dtype: string, shape: readonly number[], data: Data) => {
      const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      index[name] = { dtype, shape: [...shape], offset: off };
      parts.push(b);
      off += b.byteLength;
    };
    for (const [name, w] of o.weights) put(name, 'float32', w.shape, w.data);
    for (const [name, f] of Object.entries(o.batch)) put(name, f.dtype, f.dims, f.data as Data);
    for (const [name, w] of o.lora) put(name, 'float32', w.shape, w.data);
    writeFileSync(join(dir, 'tensors.bin'), Buffer.concat(parts));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ config: o.cfg, tensors: index, lora: o.spec, invFreq: Array.from(o.invFreq) }));
    execFileSync(PYTHON, [new URL('../oracle/oracle_llama.py', import.meta.url).pathname, dir], { stdio: 'inherit' });
    const ref = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as Record<string, { offset: number; shape: number[] }>;
    const bin = readFileSync(join(dir, 'out.bin'));
    return (name) => {
      const e = ref[name];
      if (!e) throw new Error(`the Llama oracle wrote no output '${name}'`);
      const n = e.shape.reduce((a, b) => a * b, 1);
      return new Float32Array(bin.buffer.slice(bin.byteOffset + e.offset, bin.byteOffset + e.offset + n * 4));
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** max |a - b| over max |b|: the logits' error relative to their scale. */
export function maxDiffOverScale(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`compare: ${a.length} values against ${b.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}
