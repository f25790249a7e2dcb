// Creating WebGPU sessions in tests: no CPU fallback allowed, and a missing adapter fails with the
// way to install one (CI installs Mesa 25 lavapipe; there is no skip).
import { type SerializedModel } from '../../src-main/engine/onnx/writer.js';
import { Session, type SessionOptions, availableProviders } from '../../src-main/engine/runtime/session.js';

export const INSTALL_HINT =
  'WebGPU needs a Vulkan driver Dawn accepts. Without a GPU install Mesa 25 lavapipe from bookworm-backports: ' +
  'add the suite "bookworm-backports" (same URIs and Signed-By as /etc/apt/sources.list.d/debian.sources), then ' +
  '`apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers` (CI does this).';

/** A WebGPU session with CPU fallback disabled: creation fails if any node has no WebGPU kernel. */
export async function webGpuSession(model: SerializedModel, options: SessionOptions = {}): Promise<Session> {
  if (!availableProviders().some((p) => p.name === 'webgpu')) throw new Error(`this onnxruntime-node build has no webgpu backend`);
  try {
    return await Session.create(model, { ...options, provider: 'webgpu', disableCpuFallback: true });
  } catch (e) {
    const msg = (e as Error).message;
    if (/adapter/i.test(msg)) throw new Error(`no WebGPU adapter: ${msg}\n${INSTALL_HINT}`);
    throw new Error(`the WebGPU session could not be created with CPU fallback disabled (some node has no WebGPU kernel?): ${msg}`);
  }
}
