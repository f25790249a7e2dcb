// `finch bench <what>`: benchmarks, one module each under src-main/bench/, loaded on demand.
// Each exports run(argv): Promise<number>, like a command. Add a benchmark by adding a row.

interface Benchmark {
  name: string;
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

// Computed specifiers: benchmarks still to be written must not break type-checking (see cli/main.ts).
const bench = (file: string) => () => import(`../../bench/${file}.js`) as Promise<{ run(argv: string[]): Promise<number> }>;

export const BENCHMARKS: readonly Benchmark[] = [
  { name: 'engine', summary: 'MatMul GFLOP/s of ONNX Runtime vs PyTorch on Llama-layer shapes; session.run overhead', load: bench('engine') },
  { name: 'train', summary: 'training steps per second and tokens/s of a LoRA step graph', load: bench('train') },
  { name: 'gpu-check', summary: 'one JSON object: training tokens/s on each GPU provider, the CPU and PyTorch on the GPU (npm run gpu-check)', load: bench('gpu-check') },
  { name: 'load', summary: 'time to the first token and peak RSS loading real-size checkpoints (float, 4-bit cold/warm) vs PyTorch', load: bench('load') },
  { name: 'generate', summary: 'prefill and decode tokens/s of Finch vs llama.cpp (f32, 4-bit vs q4_0), peak RSS', load: bench('generate') },
  { name: 'soak', summary: 'RSS of a long training run with evaluations, checkpoints and sample answers: does it stay flat?', load: bench('soak') },
  { name: 'data', summary: 'dataset reading, templating and tokenization throughput', load: bench('data') },
];

function usage(): string {
  const w = Math.max(...BENCHMARKS.map((b) => b.name.length));
  return [
    'Usage: finch bench <benchmark> [options]   (npm run bench -- <benchmark> [options])',
    '',
    ...BENCHMARKS.map((b) => `  ${b.name.padEnd(w)}  ${b.summary}`),
    '',
    'Run `finch bench <benchmark> --help` for its options.',
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const b = BENCHMARKS.find((x) => x.name === name);
  if (!b) {
    console.error(`finch bench: unknown benchmark "${name}".\n\n${usage()}`);
    return 2;
  }
  let mod: { run(argv: string[]): Promise<number> };
  try {
    mod = await b.load();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && new RegExp(`bench[\\\\/]${name}\\.(js|ts)'? imported from .*commands[\\\\/]bench\\.`).test(e.message ?? '')) {
      console.error(`finch bench ${name}: not available yet (src-main/bench/${name}.ts is not written in this version of Finch).`);
      return 1;
    }
    throw err;
  }
  return mod.run(rest);
}
