import { Graph, NameScope, cloneGraph } from '../onnx/graph';
import { TensorData } from '../onnx/tensor';

/**
 * Adds a copy of a (frozen) classifier applied to the model's clean input,
 * for the label-free stage-2 loss KL(f(x) ‖ f(s(x))). The branch reads no
 * trainable parameter, so the gradient engine computes no backward pass for
 * it; its weights are shared with identical initializers already in the model
 * (the f inside f∘s), so it costs one extra forward pass of f and no memory.
 */
export interface ReferenceBranch {
  graph: Graph;
  /** the value holding f(x) */
  reference: string;
}

export function addReferenceBranch(
  model: Graph,
  classifier: Graph,
  /** doNotShare: initializers of the model the branch must not read (trainable ones: it would then train the reference too) */
  opts: { input?: string; output?: string; prefix?: string; doNotShare?: ReadonlySet<string> } = {},
): ReferenceBranch {
  const g = cloneGraph(model);
  const input = opts.input ?? model.inputs[0]?.name;
  if (!input || !model.inputs.some((v) => v.name === input)) throw new Error(`reference branch: '${input}' is not an input of '${model.name}'`);
  if (classifier.inputs.length !== 1) throw new Error(`reference branch: classifier '${classifier.name}' must have one input, has ${classifier.inputs.length}`);
  const clsOut = opts.output ?? classifier.outputs[0]?.name;
  if (!classifier.outputs.some((o) => o.name === clsOut)) throw new Error(`reference branch: '${clsOut}' is not an output of '${classifier.name}'`);
  const prefix = opts.prefix ?? 'reference/';
  const scope = new NameScope(g);

  const rename = new Map<string, string>([[classifier.inputs[0].name, input], ['', '']]);
  const byContent = contentIndex(new Map([...g.initializers].filter(([n]) => !opts.doNotShare?.has(n))));
  for (const [name, t] of classifier.initializers) {
    const shared = byContent.find(t);
    if (shared) {
      rename.set(name, shared);
    } else {
      const n = scope.fresh(prefix + name);
      g.initializers.set(n, t);
      rename.set(name, n);
    }
  }
  for (const node of classifier.nodes) for (const o of node.outputs) if (o) rename.set(o, scope.fresh(prefix + o));
  for (const node of classifier.nodes) {
    g.nodes.push({
      ...node,
      name: scope.fresh(prefix + node.name),
      inputs: node.inputs.map((i) => {
        const r = rename.get(i);
        if (r === undefined) throw new Error(`reference branch: classifier node '${node.name}' reads '${i}', which nothing produces`);
        return r;
      }),
      outputs: node.outputs.map((o) => rename.get(o)!),
      attrs: { ...node.attrs },
    });
  }
  for (const [k, v] of classifier.valueInfo) if (rename.has(k)) g.valueInfo.set(rename.get(k)!, { ...v, name: rename.get(k)! });
  return { graph: g, reference: rename.get(clsOut!)! };
}

/** Finds an initializer with identical type, dims and bytes. */
function contentIndex(inits: Map<string, TensorData>) {
  const buckets = new Map<string, Array<[string, TensorData]>>();
  const key = (t: TensorData) => `${t.dataType}:${t.dims.join('x')}`;
  for (const [n, t] of inits) {
    const k = key(t);
    if (!buckets.has(k)) buckets.set(k, []);
    buckets.get(k)!.push([n, t]);
  }
  const bytes = (t: TensorData) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return {
    find(t: TensorData): string | undefined {
      for (const [n, u] of buckets.get(key(t)) ?? []) if (u === t || bytes(u).equals(bytes(t))) return n;
      return undefined;
    },
  };
}
