// A small byte-pair-encoding trainer: counts adjacent symbol pairs over a bag of pre-tokenized
// words and repeatedly merges the most frequent pair. Pair counts are updated incrementally
// (only the words containing the merged pair are touched) and the best pair comes from a lazy
// max-heap, so a ~200 KB corpus trains to a few thousand tokens in about a second.
// Ties break on the smaller (left id, right id), so training is deterministic.

export interface BpeWord {
  /** Initial symbols of the word (bytes-as-characters, or characters); all must be in the vocab. */
  symbols: readonly string[];
  count: number;
}

export interface BpeResult {
  /** Initial vocab followed by the tokens the merges created, in creation order. */
  vocab: string[];
  merges: [string, string][];
}

const KEY_BASE = 2 ** 21; // symbol ids stay below 2M; keys a * 2^21 + b stay exact in a double

/**
 * Trains merges until the vocab reaches `targetSize` or no pair occurs at least `minCount` times.
 * Merging two symbols whose concatenation is already a token reuses that token (as HF's trainer).
 */
export function trainBpe(words: readonly BpeWord[], initialVocab: readonly string[], targetSize: number, minCount = 1): BpeResult {
  const vocab = [...initialVocab];
  const idOf = new Map<string, number>();
  vocab.forEach((s, i) => idOf.set(s, i));
  if (vocab.length > KEY_BASE) throw new Error('trainBpe: initial vocab too large');

  const seqs: number[][] = [];
  const counts: number[] = [];
  for (const w of words) {
    const seq = w.symbols.map((s) => {
      const id = idOf.get(s);
      if (id === undefined) throw new Error(`trainBpe: symbol ${JSON.stringify(s)} is not in the initial vocab`);
      return id;
    });
    if (seq.length > 1) {
      seqs.push(seq);
      counts.push(w.count);
    }
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const heap = new PairHeap();
  // Keys whose count grew since the last flush; each gets one heap entry per merge step.
  // Decrements need none: a popped entry larger than the live count is re-queued.
  const grown = new Set<number>();
  const addPairs = (w: number, sign: 1 | -1) => {
    const seq = seqs[w]!;
    const c = counts[w]! * sign;
    for (let i = 0; i + 1 < seq.length; i++) {
      const key = seq[i]! * KEY_BASE + seq[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + c);
      if (sign > 0) {
        grown.add(key);
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  const flush = () => {
    for (const key of grown) {
      const n = pairCount.get(key)!;
      if (n > 0) heap.push(n, key);
    }
    grown.clear();
  };
  for (let w = 0; w < seqs.length; w++) addPairs(w, 1);
  flush();

  const merges: [string, string][] = [];
  while (vocab.length < targetSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const live = pairCount.get(key) ?? 0;
    if (live !== count) {
      if (live > 0 && live < count) heap.push(live, key);
      continue; // stale entry
    }
    if (live < minCount) break;
    const a = Math.floor(key / KEY_BASE);
    const b = key - a * KEY_BASE;
    const merged = vocab[a]! + vocab[b]!;
    let m = idOf.get(merged);
    if (m === undefined) {
      m = vocab.length;
      vocab.push(merged);
      idOf.set(merged, m);
    }
    merges.push([vocab[a]!, vocab[b]!]);
    for (const w of pairWords.get(key) ?? []) {
      const seq = seqs[w]!;
      let has = false;
      for (let i = 0; i + 1 < seq.length; i++) if (seq[i] === a && seq[i + 1] === b) { has = true; break; }
      if (!has) continue;
      addPairs(w, -1);
      const next: number[] = [];
      for (let i = 0; i < seq.length; i++) {
        if (i + 1 < seq.length && seq[i] === a && seq[i + 1] === b) {
          next.push(m);
          i++;
        } else next.push(seq[i]!);
      }
      seqs[w] = next;
      addPairs(w, 1);
    }
    pairCount.delete(key);
    pairWords.delete(key);
    grown.delete(key);
    flush();
  }
  return { vocab, merges };
}

/** Max-heap of (count, key); ties pop the smaller key first. */
class PairHeap {
  private c: number[] = [];
  private k: number[] = [];
  get size(): number {
    return this.c.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.c[i]!, cj = this.c[j]!;
    return ci > cj || (ci === cj && this.k[i]! < this.k[j]!);
  }
  private swap(i: number, j: number): void {
    const c = this.c[i]!, k = this.k[i]!;
    this.c[i] = this.c[j]!;
    this.k[i] = this.k[j]!;
    this.c[j] = c;
    this.k[j] = k;
  }
  push(count: number, key: number): void {
    this.c.push(count);
    this.k.push(key);
    let i = this.c.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.c[0]!, this.k[0]!];
    const lc = this.c.pop()!, lk = this.k.pop()!;
    if (this.c.length > 0) {
      this.c[0] = lc;
      this.k[0] = lk;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < this.c.length && this.above(l, best)) best = l;
        if (r < this.c.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}
