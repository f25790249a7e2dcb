// How a command reports a failure: the message alone (it names the file, line or field and what to
// do), with the stack only when FINCH_DEBUG=1, and exit code 1.

export function reportError(command: string, e: unknown): number {
  const err = e as Error;
  console.error(`finch ${command}: ${err?.message ?? String(e)}`);
  if (process.env.FINCH_DEBUG === '1' && err?.stack) console.error(err.stack);
  return 1;
}
