// Finite-difference gradient checks for the autodiff engine. A check builds a small graph with
// random inputs, reduces its output to loss = sum(out * R) with a fixed random R (so every output
// element gets a distinct weight), asks grad() for the backward, runs it on ONNX Runtime's CPU EP,
// and compares each input's analytic gradient with central finite differences in float64.
// One session serves every perturbation: only the fed values change.
//
// Ops that ORT runs in float32 only (MatMulNBits) use gradcompare(): the float32 graph's analytic
// gradients against the analytic gradients of a float64 reference graph that computes the same
// function another way, which is itself checked against finite differences.

import { AssertionError } from 'node:assert';
import { grad } from '../../src-main/engine/autodiff/grad.js';
import type { DType, Dim } from '../../src-main/engine/graph/dtype.js';
import { Graph, type Tensor } from '../../src-main/engine/graph/graph.js';
import * as F from '../../src-main/engine/graph/ops.js';
import { serializeModel } from '../../src-main/engine/onnx/writer.js';
import { type HostArray, Session } from '../../src-main/engine/runtime/session.js';

/** mulberry32: a tiny seeded PRNG, so every run checks the same numbers. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * How an input's values are drawn. 'normal': N(0, 1). 'positive': U(0.5, 2) (Log, Sqrt, divisors).
 * 'awayFromZero': N(0, 1) with |v| >= 0.1 (kinks of Relu and Abs stay far beyond eps).
 */
export type Init = 'normal' | 'positive' | 'awayFromZero' | ArrayLike<number> | ((rng: Rng, i: number) => number);

export interface CheckBuilder {
  g: Graph;
  rng: Rng;
  /** Dtype of the differentiable inputs: float64 for gradcheck, the tested dtype for gradcompare. */
  dtype: 'float32' | 'float64';
  /** A graph input with random values whose gradient is checked. */
  input(name: string, shape: readonly number[], init?: Init): Tensor;
  /** A graph input fed with fixed data and not differentiated (labels, indices). */
  feed(name: string, dtype: DType, shape: readonly number[], data: HostArray): Tensor;
}

export type Build = (b: CheckBuilder) => Tensor | Tensor[];

export interface CheckOptions {
  /** Shown with the op in messages ("Gather [repeated indices]"). */
  label?: string;
  seed?: number;
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Largest relative error ||a - n|| / max(||a||, ||n||, 1e-12) accepted (default 1e-6). */
  tol?: number;
  /**
   * ORT graph optimization level (default 'all', as in training). 'basic' for float64 graphs with
   * x * sigmoid(x): the extended level fuses it into QuickGelu, which has a float32 kernel only.
   */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Declare every input dim of a listed size as the named symbol ({ 2: 'batch' }), as training
   * graphs declare batch and sequence dims; values are fed with the numeric shapes.
   */
  symbolic?: Readonly<Record<number, string>>;
}

export interface InputError {
  name: string;
  rel: number;
}

export interface CheckReport {
  op: string;
  label: string;
  inputs: InputError[];
  maxRel: number;
}

interface InputSpec {
  name: string;
  shape: number[];
  values: Float64Array; // float64 master copy (already rounded to the graph dtype)
  wrt: boolean;
  dtype: DType;
  data?: HostArray; // fixed feeds
}

const numel = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);

function draw(rng: Rng, n: number, init: Init, round: (v: number) => number): Float64Array {
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x: number;
    if (typeof init === 'function') x = init(rng, i);
    else if (typeof init !== 'string') x = init[i]!;
    else if (init === 'positive') x = rng.uniform(0.5, 2);
    else if (init === 'awayFromZero') {
      x = rng.normal();
      if (Math.abs(x) < 0.1) x = x < 0 ? x - 0.1 : x + 0.1;
    } else x = rng.normal();
    v[i] = round(x);
  }
  if (typeof init !== 'string' && typeof init !== 'function' && init.length !== n) {
    throw new Error(`gradcheck: ${init.length} initial values for ${n} elements`);
  }
  return v;
}

/** A compiled check: the graph, its ORT session, the inputs and the loss weights R. */
class Compiled {
  private constructor(
    readonly title: string,
    readonly g: Graph,
    readonly session: Session,
    readonly specs: InputSpec[],
    readonly dtype: 'float32' | 'float64',
  ) {}

  static async create(
    op: string,
    title: string,
    build: Build,
    dtype: 'float32' | 'float64',
    seed: number,
    givenValues?: Map<string, Float64Array>,
    roundR?: (v: number) => number,
    optimization: CheckOptions['optimization'] = 'all',
    symbolic: CheckOptions['symbolic'] = {},
  ): Promise<Compiled> {
    const declared = (shape: readonly number[]): Dim[] => shape.map((d) => symbolic[d] ?? d);
    const sizeOf = new Map(Object.entries(symbolic).map(([n, s]) => [s, Number(n)]));
    const round = dtype === 'float32' ? Math.fround : (v: number) => v;
    const g = new Graph(`gradcheck_${op}`);
    const rng = new Rng(seed);
    const specs: InputSpec[] = [];
    const wrt: Tensor[] = [];
    const b: CheckBuilder = {
      g,
      rng,
      dtype,
      input(name, shape, init = 'normal') {
        const t = g.input(name, dtype, declared(shape));
        const values = givenValues?.get(name) ?? draw(rng, numel(shape), init, round);
        specs.push({ name, shape: [...shape], values, wrt: true, dtype });
        wrt.push(t);
        return t;
      },
      feed(name, fdtype, shape, data) {
        const t = g.input(name, fdtype, declared(shape));
        specs.push({ name, shape: [...shape], values: new Float64Array(0), wrt: false, dtype: fdtype, data });
        return t;
      },
    };
    const built = build(b);
    const outs = Array.isArray(built) ? built : [built];
    if (op && !g.nodes.some((n) => n.op === op)) throw new Error(`${title}: the graph built has no ${op} node to check`);

    // loss = sum_k sum(out_k * R_k), R_k fixed random weights from their own stream, fed as inputs
    // declared with out_k's (possibly symbolic) shape.
    const rr = new Rng(seed ^ 0x5eed);
    let loss: Tensor | null = null;
    outs.forEach((o, k) => {
      const shape = o.shape.map((d) => {
        const n = typeof d === 'number' ? d : sizeOf.get(d);
        if (n === undefined) throw new Error(`${title}: output ${o} has a symbolic dim the checker cannot size`);
        return n;
      });
      const r = g.input(`R${k}`, o.dtype, o.shape);
      const data = Array.from({ length: numel(shape) }, () => (roundR ?? round)(rr.uniform(-1, 1)));
      specs.push({ name: r.name, shape, values: new Float64Array(0), wrt: false, dtype: o.dtype, data: o.dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data) });
      const weighted = F.mul(o, r);
      const term = o.rank === 0 ? weighted : F.reduceSum(weighted, shape.map((_, i) => i), false);
      loss = loss ? F.add(loss, term) : term;
    });
    const lossT = loss as unknown as Tensor;
    const grads = grad(lossT, wrt);
    g.output(lossT, 'loss');
    grads.forEach((d, i) => {
      const w = wrt[i]!;
      // The declared gradient shape must be the input's, symbols included; analytic() checks the sizes.
      if (d.dtype !== w.dtype || d.shape.join() !== w.shape.join()) {
        throw new Error(`${title}: gradient of ${w.name} is ${d.dtype}[${d.shape}], expected ${w.dtype}[${w.shape}]`);
      }
      g.output(d, `grad/${w.name}`);
    });
    const session = await Session.create(serializeModel(g), { threads: 1, optimization });
    return new Compiled(title, g, session, specs, dtype);
  }

  private feeds(override?: { name: string; values: Float64Array }) {
    const feeds: Parameters<Session['run']>[0] = {};
    for (const s of this.specs) {
      if (!s.wrt) {
        feeds[s.name] = { dtype: s.dtype, dims: s.shape, data: s.data! };
        continue;
      }
      const v = override?.name === s.name ? override.values : s.values;
      feeds[s.name] = { dtype: this.dtype, dims: s.shape, data: this.dtype === 'float32' ? Float32Array.from(v) : v };
    }
    return feeds;
  }

  /** The analytic gradient of every differentiable input, as float64. */
  async analytic(): Promise<Map<string, Float64Array>> {
    const r = await this.session.run(this.feeds());
    const out = new Map<string, Float64Array>();
    for (const s of this.specs) {
      if (!s.wrt) continue;
      const d = r[`grad/${s.name}`]!;
      if (d.dims.join() !== s.shape.join()) throw new Error(`${this.title}: gradient of ${s.name} came back [${d.dims}], expected [${s.shape}]`);
      out.set(s.name, Float64Array.from(d.data as Float64Array));
    }
    return out;
  }

  /** Central finite differences of the loss for one input (float64 graphs only). */
  async numeric(name: string, eps: number): Promise<Float64Array> {
    const s = this.specs.find((x) => x.name === name)!;
    const n = new Float64Array(s.values.length);
    const v = s.values.slice();
    const lossAt = async () => (await this.session.run(this.feeds({ name, values: v }), ['loss'])).loss!.data[0] as number;
    for (let i = 0; i < v.length; i++) {
      const x0 = s.values[i]!;
      v[i] = x0 + eps;
      const up = await lossAt();
      v[i] = x0 - eps;
      const down = await lossAt();
      v[i] = x0;
      n[i] = (up - down) / (2 * eps);
    }
    return n;
  }

  wrtNames(): string[] {
    return this.specs.filter((s) => s.wrt).map((s) => s.name);
  }

  inputValues(): Map<string, Float64Array> {
    return new Map(this.specs.filter((s) => s.wrt).map((s) => [s.name, s.values]));
  }

  async release() {
    await this.session.release();
  }
}

/** ||a - n|| / max(||a||, ||n||, 1e-12) */
export function relError(a: ArrayLike<number>, n: ArrayLike<number>): number {
  let d = 0, na = 0, nn = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i]! - n[i]!) ** 2;
    na += a[i]! ** 2;
    nn += n[i]! ** 2;
  }
  const rel = Math.sqrt(d) / Math.max(Math.sqrt(na), Math.sqrt(nn), 1e-12);
  return Number.isNaN(rel) ? Infinity : rel;
}

function worst(a: Float64Array, n: Float64Array, k = 3): string {
  const idx = Array.from(a, (_, i) => i).sort((p, q) => Math.abs(a[q]! - n[q]!) - Math.abs(a[p]! - n[p]!)).slice(0, k);
  return idx.map((i) => `[${i}] ${a[i]!.toPrecision(8)} vs ${n[i]!.toPrecision(8)}`).join('; ');
}

function compare(title: string, name: string, a: Float64Array, n: Float64Array, tol: number, what: string): number {
  const rel = relError(a, n);
  if (!(rel <= tol)) {
    throw new AssertionError({
      message: `${title}: gradient of input "${name}" is off: relative error ${rel.toExponential(2)} > ${tol} (analytic vs ${what}: ${worst(a, n)})`,
    });
  }
  return rel;
}

const titleOf = (op: string, label?: string) => (label ? `${op} [${label}]` : op);

/**
 * Checks every input's analytic gradient against central finite differences in float64.
 * Throws an AssertionError naming the op and the input on failure; returns the errors.
 */
export async function gradcheck(op: string, build: Build, opts: CheckOptions = {}): Promise<CheckReport> {
  const title = titleOf(op, opts.label);
  const eps = opts.eps ?? 1e-6, tol = opts.tol ?? 1e-6;
  const c = await Compiled.create(op, title, build, 'float64', opts.seed ?? 1, undefined, undefined, opts.optimization, opts.symbolic);
  try {
    const analytic = await c.analytic();
    const inputs: InputError[] = [];
    for (const name of c.wrtNames()) {
      const rel = compare(title, name, analytic.get(name)!, await c.numeric(name, eps), tol, 'finite differences');
      inputs.push({ name, rel });
    }
    return { op, label: opts.label ?? '', inputs, maxRel: Math.max(0, ...inputs.map((i) => i.rel)) };
  } finally {
    await c.release();
  }
}

/**
 * For ops without a float64 kernel: runs `build` in `dtype` (float32) and `reference`, an
 * independent float64 graph of the same function (same input names, shapes and order; same output
 * shapes), on the same input values. The reference's gradients are first checked against finite
 * differences; then the tested graph's analytic gradients must match them within `tol` (default 1e-5).
 */
export async function gradcompare(
  op: string,
  build: Build,
  reference: Build,
  opts: CheckOptions & { dtype?: 'float32' } = {},
): Promise<CheckReport> {
  const title = titleOf(op, opts.label);
  const seed = opts.seed ?? 1, tol = opts.tol ?? 1e-5;
  const tested = await Compiled.create(op, title, build, opts.dtype ?? 'float32', seed, undefined, undefined, opts.optimization);
  // Same input values and the same (rounded) loss weights R as the tested graph.
  const ref = await Compiled.create('', `${title} reference`, reference, 'float64', seed, tested.inputValues(), Math.fround, opts.optimization).catch((e) => {
    void tested.release();
    throw e;
  });
  try {
    if (ref.wrtNames().join() !== tested.wrtNames().join()) {
      throw new Error(`${title}: reference inputs (${ref.wrtNames()}) differ from the tested graph's (${tested.wrtNames()})`);
    }
    const a = await tested.analytic(), r = await ref.analytic();
    const inputs: InputError[] = [];
    for (const name of ref.wrtNames()) {
      compare(`${title} reference`, name, r.get(name)!, await ref.numeric(name, opts.eps ?? 1e-6), 1e-6, 'finite differences');
      inputs.push({ name, rel: compare(title, name, a.get(name)!, r.get(name)!, tol, 'float64 reference') });
    }
    return { op, label: opts.label ?? '', inputs, maxRel: Math.max(0, ...inputs.map((i) => i.rel)) };
  } finally {
    await tested.release();
    await ref.release();
  }
}
