import { UserError } from '../util/errors';
import { Graph, NameScope, Node, attr, attrFloat, attrInt, cloneGraph, describeNode } from '../onnx/graph';
import { Emitter } from './emitter';

/**
 * Training-mode BatchNormalization for our own models, in standard ops.
 *
 * Each selected inference-form node `BatchNormalization(x, scale, bias,
 * running_mean, running_var)` is rewritten to normalise with the batch
 * statistics, computed as
 *
 *   μ  = ReduceMean(x, [0, 2, …])            (keepdims)
 *   xc = x − μ
 *   σ² = ReduceMean(xc · xc, [0, 2, …])      (biased, as PyTorch normalises)
 *   y  = BatchNormalization(x, scale, bias, μ, σ²)   (inference form: one fused op)
 *
 * The gradient rule of BatchNormalization recognises this pattern and
 * applies the fused batch-norm backward formula (ops/batchNormalization.ts)
 * instead of differentiating the statistics op by op. The running statistics
 * are updated by separate per-channel ops and become graph outputs:
 *
 *   running_mean' = momentum · running_mean + (1 − momentum) · μ
 *   running_var'  = momentum · running_var  + (1 − momentum) · σ² · n/(n − 1)
 *
 * with ONNX's momentum convention (0.9 here is PyTorch's 0.1) and, as in
 * PyTorch, the unbiased batch variance in the running estimate (n = elements
 * per channel in the batch). The trainer feeds the running statistics in and
 * writes `updated` back after each step; the eval graph keeps the original
 * inference-form nodes.
 *
 * (ONNX's own training_mode=1 is not used: onnxruntime-node 1.30's CPU kernel
 * returned outputs that were not normalised with the batch statistics for
 * some inputs.)
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
  const selected = new Set(graph.nodes.filter((n) => n.opType === 'BatchNormalization' && (opts.nodes ?? (() => true))(n)));
  const scope = new NameScope(graph);
  const e = new Emitter(graph, scope, graph.opset);
  const runningStats: RunningStat[] = [];
  const original = graph.nodes;
  graph.nodes = [];
  for (const n of original) {
    if (!selected.has(n)) {
      graph.nodes.push(n);
      continue;
    }
    if (n.outputs.filter((o) => o).length > 1 || attrInt(n, 'training_mode', 0) === 1) throw new UserError(`training BatchNorm: ${describeNode(n)} is already in training form`);
    const [x, scale, bias, mean, variance] = n.inputs;
    const rank = e.rank(x);
    const channels = e.shape(scale)?.[0];
    if (typeof channels !== 'number') throw new UserError(`training BatchNorm: ${describeNode(n)} has no static channel count`);
    const momentum = attrFloat(n, 'momentum', 0.9);
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    e.prefix = `${n.name || n.outputs[0]}/train`;
    const mu = e.reduceMean(x, axes, true);
    const xc = e.sub(x, mu);
    const sigma2 = e.reduceMean(e.mul(xc, xc), axes, true);
    const flat = (v: string) => e.op('Reshape', [v, e.ints([channels])]);
    const batchMean = flat(mu);
    const batchVar = flat(sigma2);
    e.node('BatchNormalization', [x, scale, bias, batchMean, batchVar], { epsilon: attr.float(attrFloat(n, 'epsilon', 1e-5)) }, [n.outputs[0]]);
    graph.nodes[graph.nodes.length - 1].name = n.name;

    const count = e.op('Cast', [e.op('Div', [e.op('Size', [x]), e.ints([channels])])], { to: attr.int(e.dataType(x)) });
    const unbiased = e.div(e.mul(batchVar, count), e.sub(count, e.scalarLike(1, x)));
    const blend = (running: string, batch: string, kind: 'mean' | 'var') => {
      const updated = scope.fresh(`${running}.updated`);
      e.node('Add', [e.scale(running, momentum), e.scale(batch, 1 - momentum)], {}, [updated]);
      graph.outputs.push({ name: updated, dataType: e.dataType(running), shape: [channels] });
      runningStats.push({ input: running, updated, kind, node: n.name });
    };
    blend(mean, batchMean, 'mean');
    blend(variance, unbiased, 'var');
  }
  return { graph, runningStats };
}
