// Child process of memory.test.ts (and a measuring tool): builds the LoRA/QLoRA training step of a
// random-weight Llama, writes it to a temporary folder, drops every JS copy of the weights, then
// loads it in ONNX Runtime and runs optimizer steps, reporting peak RSS above the pre-session
// baseline. Usage: node --expose-gc --import tsx memory-step.child.ts '<json MemoryProbe>'
// Prints {"baselineMB", "sessionMB", "peakMB", "steps": [...], "loss"} as its last line.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeModelFile } from '../../src-main/engine/onnx/writer.js';
import { type HostTensor, Session } from '../../src-main/engine/runtime/session.js';
import { FrozenWeights } from '../../src-main/model/weights/frozen-weights.js';
import { type LoraParam, initLora } from '../../src-main/model/lora.js';
import { mulberry32 } from '../../src-main/util/random.js';
import type { ModelConfig } from '../../src-main/model/types.js';
import type { GraphPlan } from '../../src-main/train/plan.js';
import { DEFAULT_OPTIMIZER, buildFusedStep } from '../../src-main/train/step.js';

export interface MemoryProbe {
  cfg: ModelConfig;
  /** The step's graph plan (train/plan.ts); maxWeightBytes null in JSON = no limit. */
  plan: GraphPlan;
  threads: number;
  steps: number;
  cpuMemArena?: boolean;
  memPattern?: boolean;
}

const p = JSON.parse(process.argv[2]!) as MemoryProbe;
const { cfg } = p;
const plan: GraphPlan = { ...p.plan, maxWeightBytes: p.plan.maxWeightBytes ?? Infinity };
const status = () => readFileSync('/proc/self/status', 'utf8');
const kib = (key: string) => Number(status().match(new RegExp(`${key}:\\s+(\\d+)`))![1]);
const mb = (k: number) => Math.round(k / 1024);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

const dir = mkdtempSync(join(tmpdir(), 'finch-mem-'));
let modelPath: string;
let params: LoraParam[];
let dropoutModules = 0;
let embedRows: ((ids: ArrayLike<bigint>) => Float32Array) | undefined;
{
  // Weights are made on demand and not kept: the graph holds the only copies until it is written.
  const rand = mulberry32(1);
  const fw = new FrozenWeights(cfg, (name) => {
    const D = cfg.hiddenSize, I = cfg.intermediateSize, q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
    if (name.endsWith('norm.weight')) return new Float32Array(D).fill(1);
    const n = /embed|lm_head/.test(name) ? cfg.vocabSize * D : /q_proj|o_proj/.test(name) ? D * q : /k_proj|v_proj/.test(name) ? D * kv : D * I;
    return Float32Array.from({ length: n }, () => (rand() - 0.5) * 0.05);
  }, { quantize: plan.quantize, blockSize: plan.blockSize });
  const invFreq = Float64Array.from({ length: cfg.headDim / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim));
  const sg = buildFusedStep(fw, invFreq, plan, DEFAULT_OPTIMIZER);
  modelPath = writeModelFile(sg.step, dir);
  params = sg.params;
  dropoutModules = sg.dropoutModules;
  if (plan.hostEmbeddings) embedRows = (ids) => fw.embedRows(ids);
}

const B = plan.batch, T = plan.seq, rows = B * T;
const rand = mulberry32(2);
const ids = BigInt64Array.from({ length: rows }, () => BigInt(Math.floor(rand() * cfg.vocabSize)));
const embeds = embedRows ? embedRows(ids) : null;
embedRows = undefined; // only the batch's rows stay (a real loader reads them from the checkpoint)
gc(); gc();
const baseline = kib('VmRSS');

const session = await Session.create(modelPath, { threads: p.threads, cpuMemArena: p.cpuMemArena ?? false, memPattern: p.memPattern });
const afterCreate = kib('VmRSS');
const feeds: Record<string, HostTensor> = {
  position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % T)) },
  attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: Float32Array.from({ length: B * T * T }, (_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -1e9)) },
  targets: { dtype: 'int32', dims: [rows], data: Int32Array.from({ length: rows }, (_, i) => (i % T === T - 1 ? -100 : Number(ids[i + 1]!))) },
  lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-4) },
  step: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
};
if (embeds) feeds.inputs_embeds = { dtype: 'float32', dims: [rows, cfg.hiddenSize], data: embeds };
else feeds.input_ids = { dtype: 'int64', dims: [B, T], data: ids };
if (dropoutModules) feeds.dropout_seeds = { dtype: 'float32', dims: [dropoutModules], data: new Float32Array(dropoutModules) };
const init = initLora(params, 0);
for (const q of params) {
  const d = init.get(q.name)!;
  if (q.which === 'B') d.fill(0.01); // nonzero B: every gradient path is live
  feeds[q.name] = { dtype: 'float32', dims: q.shape, data: d };
  feeds[`m:${q.name}`] = { dtype: 'float32', dims: q.shape, data: new Float32Array(d.length) };
  feeds[`v:${q.name}`] = { dtype: 'float32', dims: q.shape, data: new Float32Array(d.length) };
}
writeFileSync('/proc/self/clear_refs', '5'); // reset the peak (VmHWM) to the current RSS
const steps: { ms: number; peakMB: number; loss: number }[] = [];
for (let s = 1; s <= p.steps; s++) {
  const t0 = performance.now();
  const out = await session.run(feeds);
  const ms = performance.now() - t0;
  for (const q of params) { // the trainer's loop: outputs feed the next step, old state is dropped
    feeds[q.name] = out[`new:${q.name}`]!;
    feeds[`m:${q.name}`] = out[`new_m:${q.name}`]!;
    feeds[`v:${q.name}`] = out[`new_v:${q.name}`]!;
  }
  feeds.step = { dtype: 'float32', dims: [], data: Float32Array.of(s + 1) };
  steps.push({ ms: Math.round(ms), peakMB: mb(kib('VmHWM') - baseline), loss: (out.loss!.data as Float32Array)[0]! });
}
await session.release();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ baselineMB: mb(baseline), sessionMB: mb(afterCreate - baseline), peakMB: Math.max(...steps.map((s) => s.peakMB)), steps }));
