import { Graph, Node, ValueInfo } from '../onnx/graph';
import { TensorData } from '../onnx/tensor';

/** Small surgical edits the artifact generator and the exporter share. */

/** Turns initializers into graph inputs (same name, same type and dims), so their values are fed each run. */
export function initializersToInputs(g: Graph, names: readonly string[]): void {
  for (const n of names) {
    const t = g.initializers.get(n);
    if (!t) throw new Error(`graph '${g.name}' has no initializer '${n}'`);
    g.initializers.delete(n);
    g.inputs.push({ name: n, dataType: t.dataType, shape: [...t.dims] });
  }
}

/** Turns inputs into initializers holding the given values. */
export function inputsToInitializers(g: Graph, values: ReadonlyMap<string, TensorData>): void {
  for (const [n, t] of values) {
    const i = g.inputs.findIndex((v) => v.name === n);
    if (i < 0) throw new Error(`graph '${g.name}' has no input '${n}'`);
    g.inputs.splice(i, 1);
    g.initializers.set(n, t);
  }
}

/** Renames one value everywhere it appears (producer, consumers, graph outputs, value info). */
export function renameValue(g: Graph, from: string, to: string): void {
  for (const n of g.nodes) {
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
    n.outputs = n.outputs.map((o) => (o === from ? to : o));
  }
  for (const list of [g.inputs, g.outputs]) for (const v of list) if (v.name === from) v.name = to;
  const vi = g.valueInfo.get(from);
  if (vi) {
    g.valueInfo.delete(from);
    g.valueInfo.set(to, { ...vi, name: to });
  }
}

/**
 * Keeps only what the given outputs need: nodes, initializers and inputs that
 * nothing reads are dropped.
 */
export function pruneToOutputs(g: Graph, outputs: ValueInfo[]): void {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const needed = new Set<string>();
  const keep = new Set<Node>();
  const stack = outputs.map((o) => o.name);
  while (stack.length) {
    const v = stack.pop()!;
    if (needed.has(v)) continue;
    needed.add(v);
    const p = producer.get(v);
    if (p && !keep.has(p)) {
      keep.add(p);
      for (const i of p.inputs) if (i) stack.push(i);
    }
  }
  g.nodes = g.nodes.filter((n) => keep.has(n));
  g.outputs = outputs.map((o) => ({ ...o, shape: o.shape && [...o.shape] }));
  g.inputs = g.inputs.filter((v) => needed.has(v.name));
  for (const k of [...g.initializers.keys()]) if (!needed.has(k)) g.initializers.delete(k);
  for (const k of [...g.valueInfo.keys()]) if (!needed.has(k)) g.valueInfo.delete(k);
}
