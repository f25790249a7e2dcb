// Tokenized samples kept compactly: all ids in one growing Int32Array and the trained flags in
// one Uint8Array, indexed by offsets. A dataset of millions of rows is then a few large buffers
// outside the JS heap instead of millions of small arrays.

export class SampleStore {
  private ids = new Int32Array(1 << 16);
  private flags = new Uint8Array(1 << 16);
  private readonly offsets: number[] = [0];
  private readonly lines: number[] = [];

  get count(): number {
    return this.lines.length;
  }

  get totalTokens(): number {
    return this.offsets[this.offsets.length - 1]!;
  }

  /** Appends a sample (already truncated to the sequence length). */
  push(ids: ArrayLike<number>, trained: ArrayLike<number>, line: number): void {
    const at = this.totalTokens;
    const need = at + ids.length;
    if (need > this.ids.length) {
      let cap = this.ids.length;
      while (cap < need) cap *= 2;
      const ni = new Int32Array(cap);
      ni.set(this.ids.subarray(0, at));
      const nf = new Uint8Array(cap);
      nf.set(this.flags.subarray(0, at));
      this.ids = ni;
      this.flags = nf;
    }
    this.ids.set(ids, at);
    this.flags.set(trained, at);
    this.offsets.push(need);
    this.lines.push(line);
  }

  /** Token ids of sample i (a view, not a copy). */
  tokens(i: number): Int32Array {
    return this.ids.subarray(this.offsets[i]!, this.offsets[i + 1]!);
  }

  /** 1 where token j of sample i is a training target (a view). */
  trained(i: number): Uint8Array {
    return this.flags.subarray(this.offsets[i]!, this.offsets[i + 1]!);
  }

  length(i: number): number {
    return this.offsets[i + 1]! - this.offsets[i]!;
  }

  /** The file line (or Parquet row) the sample came from. */
  line(i: number): number {
    return this.lines[i]!;
  }
}
