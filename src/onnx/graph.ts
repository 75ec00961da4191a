import type { onnx } from 'onnx-proto';
import { DataType } from './dtype';
import { TensorData } from './tensor';

/**
 * The in-memory form of an ONNX graph that the builder, the composer, shape
 * inference and the autodiff work on. Plain data: nodes reference values by
 * name, as in ONNX itself. `io.ts` converts to and from ModelProto.
 */

/** A dimension: a size, or a symbolic name such as 'N' for the batch axis. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  dataType: DataType;
  /** undefined when the rank is unknown */
  shape?: Dim[];
}

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: TensorData }
  /** Subgraphs (If/Loop bodies) pass through untouched. */
  | { kind: 'graph'; value: onnx.IGraphProto };

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value: [...value] }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value: [...value] }),
  tensor: (value: TensorData): Attr => ({ kind: 'tensor', value }),
};

export interface Node {
  name: string;
  opType: string;
  domain?: string;
  /** '' marks an omitted optional input, as in ONNX */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

export interface Graph {
  name: string;
  /** default-domain opset version */
  opset: number;
  /** other domains the graph imports (e.g. com.microsoft) */
  extraOpsets?: Record<string, number>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers: Map<string, TensorData>;
  /** intermediate value types, when known */
  valueInfo: Map<string, ValueInfo>;
  /** free-form model metadata (ModelProto.metadata_props) */
  metadata?: Record<string, string>;
  docString?: string;
}

export function emptyGraph(name: string, opset = 17): Graph {
  return { name, opset, inputs: [], outputs: [], nodes: [], initializers: new Map(), valueInfo: new Map() };
}

export function getAttr(node: Node, name: string): Attr | undefined {
  return node.attrs[name];
}

export function attrInt(node: Node, name: string, fallback: number): number;
export function attrInt(node: Node, name: string): number | undefined;
export function attrInt(node: Node, name: string, fallback?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== 'int') throw new Error(`${describeNode(node)}: attribute ${name} is ${a.kind}, expected int`);
  return a.value;
}

export function attrFloat(node: Node, name: string, fallback: number): number;
export function attrFloat(node: Node, name: string): number | undefined;
export function attrFloat(node: Node, name: string, fallback?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== 'float' && a.kind !== 'int') throw new Error(`${describeNode(node)}: attribute ${name} is ${a.kind}, expected float`);
  return a.value;
}

export function attrInts(node: Node, name: string, fallback: number[]): number[];
export function attrInts(node: Node, name: string): number[] | undefined;
export function attrInts(node: Node, name: string, fallback?: number[]): number[] | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== 'ints') throw new Error(`${describeNode(node)}: attribute ${name} is ${a.kind}, expected ints`);
  return a.value;
}

export function attrString(node: Node, name: string, fallback: string): string;
export function attrString(node: Node, name: string): string | undefined;
export function attrString(node: Node, name: string, fallback?: string): string | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== 'string') throw new Error(`${describeNode(node)}: attribute ${name} is ${a.kind}, expected string`);
  return a.value;
}

export function describeNode(node: Node): string {
  return `${node.opType} node '${node.name || node.outputs[0]}'`;
}

/** Deep-enough copy: nodes and value lists are new, tensor data is shared (treat it as immutable). */
export function cloneGraph(g: Graph): Graph {
  return {
    ...g,
    extraOpsets: g.extraOpsets ? { ...g.extraOpsets } : undefined,
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    initializers: new Map(g.initializers),
    valueInfo: new Map([...g.valueInfo].map(([k, v]) => [k, { ...v, shape: v.shape && [...v.shape] }])),
    metadata: g.metadata ? { ...g.metadata } : undefined,
  };
}

/** Nodes ordered so that every input is produced before use; throws on cycles or missing producers. */
export function topologicalSort(g: Graph): Node[] {
  const available = new Set<string>(['', ...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  const producers = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producers.set(o, n);
  const done = new Set<Node>();
  const visiting = new Set<Node>();
  const order: Node[] = [];
  const visit = (n: Node) => {
    if (done.has(n)) return;
    if (visiting.has(n)) throw new Error(`graph '${g.name}' has a cycle through ${describeNode(n)}`);
    visiting.add(n);
    for (const i of n.inputs) {
      if (available.has(i)) continue;
      const p = producers.get(i);
      if (!p) throw new Error(`graph '${g.name}': ${describeNode(n)} reads '${i}', which nothing produces`);
      visit(p);
    }
    visiting.delete(n);
    done.add(n);
    order.push(n);
  };
  for (const n of g.nodes) visit(n);
  return order;
}

/** A name not yet used by any value, initializer or node in the graph. */
export class NameScope {
  private used = new Set<string>();
  private counters = new Map<string, number>();
  constructor(g?: Graph) {
    if (g) {
      for (const v of g.inputs) this.used.add(v.name);
      for (const v of g.outputs) this.used.add(v.name);
      for (const k of g.initializers.keys()) this.used.add(k);
      for (const n of g.nodes) {
        this.used.add(n.name);
        for (const o of n.outputs) this.used.add(o);
      }
    }
  }
  reserve(name: string): void {
    this.used.add(name);
  }
  has(name: string): boolean {
    return this.used.has(name);
  }
  fresh(base: string): string {
    if (!this.used.has(base)) {
      this.used.add(base);
      return base;
    }
    let i = this.counters.get(base) ?? 1;
    while (this.used.has(`${base}_${i}`)) i++;
    this.counters.set(base, i + 1);
    const name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}
