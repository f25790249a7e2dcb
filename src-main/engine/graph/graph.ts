// The graph under construction: tensors with dtype and shape, nodes in creation (= topological)
// order, graph inputs, initializers and outputs. Op constructors live in ops.ts; this file only
// keeps the bookkeeping, so that autodiff and the ONNX writer read one simple structure.

import { type DType, type Dim, type Shape, DTYPE_BITS, numel, shapeToString } from './dtype.js';

export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: ConstantData };

/** Attribute helpers: ONNX distinguishes int and float attributes, JS numbers do not. */
export const attr = {
  i: (value: number): AttrValue => ({ type: 'int', value }),
  f: (value: number): AttrValue => ({ type: 'float', value }),
  ints: (value: readonly number[]): AttrValue => ({ type: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ type: 'floats', value }),
  s: (value: string): AttrValue => ({ type: 'string', value }),
  t: (value: ConstantData): AttrValue => ({ type: 'tensor', value }),
};

/** Raw little-endian bytes of a tensor, held in memory. */
export interface ConstantData {
  dtype: DType;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** Initializer bytes that already sit in a file (a quantized weight cache, say): never loaded into JS. */
export interface FileSlice {
  path: string;
  offset: number;
  length: number;
}

/**
 * Initializer bytes produced only when the model is written (a frozen weight read from its
 * checkpoint), so that a big model's weights pass through JS one tensor at a time and no graph
 * holds them all. `read` may be called more than once (each serialization calls it).
 */
export interface LazyBytes {
  length: number;
  read: () => Uint8Array;
}

export type InitializerData =
  | { kind: 'inline'; bytes: Uint8Array }
  | ({ kind: 'file' } & FileSlice)
  | ({ kind: 'lazy' } & LazyBytes);

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    /** The node that computes it; null for graph inputs and initializers. */
    readonly producer: Node | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${shapeToString(this.shape)}`;
  }
}

export interface Node {
  readonly name: string;
  readonly op: string;
  readonly domain: string; // '' for the default ONNX domain, 'com.microsoft' for contrib ops
  readonly inputs: readonly (Tensor | null)[]; // null = omitted optional input
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** The checkpoint segment the node belongs to, if any (recomputed in the backward). */
  readonly segment: number | null;
}

export interface Initializer {
  tensor: Tensor;
  data: InitializerData;
}

/** A run of nodes whose activations are recomputed in the backward instead of kept. */
export interface Segment {
  id: number;
  name: string;
  firstNode: number; // index into graph.nodes
  endNode: number; // exclusive
  /** The enclosing segment of a nested one: its nodes are recomputed again inside the outer recompute. */
  parent: number | null;
}

export interface OutputSpec {
  dtype: DType;
  shape: Shape;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  readonly initializers = new Map<string, Initializer>();
  readonly segments: Segment[] = [];
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly scopes: string[] = [];
  private openSegment: Segment | null = null;

  constructor(readonly name = 'finch') {}

  /** Runs `fn` with node names prefixed by `name/` (deterministic names: "layers.3/attn/MatMul_2"). */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** Like scope(), but replaces the whole scope path (autodiff names nodes "<node>/grad/..."). */
  atScope<T>(path: string, fn: () => T): T {
    const saved = this.scopes.splice(0, this.scopes.length, path);
    try {
      return fn();
    } finally {
      this.scopes.splice(0, this.scopes.length, ...saved);
    }
  }

  /** A name unique in this graph, derived from the current scope and `base`. */
  uniqueName(base: string): string {
    const prefix = this.scopes.length ? `${this.scopes.join('/')}/` : '';
    const stem = prefix + base;
    if (!this.names.has(stem) && !/_\d+$/.test(base)) {
      this.names.add(stem);
      return stem;
    }
    let k = this.counters.get(stem) ?? 1;
    while (this.names.has(`${stem}_${k}`)) k++;
    this.counters.set(stem, k + 1);
    const name = `${stem}_${k}`;
    this.names.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: the name "${name}" is already used`);
    this.names.add(name);
    return name;
  }

  input(name: string, dtype: DType, shape: Shape): Tensor {
    const t = new Tensor(this, this.claim(name), dtype, [...shape], null);
    this.inputs.push(t);
    return t;
  }

  /** A named initializer (a frozen weight). Bytes are little-endian, as ONNX raw_data. */
  initializer(name: string, dtype: DType, shape: readonly number[], data: InitializerData): Tensor {
    const expected = Math.ceil((numel(shape) * DTYPE_BITS[dtype]) / 8);
    const got = data.kind === 'inline' ? data.bytes.byteLength : data.length;
    if (got !== expected) {
      throw new Error(`initializer ${name}: ${dtype}${shapeToString(shape)} needs ${expected} bytes, got ${got}`);
    }
    const t = new Tensor(this, this.claim(name), dtype, [...shape], null);
    this.initializers.set(t.name, { tensor: t, data });
    return t;
  }

  /** An unnamed constant (shape vectors, scalars): stored as an initializer with a generated name. */
  constant(c: ConstantData, base = 'const'): Tensor {
    const t = new Tensor(this, this.uniqueName(base), c.dtype, [...c.shape], null);
    this.initializers.set(t.name, { tensor: t, data: { kind: 'inline', bytes: c.bytes } });
    return t;
  }

  isInitializer(t: Tensor): boolean {
    return this.initializers.has(t.name);
  }

  /** Appends a node; output tensors get the node's name plus an index. */
  addNode(
    op: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly OutputSpec[],
    attrs: Record<string, AttrValue> = {},
    domain = '',
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new Error(`${op}: input ${t.name} belongs to another graph`);
    }
    const name = this.uniqueName(op);
    const outs: Tensor[] = [];
    const node: Node = {
      name,
      op,
      domain,
      inputs: [...inputs],
      outputs: outs,
      attrs,
      segment: this.openSegment?.id ?? null,
    };
    outputs.forEach((o, i) => {
      const tname = outputs.length === 1 ? `${name}:0` : `${name}:${i}`;
      this.names.add(tname);
      outs.push(new Tensor(this, tname, o.dtype, [...o.shape], node));
    });
    this.nodes.push(node);
    return outs;
  }

  /**
   * Re-creates node `n` of another graph here, under its own node and output names, reading
   * `inputs` (tensors of this graph): graph rewrites that keep every name they do not replace
   * (onnx/lower.ts). The copy belongs to no checkpoint segment.
   */
  copyNode(n: Node, inputs: readonly (Tensor | null)[]): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new Error(`${n.op}: input ${t.name} belongs to another graph`);
    }
    this.names.add(n.name);
    const outs: Tensor[] = [];
    const node: Node = { name: n.name, op: n.op, domain: n.domain, inputs: [...inputs], outputs: outs, attrs: n.attrs, segment: null };
    for (const o of n.outputs) outs.push(new Tensor(this, this.claim(o.name), o.dtype, o.shape, node));
    this.nodes.push(node);
    return outs;
  }

  /** Marks a graph output; `name` renames it through an Identity node so callers get stable names. */
  output(t: Tensor, name?: string): Tensor {
    let out = t;
    if (name !== undefined && name !== t.name) {
      this.claim(name);
      const node: Node = { name: `${name}/Identity`, op: 'Identity', domain: '', inputs: [t], outputs: [], attrs: {}, segment: null };
      out = new Tensor(this, name, t.dtype, t.shape, node);
      (node.outputs as Tensor[]).push(out);
      this.nodes.push(node);
    }
    this.outputs.push(out);
    return out;
  }

  /**
   * Gradient checkpointing: nodes created inside `fn` form a segment whose activations the backward
   * recomputes from the segment's inputs instead of keeping them alive (autodiff/grad.ts). A segment
   * opened inside another is nested: the outer recompute runs through it, and its own backward
   * recomputes it once more, so its activations (one attention chunk's scores, say) are live only
   * during that backward.
   */
  checkpoint<T>(name: string, fn: () => T): T {
    const parent = this.openSegment;
    const seg: Segment = { id: this.segments.length, name: parent ? `${parent.name}/${name}` : name, firstNode: this.nodes.length, endNode: -1, parent: parent?.id ?? null };
    this.segments.push(seg);
    this.openSegment = seg;
    try {
      return fn();
    } finally {
      this.openSegment = parent;
      seg.endNode = this.nodes.length;
    }
  }

  /** Builds nodes outside any open checkpoint segment (the backward uses this). */
  outsideSegments<T>(fn: () => T): T {
    const open = this.openSegment;
    this.openSegment = null;
    try {
      return fn();
    } finally {
      this.openSegment = open;
    }
  }
}

/** Dims are equal when both are the same number or the same symbol. */
export const sameDim = (a: Dim, b: Dim): boolean => a === b;
