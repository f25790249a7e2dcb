// Which execution provider runs which node. ONNX Runtime decides placement while it creates a
// session (after its graph optimizations: fused nodes, inserted Memcpy nodes) and has no API to
// report it; with logSeverityLevel 0 it logs it (onnxruntime session_state.cc, 1.30):
//
//   [V:onnxruntime:, session_state.cc:1377 VerifyEachNodeIsAssignedToAnEp] Node placements
//   [V:onnxruntime:, ...]  All nodes placed on [CPUExecutionProvider]. Number of nodes: 3
// or, when nodes are split:
//   [V:onnxruntime:, ...]  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 12
//   [V:onnxruntime:, ...]   MatMul (layers.0/MatMul)
//   [V:onnxruntime:, ...]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2
//   [V:onnxruntime:, ...]   BitShift (nf4/BitShift)
//
// The log goes to the process's stderr from native code, where JavaScript cannot capture it, so
// the session is created in a child process (this same file, run with CHILD_FLAG) and its stderr
// is parsed. Use it to find CPU fallbacks on GPU providers (each one costs device<->host copies).

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Provider, SessionOptions } from './session.js';
import { nodeArgsFor, type ModelSource } from './worker.js';

/** ONNX Runtime's execution provider names, as its logs print them. */
export const EP_NAME: Record<Provider, string> = {
  cpu: 'CPUExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  dml: 'DmlExecutionProvider',
  coreml: 'CoreMLExecutionProvider',
};

export interface PlacedNode {
  op: string;
  name: string;
}

export interface ProviderPlacement {
  count: number;
  /** The nodes, when ORT lists them (it does only when the graph is split across providers). */
  nodes: PlacedNode[] | null;
}

/** Placement of the optimized graph's nodes, keyed by ORT provider name ("CPUExecutionProvider"). */
export type Placement = Record<string, ProviderPlacement>;

/** Parses the "Node placements" block of an ONNX Runtime verbose log (the last one, if several). */
export function parsePlacementLog(log: string): Placement {
  const lines = log.split(/\r?\n/);
  const start = lines.findLastIndex((l) => /\] Node placements\s*$/.test(l));
  if (start < 0) throw new Error('no "Node placements" block in the ONNX Runtime log (was logSeverityLevel 0?)');
  const placement: Placement = {};
  let current: PlacedNode[] | null = null;
  for (const line of lines.slice(start + 1)) {
    // Strip the logger prefix "<time> [V:onnxruntime:<id>, <file>:<line> <function>] ".
    const m = /^.*?\[V:onnxruntime:[^\]]*\] (.*)$/.exec(line);
    if (!m) continue;
    const text = m[1]!;
    const all = /^ All nodes placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(text);
    if (all) return { [all[1]!]: { count: Number(all[2]), nodes: null } };
    const head = /^ Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(text);
    if (head) {
      current = [];
      placement[head[1]!] = { count: Number(head[2]), nodes: current };
      continue;
    }
    const node = /^ {2}(\S+) \((.*)\)$/.exec(text);
    if (node && current) {
      current.push({ op: node[1]!, name: node[2]! });
      continue;
    }
    break; // the block ends at the first other log line
  }
  if (Object.keys(placement).length === 0) throw new Error('the ONNX Runtime "Node placements" block is empty or in an unknown format');
  return placement;
}

/** Nodes that did not land on `provider` (CPU fallbacks on a GPU provider), by provider name. */
export function nodesOffProvider(placement: Placement, provider: Provider): Placement {
  return Object.fromEntries(Object.entries(placement).filter(([ep]) => ep !== EP_NAME[provider]));
}

/**
 * The nodes of `model` that ORT would run on the CPU although `provider` was asked for (each one
 * costs host-device copies every run). Empty on the CPU provider. When ORT puts every node on the
 * CPU it does not list them: one entry then stands for all of them.
 */
export async function fallbackNodes(model: ModelSource, provider: Provider, options: SessionOptions = {}): Promise<PlacedNode[]> {
  if (provider === 'cpu') return [];
  const cpu = (await nodePlacement(model, provider, { ...options, disableCpuFallback: false }))[EP_NAME.cpu];
  if (!cpu) return [];
  return cpu.nodes ?? [{ op: '*', name: `all ${cpu.count} nodes` }];
}

const CHILD_FLAG = '--finch-placement-child';

/**
 * Why this process cannot list placements, or null when it can. The probe starts process.execPath
 * as Node; in Electron (the desktop app's main and utility processes, where the app's jobs run)
 * that binary is Electron, and a packaged app's fuses refuse ELECTRON_RUN_AS_NODE.
 */
export function placementProbeUnavailable(): string | null {
  if (!process.versions.electron || process.env.ELECTRON_RUN_AS_NODE) return null;
  return 'not listed inside the desktop app: listing them takes a Node process, which the app cannot start (`finch train` on the same settings lists them)';
}

/**
 * Creates a session for `model` on `provider` (with `options`, as Session.create would) in a child
 * process and reports which nodes ORT placed on which execution provider. Session creation
 * errors (e.g. `disableCpuFallback` with a fallback node) reject with ORT's message.
 */
export async function nodePlacement(model: ModelSource, provider: Provider, options: SessionOptions = {}): Promise<Placement> {
  const unavailable = placementProbeUnavailable();
  if (unavailable) throw new Error(`node placements are ${unavailable}`);
  let dir: string | null = null;
  let path: string;
  if (typeof model === 'string') {
    path = resolve(model);
  } else {
    // External data is named relative to the model file, so it goes beside it.
    dir = mkdtempSync(join(tmpdir(), 'finch-placement-'));
    path = join(dir, 'model.onnx');
    writeFileSync(path, model.bytes);
    for (const e of model.externalData) {
      const p = resolve(dir, e.path);
      if (!p.startsWith(dir)) throw new Error(`external data path ${e.path} points outside the model folder`);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, e.data);
    }
  }
  try {
    const request = JSON.stringify({ path, options: { ...options, provider, logVerbose: true } });
    const self = import.meta.url;
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
      const child = spawn(process.execPath, [...nodeArgsFor(self), fileURLToPath(self), CHILD_FLAG, request], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const chunks: Buffer[] = [];
      child.stderr.on('data', (c: Buffer) => chunks.push(c));
      child.on('error', fail);
      child.on('close', (c) => done({ code: c, stderr: Buffer.concat(chunks).toString('utf8') }));
    });
    if (code !== 0) {
      const reason = /FINCH_PLACEMENT_ERROR (.*)/.exec(stderr)?.[1] ?? stderr.split('\n').filter((l) => !l.includes('[V:onnxruntime')).slice(-5).join('\n');
      throw new Error(`creating the session on ${provider} failed: ${reason}`);
    }
    return parsePlacementLog(stderr);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function child(request: string): Promise<void> {
  const { path, options } = JSON.parse(request) as { path: string; options: SessionOptions };
  const { Session } = await import('./session.js');
  try {
    const s = await Session.create(path, options);
    await s.release();
  } catch (err) {
    // One line, marked, so the parent can find ORT's message among the verbose log.
    process.stderr.write(`\nFINCH_PLACEMENT_ERROR ${String((err as Error).message ?? err).replace(/\s+/g, ' ')}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === CHILD_FLAG && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await child(process.argv[3] ?? '{}');
}
