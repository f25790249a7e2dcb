// `finch bench gpu-check` (`npm run gpu-check`): one command for a machine with a GPU. It measures
// Finch's LoRA training step (the `bench train` child, train-finch.ts) on every GPU provider this
// machine can use and on the CPU, and PyTorch's step on the same GPU when torch sees one (CUDA or
// ROCm), then prints one JSON object. A time budget keeps the whole check under 8 minutes: a run
// that would start after it is recorded as skipped rather than started.

import { execFile } from 'node:child_process';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { parseCommand } from '../cli/args.js';
import { adapterName, machineProviders, usableGpuProviders } from '../engine/runtime/providers.js';
import type { Provider } from '../engine/runtime/session.js';
import { runFinchStep, runTorchPeer } from './train.js';
import { PRESETS } from './train-presets.js';
import { benchEnv } from './timing.js';

const USAGE = `Usage: finch bench gpu-check [--presets small,llama3.2-1b] [--providers LIST] [--steps N] [--threads N] [--budget-s S] [--no-peer] [--python PATH]

Finch's LoRA training tokens/s for each preset on every usable GPU provider (in \`auto\`'s order: a
hardware WebGPU adapter, DirectML on Windows, CUDA with its libraries) and on the CPU (the small preset only: the
larger one is GPU-sized), plus the PyTorch peer on the same GPU when its torch has CUDA or ROCm.
Prints one JSON object on stdout; progress goes to stderr.
  --providers LIST  measure these providers instead of the detected ones (e.g. cpu, or cpu,webgpu)
  --budget-s S      start no run after S seconds (default 420, so the check ends within 8 minutes)
  --python PATH     the Python with torch (default: $FINCH_PYTHON, else python3)`;

/** Presets too large for a useful CPU figure in the time budget: measured on GPU providers only. */
const GPU_ONLY_PRESETS = new Set(['llama3.2-1b']);

interface TorchProbe { cuda: boolean; hip: string | null; cuda_version: string | null; device_name: string | null; peft: boolean; version: string }

const TORCH_PROBE = `
import importlib.util, json, torch
ok = torch.cuda.is_available()
print(json.dumps({"cuda": ok, "hip": torch.version.hip, "cuda_version": torch.version.cuda,
  "device_name": torch.cuda.get_device_name(0) if ok else None,
  "peft": importlib.util.find_spec("peft") is not None, "version": torch.__version__}))
`;

/** torch's view of the GPU, or why torch cannot be asked (not installed, no Python). */
async function probeTorch(python: string): Promise<TorchProbe | { error: string }> {
  return new Promise((done) => {
    execFile(python, ['-c', TORCH_PROBE], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) { done({ error: `${python}: ${(stderr || err.message).trim().split('\n').pop()}` }); return; }
      try { done(JSON.parse(stdout.trim().split('\n').pop()!) as TorchProbe); } catch { done({ error: `${python} printed no torch probe` }); }
    });
  });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('bench gpu-check', argv, {
    presets: { type: 'string', default: 'small,llama3.2-1b' }, providers: { type: 'string' }, steps: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(availableParallelism()) }, 'budget-s': { type: 'string', default: '420' },
    'no-peer': { type: 'boolean', default: false }, python: { type: 'string', default: process.env.FINCH_PYTHON ?? 'python3' },
  }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  const v = parsed.values;
  const started = performance.now();
  const elapsedS = () => (performance.now() - started) / 1000;
  const steps = Number(v.steps), threads = Number(v.threads), budgetS = Number(v['budget-s']);
  for (const [flag, n] of [['--steps', steps], ['--threads', threads], ['--budget-s', budgetS]] as const) {
    if (!Number.isInteger(n) || n < 1) { console.error(`finch bench gpu-check: ${flag} must be a positive integer, got "${String(n)}"`); return 2; }
  }
  const presets = v.presets.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = presets.filter((p) => !PRESETS[p] || p === 'llama3-8b');
  if (unknown.length) { console.error(`finch bench gpu-check: unknown preset(s) ${unknown.join(', ')} (choose from small, tiny, llama3.2-1b)`); return 2; }
  const log = (s: string) => console.error(`[gpu-check ${elapsedS().toFixed(0)}s] ${s}`);

  const machine = await machineProviders();
  // The GPU providers `auto` would consider, in its order (a hardware WebGPU adapter first).
  const usable = usableGpuProviders(machine);
  const hardware = usable.find((u) => u.adapter)?.adapter ?? null;
  const gpuProviders = usable.map((u) => u.provider);
  const providers = v.providers ? v.providers.split(',').map((s) => s.trim()) as Provider[] : [...gpuProviders, 'cpu' as Provider];
  const badProvider = providers.find((p) => p !== 'cpu' && !machine.built.includes(p));
  if (badProvider) { console.error(`finch bench gpu-check: this onnxruntime-node build has no ${badProvider} provider (it has ${machine.built.join(', ')})`); return 2; }
  log(`providers built: ${machine.built.join(', ')}; GPU providers usable: ${gpuProviders.join(', ') || 'none'}; measuring ${providers.join(', ')}`);

  const env = benchEnv(threads);
  const finch: Record<string, unknown>[] = [];
  const overBudget = () => elapsedS() > budgetS;
  for (const name of presets) {
    for (const provider of providers) {
      const row = { preset: name, provider };
      if (provider === 'cpu' && GPU_ONLY_PRESETS.has(name)) continue;
      if (overBudget()) { finch.push({ ...row, skipped: `time budget of ${budgetS} s spent` }); continue; }
      log(`finch ${name} on ${provider}...`);
      try {
        const r = await runFinchStep(PRESETS[name]!, { threads, steps, quantize: false, provider, strict: provider !== 'cpu' }, env);
        finch.push({ ...row, adapter: provider === 'webgpu' && hardware ? adapterName(hardware) : null, tokens_per_s: r.tokens_per_s, step_s: r.step_s,
          peak_rss_mb: r.peak_rss_mb, estimate_mb: r.estimate_mb, host_device_bytes_per_step: r.host_device_bytes_per_step, state_on_device: r.state_on_device, loss: r.loss });
      } catch (err) {
        finch.push({ ...row, error: (err as Error).message });
      }
    }
  }

  // PyTorch on the same GPU: only where its torch sees one (a CPU-only torch would not be "the same GPU").
  let torch: TorchProbe | { error: string } | null = null;
  const peers: Record<string, unknown>[] = [];
  if (!v['no-peer']) {
    torch = await probeTorch(v.python);
    if ('cuda' in torch && torch.cuda) {
      for (const name of presets) {
        const row = { preset: name, device: torch.hip ? 'rocm' : 'cuda', device_name: torch.device_name, lora: 'hand-written LoRA (nn.Linear + A/B), AdamW' };
        if (overBudget()) { peers.push({ ...row, skipped: `time budget of ${budgetS} s spent` }); continue; }
        log(`PyTorch ${name} on ${torch.device_name}...`);
        try {
          const r = await runTorchPeer(PRESETS[name]!, threads, steps, env, 'cuda', v.python);
          peers.push({ ...row, tokens_per_s: r.tokens_per_s, step_s: r.step_s, gpu_peak_mb: r.gpu_peak_mb ?? null, loss: r.loss });
        } catch (err) {
          peers.push({ ...row, error: (err as Error).message });
        }
      }
    }
  }

  console.log(JSON.stringify({
    check: 'finch gpu-check',
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    node_binary: process.execPath,
    cpu: cpus()[0]?.model ?? null,
    threads,
    ram_gb: totalmem() / 2 ** 30,
    providers_built: machine.built,
    adapters: machine.adapters.map((a) => ({ vendor: a.vendor, name: adapterName(a), architecture: a.architecture, description: a.description, backend: a.backend, software: a.software })),
    adapter_error: machine.adapterError,
    cuda_libraries: machine.installed.includes('cuda'),
    gpu_providers: gpuProviders,
    steps,
    finch,
    torch,
    peers,
    elapsed_s: elapsedS(),
  }));
  return 0;
}
