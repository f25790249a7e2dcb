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

// A computed specifier: commands are written by different issues, and a static import of a module
// that does not exist yet would fail type-checking; the table below stays the one list.
const command = (name: string) => (): Promise<CommandModule> => import(`./commands/${name}.js`);

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'tokenize', summary: 'encode text with a model\'s tokenizer and show the token ids', load: command('tokenize') },
  { name: 'generate', summary: 'generate text from a model (optionally with a LoRA adapter)', load: command('generate') },
  { name: 'train', summary: 'fine-tune a model with LoRA / QLoRA on a dataset', load: command('train') },
  { name: 'merge', summary: 'fold a LoRA adapter into its base model (merged safetensors checkpoint)', load: command('merge') },
  { name: 'export', summary: 'export a model or adapter as GGUF / Ollama, or a run for multi-GPU training (accelerate)', load: command('export') },
  { name: 'eval', summary: 'evaluate a model or adapter on a dataset (loss, perplexity)', load: command('eval') },
  { name: 'demo', summary: 'train the bundled tiny model on the bundled dataset, then compare', load: command('demo') },
  { name: 'bench', summary: 'benchmarks: `bench engine` (ONNX Runtime vs PyTorch), ...', load: command('bench') },
  { name: 'cache', summary: 'list or clear the 4-bit weight cache (quantized checkpoints under FINCH_HOME)', load: command('cache') },
  { name: 'serve', summary: 'serve the app UI to a browser on 127.0.0.1 (browser mode)', load: command('serve') },
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

/**
 * True when `err` says the command module itself is missing (not yet written), as opposed to a
 * module that exists but fails to import one of its own dependencies: that must surface as is.
 */
function isMissingCommandModule(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || typeof e.message !== 'string') return false;
  return new RegExp(`commands[\\\\/]${name}\\.(js|ts)['"]? imported from .*[\\\\/]cli[\\\\/]main\\.`).test(e.message);
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
  let mod: CommandModule;
  try {
    mod = await spec.load();
  } catch (err) {
    if (isMissingCommandModule(err, spec.name)) {
      console.error(`finch ${spec.name}: not available yet (src-main/cli/commands/${spec.name}.ts is not written in this version of Finch).`);
      return EXIT.failure;
    }
    throw err;
  }
  if (typeof mod.run !== 'function') {
    throw new Error(`src-main/cli/commands/${spec.name}.ts must export run(argv: string[]): Promise<number>`);
  }
  return mod.run(rest);
}
