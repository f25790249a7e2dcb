// Runs transformers (test/oracle/hf_family.py run, the venv's Python) on checkpoints Finch also
// runs: each request's tensors go out as one little-endian blob with a JSON index, and its outputs
// (logits, loss, LoRA gradients, cached-decoding logits) come back by name. Several requests share
// one Python process (importing torch and transformers is most of its time).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoraSpec } from '../../src-main/model/lora.js';
import { VENV_PYTHON } from './prerequisites.js';

const ORACLE = new URL('../oracle/hf_family.py', import.meta.url).pathname;

type Data = Float32Array | BigInt64Array | Int32Array;
interface Named { shape: readonly number[]; data: Data }

export interface HfOracleRequest {
  /** The checkpoint folder transformers loads. */
  model: string;
  /** Weights by HF name that replace the checkpoint's (the dequantized 4-bit weights Finch runs). */
  overrides?: Iterable<[string, Named]>;
  /** LoRA through PEFT: the spec and the matrices by PEFT name. */
  lora?: { spec: LoraSpec; tensors: Iterable<[string, Named]> };
  /** A batch: ids, attention_mask (1 real, 0 padding), position_ids [B, T] int64; targets [B*T] int32. */
  train?: Record<'input_ids' | 'attention_mask' | 'position_ids' | 'targets', Named>;
  /** Rows decoded one at a time with transformers' cache after their prompt (teacher-forced `next`). */
  decode?: { prompt: number[]; next: number[] }[];
}

export type OracleOutputs = (name: string) => Float32Array;

/** Runs every request in one Python process; returns a reader of each one's outputs. */
export function runHfOracle(requests: readonly HfOracleRequest[]): OracleOutputs[] {
  const root = mkdtempSync(join(tmpdir(), 'finch-hf-'));
  try {
    const dirs = requests.map((r, i) => {
      const dir = join(root, String(i));
      const index: Record<string, { dtype: string; shape: number[]; offset: number }> = {};
      const parts: Buffer[] = [];
      let off = 0;
      const put = (name: string, t: Named) => {
        const dtype = t.data instanceof BigInt64Array ? 'int64' : t.data instanceof Int32Array ? 'int32' : 'float32';
        const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        index[name] = { dtype, shape: [...t.shape], offset: off };
        parts.push(b);
        off += b.byteLength;
      };
      for (const [name, t] of r.overrides ?? []) put(`override:${name}`, t);
      for (const [name, t] of r.lora?.tensors ?? []) put(name, t);
      for (const [name, t] of Object.entries(r.train ?? {})) put(`train.${name}`, t);
      const lora = r.lora && { r: r.lora.spec.rank, alpha: r.lora.spec.alpha, rslora: r.lora.spec.rslora, targets: [...r.lora.spec.targets] };
      execFileSync('mkdir', ['-p', dir]);
      writeFileSync(join(dir, 'tensors.bin'), Buffer.concat(parts));
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ model: r.model, tensors: index, lora, ...(r.train ? { train: true } : {}), decode: r.decode ?? [] }));
      return dir;
    });
    execFileSync(VENV_PYTHON, [ORACLE, 'run', ...dirs], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
    return dirs.map((dir) => {
      const ref = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as Record<string, { offset: number; shape: number[] }>;
      const bin = readFileSync(join(dir, 'out.bin'));
      return (name: string) => {
        const e = ref[name];
        if (!e) throw new Error(`the transformers oracle wrote no output '${name}' (it wrote ${Object.keys(ref).slice(0, 6).join(', ')}, ...)`);
        const n = e.shape.reduce((a, b) => a * b, 1);
        return new Float32Array(bin.buffer.slice(bin.byteOffset + e.offset, bin.byteOffset + e.offset + n * 4));
      };
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
