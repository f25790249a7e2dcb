// Long synchronous work in the server's process (tokenizing a preview's rows) gives the event loop
// a turn every YIELD_MS, so the server keeps answering its other calls in between. In a job's
// worker the turns cost nothing.
//
//   const pause = yielder();
//   for await (const row of rows) { await pause(); work(row); }

const YIELD_MS = 20;

/** A function to await once per unit of work: a turn of the event loop when YIELD_MS have passed since the last. */
export function yielder(): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    if (performance.now() - last < YIELD_MS) return undefined;
    return new Promise<void>((resolve) => setImmediate(() => { last = performance.now(); resolve(); }));
  };
}
