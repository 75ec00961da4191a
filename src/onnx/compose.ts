import { Graph, NameScope, Node, ValueInfo, cloneGraph } from './graph';
import { TensorData } from './tensor';

/**
 * Wires one graph's outputs into another's inputs, producing one graph
 * (`f ∘ s`: compose(s, f, { connect: [['reconstruction', 'input']] })).
 * Names of the second graph that clash with the first are renamed with a
 * prefix. With `shareIdenticalInitializers`, initializers holding identical
 * data are shared, so a classifier composed twice (clean and defended path)
 * keeps one copy of its weights.
 */
export interface ComposeOptions {
  /** pairs [output of first, input of second] */
  connect: Array<[string, string]>;
  /** prefix for renamed names of the second graph (default: `<second.name>/`) */
  prefix?: string;
  /** name of the composed graph */
  name?: string;
  /**
   * Outputs of the result, named as in the source graphs (second's names
   * first, then first's). Default: the second graph's outputs.
   */
  outputs?: Array<{ from: 'first' | 'second'; name: string }>;
  /**
   * Reuse an initializer of the first graph when the second has one with
   * identical data (for inference graphs that apply one model twice). Off by
   * default: in a training graph two equal-valued tensors (zero biases) are
   * still different parameters.
   */
  shareIdenticalInitializers?: boolean;
  /** unconnected inputs of the second graph that have the same name as an input of the first become that input */
  shareInputs?: boolean;
}

export interface Composition {
  graph: Graph;
  /** how each name of the second graph is called in the result */
  renamed: Map<string, string>;
}

function sameTensor(a: TensorData, b: TensorData): boolean {
  if (a === b) return true;
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function composeGraphs(first: Graph, second: Graph, opts: ComposeOptions): Composition {
  const a = cloneGraph(first);
  const prefix = opts.prefix ?? `${second.name}/`;
  const scope = new NameScope(a);
  const firstOutputs = new Set(a.outputs.map((o) => o.name));
  const firstValues = new Set<string>([...a.inputs.map((v) => v.name), ...a.initializers.keys(), ...a.nodes.flatMap((n) => n.outputs)]);

  const renamed = new Map<string, string>();
  for (const [out, inp] of opts.connect) {
    if (!firstOutputs.has(out)) throw new Error(`compose: '${out}' is not an output of '${first.name}' (outputs: ${[...firstOutputs].join(', ')})`);
    if (!second.inputs.some((v) => v.name === inp)) throw new Error(`compose: '${inp}' is not an input of '${second.name}' (inputs: ${second.inputs.map((v) => v.name).join(', ')})`);
    renamed.set(inp, out);
  }
  const firstInputs = new Map(a.inputs.map((v) => [v.name, v]));
  const newInputs: ValueInfo[] = [];
  for (const v of second.inputs) {
    if (renamed.has(v.name)) continue;
    if (opts.shareInputs && firstInputs.has(v.name)) {
      renamed.set(v.name, v.name);
      continue;
    }
    const n = scope.has(v.name) ? scope.fresh(prefix + v.name) : (scope.reserve(v.name), v.name);
    renamed.set(v.name, n);
    newInputs.push({ ...v, name: n });
  }
  // Index the first graph's initializers by shape so identical data is found whatever its name.
  const byShape = new Map<string, string[]>();
  for (const [name, t] of a.initializers) {
    const key = `${t.dataType}:${t.dims.join('x')}`;
    byShape.set(key, [...(byShape.get(key) ?? []), name]);
  }
  for (const [name, t] of second.initializers) {
    const candidates = opts.shareIdenticalInitializers ? byShape.get(`${t.dataType}:${t.dims.join('x')}`) ?? [] : [];
    const twin = candidates.find((c) => sameTensor(a.initializers.get(c)!, t));
    if (twin !== undefined) {
      renamed.set(name, twin);
      continue;
    }
    const n = scope.has(name) || firstValues.has(name) ? scope.fresh(prefix + name) : (scope.reserve(name), name);
    renamed.set(name, n);
    a.initializers.set(n, t);
  }
  const map = (name: string) => (name === '' ? '' : renamed.get(name) ?? name);
  const nodes: Node[] = [];
  for (const n of second.nodes) {
    for (const o of n.outputs) {
      if (!o) continue;
      renamed.set(o, scope.has(o) ? scope.fresh(prefix + o) : (scope.reserve(o), o));
    }
  }
  for (const n of second.nodes) {
    nodes.push({
      ...n,
      name: scope.fresh(scope.has(n.name) ? prefix + n.name : n.name),
      inputs: n.inputs.map(map),
      outputs: n.outputs.map(map),
      attrs: { ...n.attrs },
    });
  }
  a.nodes.push(...nodes);
  a.inputs.push(...newInputs);
  for (const [k, v] of second.valueInfo) a.valueInfo.set(map(k), { ...v, name: map(k) });
  a.opset = Math.max(a.opset, second.opset);
  a.extraOpsets = { ...(second.extraOpsets ?? {}), ...(a.extraOpsets ?? {}) };
  if (Object.keys(a.extraOpsets).length === 0) a.extraOpsets = undefined;
  a.name = opts.name ?? `${second.name}_of_${first.name}`;

  const wanted = opts.outputs ?? second.outputs.map((o) => ({ from: 'second' as const, name: o.name }));
  a.outputs = wanted.map(({ from, name }) => {
    const src = from === 'first' ? first.outputs.find((o) => o.name === name) : second.outputs.find((o) => o.name === name);
    if (!src) throw new Error(`compose: '${name}' is not an output of the ${from} graph`);
    return { ...src, name: from === 'first' ? name : map(name) };
  });
  return { graph: a, renamed };
}

/** Convenience for the common case: `outer(inner(x))` through one named value. */
export function chain(inner: Graph, outer: Graph, innerOutput: string, outerInput: string, name?: string): Graph {
  return composeGraphs(inner, outer, { connect: [[innerOutput, outerInput]], name }).graph;
}
