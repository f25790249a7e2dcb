// The `finch` command line: a table of commands, each a module `./commands/<name>.ts` exporting
// `run(argv): Promise<number>` (the exit code). Modules load lazily, so `finch --help` stays fast
// and one command's heavy imports (onnxruntime-node, torch children) never slow another's start.

export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

export interface CommandSpec {
  name: string;
  summary: string;
  load: () => Promise<CommandModule>;
}

// Every row names its module by a literal specifier, so a row without a module fails type-checking.
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'tokenize', summary: 'encode text with a model\'s tokenizer and show the token ids', load: () => import('./commands/tokenize.js') },
  { name: 'generate', summary: 'generate text from a model (optionally with a LoRA adapter)', load: () => import('./commands/generate.js') },
  { name: 'train', summary: 'fine-tune a model with LoRA / QLoRA on a dataset', load: () => import('./commands/train.js') },
  { name: 'merge', summary: 'fold a LoRA adapter into its base model (merged safetensors checkpoint)', load: () => import('./commands/merge.js') },
  { name: 'export', summary: 'export a model or adapter as GGUF / Ollama, or a run for multi-GPU training (accelerate)', load: () => import('./commands/export.js') },
  { name: 'pull', summary: 'download a model or dataset from the Hugging Face Hub (resumable; never pickle)', load: () => import('./commands/pull.js') },
  { name: 'push', summary: 'upload an adapter, merged model or GGUF file to the Hugging Face Hub with a model card', load: () => import('./commands/push.js') },
  { name: 'eval', summary: 'evaluate a model or adapter on a dataset (loss, perplexity)', load: () => import('./commands/eval.js') },
  { name: 'demo', summary: 'train the bundled tiny model on the bundled dataset, then compare', load: () => import('./commands/demo.js') },
  { name: 'bench', summary: 'benchmarks: `bench engine` (ONNX Runtime vs PyTorch), `bench train`, `bench data`, `bench generate`', load: () => import('./commands/bench.js') },
  { name: 'cache', summary: 'list or clear the 4-bit weight cache (quantized checkpoints under FINCH_HOME)', load: () => import('./commands/cache.js') },
  { name: 'doctor', summary: 'execution providers, WebGPU adapters, memory and what --provider auto picks', load: () => import('./commands/doctor.js') },
  { name: 'serve', summary: 'serve the app UI to a browser on 127.0.0.1 (browser mode)', load: () => import('./commands/serve.js') },
];

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function usage(commands: readonly CommandSpec[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: finch <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `finch <command> --help` for a command\'s options.',
  ].join('\n');
}

/** Runs the CLI; returns the process exit code. `commands` is injectable for tests. */
export async function main(argv: string[], commands: readonly CommandSpec[] = COMMANDS): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic === undefined) {
      console.log(usage(commands));
      return first === undefined ? EXIT.usage : EXIT.ok;
    }
    return main([topic, '--help'], commands);
  }
  if (first === '--version' || first === '-v') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    console.log(pkg.version);
    return EXIT.ok;
  }
  const spec = commands.find((c) => c.name === first);
  if (!spec) {
    console.error(`finch: unknown command "${first}".\n\n${usage(commands)}`);
    return EXIT.usage;
  }
  const mod = await spec.load();
  if (typeof mod.run !== 'function') {
    throw new Error(`src-main/cli/commands/${spec.name}.ts must export run(argv: string[]): Promise<number>`);
  }
  return mod.run(rest);
}
