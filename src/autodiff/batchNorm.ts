import { UserError } from '../util/errors';
import { Graph, NameScope, Node, attr, attrFloat, cloneGraph, describeNode } from '../onnx/graph';
import { Emitter } from './emitter';

/**
 * Training-mode BatchNormalization for our own models, as standard ops.
 *
 * Each selected inference-form node `BatchNormalization(x, scale, bias,
 * running_mean, running_var)` is replaced by
 *
 *   μ = ReduceMean(x, [0, 2, …]);  σ² = ReduceMean((x − μ)², [0, 2, …])
 *   y = (x − μ) · (scale / √(σ² + ε)) + bias
 *
 * so the gradient engine differentiates through the batch statistics, and the
 * updated running statistics become extra graph outputs:
 *
 *   running_mean' = momentum · running_mean + (1 − momentum) · μ
 *   running_var'  = momentum · running_var  + (1 − momentum) · σ² · n/(n − 1)
 *
 * with ONNX's momentum convention (0.9 here is PyTorch's 0.1) and, as in
 * PyTorch, the unbiased batch variance in the running estimate (n = elements
 * per channel in the batch). The trainer feeds the running statistics in and
 * writes `updated` back after each step; the eval graph keeps the original
 * inference-form nodes.
 */
export interface RunningStat {
  /** initializer holding the running statistic */
  input: string;
  /** graph output with its value after this batch */
  updated: string;
  kind: 'mean' | 'var';
  /** the BatchNormalization node it belongs to */
  node: string;
}

export interface TrainingBatchNorm {
  graph: Graph;
  runningStats: RunningStat[];
}

export function toTrainingBatchNorm(g: Graph, opts: { nodes?: (n: Node) => boolean } = {}): TrainingBatchNorm {
  if (g.opset < 13) throw new UserError(`training BatchNorm: graph '${g.name}' uses opset ${g.opset}; 13 or later is needed`);
  const graph = cloneGraph(g);
  const selected = graph.nodes.filter((n) => n.opType === 'BatchNormalization' && (opts.nodes ?? (() => true))(n));
  const scope = new NameScope(graph);
  const e = new Emitter(graph, scope, graph.opset);
  const runningStats: RunningStat[] = [];
  const original = graph.nodes;
  graph.nodes = [];
  const replaced = new Set(selected);
  for (const n of original) {
    if (!replaced.has(n)) {
      graph.nodes.push(n);
      continue;
    }
    if (n.outputs.filter((o) => o).length > 1) throw new UserError(`training BatchNorm: ${describeNode(n)} is already in training form`);
    const [x, scale, bias, mean, variance] = n.inputs;
    const rank = e.rank(x);
    const channels = e.shape(scale)?.[0];
    if (typeof channels !== 'number') throw new UserError(`training BatchNorm: ${describeNode(n)} has no static channel count`);
    const eps = attrFloat(n, 'epsilon', 1e-5);
    const momentum = attrFloat(n, 'momentum', 0.9);
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const perChannel = [1, channels, ...new Array(rank - 2).fill(1)];
    e.prefix = `${n.name || n.outputs[0]}/train`;

    const mu = e.reduceMean(x, axes, true);
    const xc = e.sub(x, mu);
    const sigma2 = e.reduceMean(e.mul(xc, xc), axes, true);
    const inv = e.op('Reciprocal', [e.op('Sqrt', [e.add(sigma2, e.scalarLike(eps, x))])]);
    const k = e.mul(inv, e.op('Reshape', [scale, e.ints(perChannel)]));
    e.node('Add', [e.mul(xc, k), e.op('Reshape', [bias, e.ints(perChannel)])], {}, [n.outputs[0]]);

    // Running statistics (no gradient flows into them: they only feed outputs).
    const flat = (v: string) => e.op('Reshape', [v, e.ints([channels])]);
    const count = e.op('Cast', [e.op('Div', [e.op('Size', [x]), e.ints([channels])])], { to: attr.int(e.dataType(x)) });
    const unbiased = e.div(e.mul(flat(sigma2), count), e.sub(count, e.scalarLike(1, x)));
    const blend = (running: string, batch: string, kind: 'mean' | 'var') => {
      const updated = scope.fresh(`${running}.updated`);
      e.node('Add', [e.scale(running, momentum), e.scale(batch, 1 - momentum)], {}, [updated]);
      graph.outputs.push({ name: updated, dataType: e.dataType(running), shape: [channels] });
      runningStats.push({ input: running, updated, kind, node: n.name });
    };
    blend(mean, flat(mu), 'mean');
    blend(variance, unbiased, 'var');
  }
  // Emitted nodes were appended to graph.nodes in order, interleaved with the kept ones.
  return { graph, runningStats };
}
