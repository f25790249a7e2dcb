// Option parsing shared by the commands: node:util parseArgs (strict), `-h/--help` added to every
// command, and one way to answer a bad command line (the message, the usage, exit code 2).

import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O & { help: { type: 'boolean'; short: 'h' } }; strict: true }>>['values'];

/**
 * The parsed options (and the positional arguments, refused unless `allowPositionals`), or the exit
 * code when the command line was bad or asked for help.
 */
export function parseCommand<O extends Options>(command: string, argv: string[], options: O, usage: string, allowPositionals = false): { values: Parsed<O>; positionals: string[] } | { exit: number } {
  let values: Parsed<O>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } }, strict: true, allowPositionals }));
  } catch (e) {
    return { exit: usageError(command, (e as Error).message, usage) };
  }
  if ((values as { help?: boolean }).help) {
    console.log(usage);
    return { exit: 0 };
  }
  return { values, positionals };
}

/** Prints `finch <command>: <message>` and the usage; returns exit code 2. */
export function usageError(command: string, message: string, usage: string): number {
  console.error(`finch ${command}: ${message}\n\n${usage}`);
  return 2;
}
