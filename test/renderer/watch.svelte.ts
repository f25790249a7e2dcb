// Test helper: records what `read` returns each time Svelte re-runs an effect that reads it, as a
// component's template would.
export function watch<T>(read: () => T): { seen: T[]; stop: () => void } {
  const seen: T[] = [];
  const stop = $effect.root(() => {
    $effect(() => {
      seen.push(read());
    });
  });
  return { seen, stop };
}
