// `finch doctor`: what this machine offers Finch: the execution providers of this ONNX Runtime
// build, the WebGPU adapters (hardware or software, buffer limits, shader-f16), RAM and free disk,
// and what `--provider auto` would pick, with the reason: the decision the app shows too.

import { freemem, homedir, totalmem } from 'node:os';
import { statfsSync } from 'node:fs';
import { adapterLabel, adapterName, chooseAuto, machineProviders } from '../../engine/runtime/providers.js';
import { parseCommand } from '../args.js';
import { reportError } from '../errors.js';

const USAGE = `Usage: finch doctor [--json]

Lists the execution providers of this build, the WebGPU adapters (software adapters such as
lavapipe or SwiftShader are marked: \`--provider auto\` never picks them), RAM, free disk in the
home folder, and what \`--provider auto\` would choose.`;

const MiB = 2 ** 20;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('doctor', argv, { json: { type: 'boolean', default: false } }, USAGE);
  if ('exit' in parsed) return parsed.exit;
  try {
    const m = await machineProviders();
    const decision = chooseAuto(m);
    const providers = m.installed;
    const disk = statfsSync(homedir());
    const report = {
      providers,
      providers_not_installed: m.built.filter((p) => !providers.includes(p)),
      adapters: m.adapters.map((a) => ({
        vendor: a.vendor, name: adapterName(a), architecture: a.architecture, device: a.device, description: a.description, backend: a.backend, software: a.software,
        max_buffer_size: a.maxBufferSize, max_storage_buffer_binding_size: a.maxStorageBufferBindingSize, shader_f16: a.shaderF16,
      })),
      adapter_error: m.adapterError,
      adapter_note: 'adapters are listed by Dawn (the webgpu package); ONNX Runtime opens its own default adapter and cannot report which, so the one it uses is expected, not confirmed, to be the first listed',
      ram_mb: Math.round(totalmem() / MiB),
      ram_free_mb: Math.round(freemem() / MiB),
      disk_free_mb: Math.round((disk.bavail * disk.bsize) / MiB),
      auto: decision.provider,
      auto_reason: decision.reason,
      auto_adapter: decision.adapter && adapterName(decision.adapter),
    };
    if (parsed.values.json) {
      console.log(JSON.stringify(report));
      return 0;
    }
    console.log(`execution providers: ${providers.join(', ')}${report.providers_not_installed.length ? ` (not installed: ${report.providers_not_installed.join(', ')})` : ''}`);
    if (!m.adapters.length) console.log(`WebGPU adapters: none (${m.adapterError})`);
    for (const a of m.adapters) {
      console.log(`WebGPU adapter: ${adapterLabel(a)} (${a.description}) [${a.software ? 'software' : 'hardware'}] max buffer ${Math.round(a.maxBufferSize / MiB)} MiB, ` +
        `max binding ${Math.round(a.maxStorageBufferBindingSize / MiB)} MiB, shader-f16 ${a.shaderF16 ? 'yes' : 'no'}`);
    }
    console.log(`RAM: ${report.ram_mb} MiB (${report.ram_free_mb} MiB free); disk free in ${homedir()}: ${report.disk_free_mb} MiB`);
    console.log(`--provider auto picks: ${decision.provider}, ${decision.reason}`);
    return 0;
  } catch (e) {
    return reportError('doctor', e);
  }
}
