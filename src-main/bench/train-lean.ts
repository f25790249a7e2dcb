// Child process of `finch bench train --preset llama3-8b`: one real optimizer step of the lean QLoRA
// plan (train/plan.ts leanQloraSettings: 4-bit blocks of 64, LoRA r=8 on all seven projections,
// host embeddings, two-level checkpointing) on random weights generated straight into 4-bit blocks,
// so no 16 GB checkpoint is needed. The step graph is written to a temporary folder and every JS
// copy of the weights dropped before ONNX Runtime loads it (as the trainer's staged sessions do).
// Reports the peak RSS from session creation through the steps (Linux: VmHWM reset at that point),
// the peak of the one-off build before it, and the estimator's prediction for the same plan.

import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeModelFile } from '../engine/onnx/writer.js';
import { type HostTensor, Session } from '../engine/runtime/session.js';
import { FrozenWeights } from '../model/weights/frozen-weights.js';
import { initLora } from '../model/lora.js';
import { mulberry32 } from '../util/random.js';
import { quantizedWeights } from '../model/quant-cache.js';
import { Checkpoint, writeSafetensors } from '../model/safetensors.js';
import { estimateTrainingMemory } from '../train/memory.js';
import { CPU_DEVICE, leanQloraSettings, planGraph } from '../train/plan.js';
import { DEFAULT_OPTIMIZER, buildFusedStep } from '../train/step.js';
import { RssSampler } from './rss-sampler.js';
import { nodeSpans, phaseMemory } from './step-phases.js';
import { type TrainPreset, planJson, presetConfig } from './train-presets.js';

const o = JSON.parse(process.argv[2]!) as { preset: TrainPreset; threads: number; steps: number; seq: number; cpuMemArena?: boolean;
  /** Write the memory samples and the profiled node spans of the steps to this JSON file (for a closer look). */
  trace?: string;
};
const cfg = presetConfig(o.preset);
const plan = planGraph(leanQloraSettings(1, o.seq), cfg, CPU_DEVICE);
const B = plan.batch, T = plan.seq, rows = B * T, block = plan.blockSize;
const kib = (key: string) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${key}:\\s+(\\d+)`))![1]);
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const now = () => performance.now() / 1000;

// A sample every 20 ms, kept for an hour of steps: the phases inside a step are cut out of it by time.
const sampler = RssSampler.start(20, { series: 180_000 });
const t0 = now();
const dir = mkdtempSync(join(tmpdir(), 'finch-lean-step-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true })); // also when a step fails
const rand = mulberry32(1);
// A function, not a block: variables of a block at module level stayed reachable after it (the
// whole 8B graph, 1.4 GB, through the session and the step); a function's frame is released.
function buildStep(): { modelPath: string; params: ReturnType<typeof buildFusedStep>['params']; embeds: Float32Array } {
  const D = cfg.hiddenSize;
  const fw = new FrozenWeights(cfg, (name) => {
    if (name.endsWith('norm.weight')) return new Float32Array(D).fill(1);
    throw new Error(`train-lean: ${name} should come as 4-bit blocks`);
  }, { quantize: true, blockSize: block, rows: () => Float32Array.from({ length: D }, () => (rand() - 0.5) * 0.05) });
  // Random nibbles (uniform in -8..7 after the zero point 8) times a scale near a 0.02-std init,
  // written one tensor at a time into a file laid out like a 4-bit cache entry (64 KiB-aligned),
  // which the graph references: ORT maps the blocks and JS never holds them.
  const jobs = quantizedWeights(cfg);
  const largest = Math.max(...jobs.map((j) => (j.N * j.K) / 2));
  const scratch = new Uint8Array(largest);
  const blocksFile = join(dir, 'int4-blocks.safetensors');
  writeSafetensors(blocksFile, jobs.flatMap((j) => [
    { name: `${j.name}.q4`, dtype: 'U8' as const, shape: [j.N, j.K / 2], data: () => randomFillSync(scratch.subarray(0, (j.N * j.K) / 2)) },
    { name: `${j.name}.scales`, dtype: 'F32' as const, shape: [(j.N * j.K) / block], data: () => new Float32Array((j.N * j.K) / block).fill(0.004) },
  ]), undefined, { align: 64 * 1024 });
  const blocks = Checkpoint.open(blocksFile);
  for (const j of jobs) {
    fw.provideInt4File(j.name, { N: j.N, K: j.K, blockSize: block, path: blocksFile, packedOffset: blocks.info(`${j.name}.q4`).begin, scalesOffset: blocks.info(`${j.name}.scales`).begin });
  }
  blocks.close();
  const invFreq = Float64Array.from({ length: cfg.headDim / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / cfg.headDim));
  const sg = buildFusedStep(fw, invFreq, plan, DEFAULT_OPTIMIZER);
  return {
    modelPath: writeModelFile(sg.step, dir),
    params: sg.params,
    embeds: fw.embedRows(BigInt64Array.from({ length: rows }, () => BigInt(Math.floor(rand() * cfg.vocabSize)))),
  };
}
const { modelPath, params, embeds } = buildStep();
const buildS = now() - t0;
gc(); gc();
const buildPeakMb = kib('VmHWM') / 1024;
writeFileSync('/proc/self/clear_refs', '5'); // the peak from here on: session and steps

const buildRss = sampler?.phase() ?? null;
const t1 = now();
// Profiled: the profile's node times split each step into forward, backward and update (step-phases.ts).
const session = await Session.create(modelPath, { threads: o.threads, cpuMemArena: o.cpuMemArena ?? false, profilePrefix: join(dir, 'profile') });
const sessionS = now() - t1;
const sessionRss = sampler?.phase() ?? null;
const feeds: Record<string, HostTensor> = {
  inputs_embeds: { dtype: 'float32', dims: [rows, cfg.hiddenSize], data: embeds },
  position_ids: { dtype: 'int64', dims: [B, T], data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % T)) },
  attn_bias: { dtype: 'float32', dims: [B, 1, T, T], data: Float32Array.from({ length: B * T * T }, (_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -1e9)) },
  targets: { dtype: 'int32', dims: [rows], data: Int32Array.from({ length: rows }, () => Math.floor(rand() * cfg.vocabSize)) },
  lr: { dtype: 'float32', dims: [], data: Float32Array.of(1e-4) },
  step: { dtype: 'float32', dims: [], data: Float32Array.of(1) },
};
const init = initLora(params, 0);
for (const q of params) {
  const d = init.get(q.name)!;
  feeds[q.name] = { dtype: 'float32', dims: q.shape, data: d };
  feeds[`m:${q.name}`] = { dtype: 'float32', dims: q.shape, data: new Float32Array(d.length) };
  feeds[`v:${q.name}`] = { dtype: 'float32', dims: q.shape, data: new Float32Array(d.length) };
}
const stepTimes: number[] = [], runStarts: number[] = [];
const cpu0 = process.cpuUsage(), faults0 = process.resourceUsage().minorPageFault;
let loss = NaN;
for (let s = 1; s <= o.steps; s++) {
  const t = now();
  runStarts.push(performance.timeOrigin + performance.now());
  const out = await session.run(feeds);
  stepTimes.push(now() - t);
  loss = (out.loss!.data as Float32Array)[0]!;
  for (const q of params) {
    feeds[q.name] = out[`new:${q.name}`]!;
    feeds[`m:${q.name}`] = out[`new_m:${q.name}`]!;
    feeds[`v:${q.name}`] = out[`new_v:${q.name}`]!;
  }
  feeds.step = { dtype: 'float32', dims: [], data: Float32Array.of(s + 1) };
}
const peakMb = kib('VmHWM') / 1024;
const cpu = process.cpuUsage(cpu0);
const stepRss = sampler?.phase() ?? null;
await sampler?.stop();
const spans = nodeSpans(session.endProfiling(), runStarts);
await session.release();
// The largest step's phases (the first: later steps reuse what it left).
const phases = sampler ? spans.map((run, i) => phaseMemory(run, sampler.series(), runStarts[i]!)) : null;
if (o.trace) writeFileSync(o.trace, JSON.stringify({ samples: sampler?.series() ?? [], runStarts, spans }));
console.log(JSON.stringify({
  seq: T, plan: planJson(plan), peak_rss_mb: peakMb, estimate_mb: estimateTrainingMemory(cfg, plan).totalBytes / 2 ** 20,
  build_peak_rss_mb: buildPeakMb, build_s: buildS, session_s: sessionS, step_s: stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length,
  rss: { build: buildRss, session: sessionRss, steps: stepRss },
  // Private memory (RssAnon) per phase: graph build and session creation (their peaks), then each step's forward, backward and update.
  phases: phases && buildRss && sessionRss ? {
    build: { anon_mb: buildRss.anon_mb, s: buildS }, session: { anon_mb: sessionRss.anon_mb, added_anon_mb: sessionRss.end[1] - buildRss.end[1], s: sessionS }, steps: phases,
  } : null,
  // CPU time of the steps (all threads) and the page faults they took: what fresh buffers cost.
  step_cpu: { user_s: cpu.user / 1e6 / o.steps, system_s: cpu.system / 1e6 / o.steps, minor_faults: (process.resourceUsage().minorPageFault - faults0) / o.steps },
  tokens_per_s: rows / (stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length), loss,
}));
