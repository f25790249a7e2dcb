// How a command reports a failure: the message (it names the file, line or field and what to do)
// and the error's hint when it has one, with the stack only when FINCH_DEBUG=1, and exit code 1.

export function reportError(command: string, e: unknown): number {
  const err = e as Error & { hint?: unknown };
  console.error(`finch ${command}: ${err?.message ?? String(e)}`);
  if (typeof err?.hint === 'string') console.error(err.hint); // what to do, where the error knows (TrainingError)
  if (process.env.FINCH_DEBUG === '1' && err?.stack) console.error(err.stack);
  return 1;
}
