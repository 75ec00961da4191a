import { UserError } from '../util/errors';
import { Graph, NameScope, Node, attr, attrFloat, cloneGraph, describeNode } from '../onnx/graph';
import { Emitter } from './emitter';
import { GRADIENT_OPSET, upgradeBlocker } from './opset';

/**
 * Training-mode BatchNormalization for our own models.
 *
 * Each selected inference-form node `BatchNormalization(x, scale, bias,
 * running_mean, running_var)` becomes the standard op in training mode
 * (opset 14+), which normalises with the batch statistics, with momentum 0 so
 * that its two extra outputs are exactly this batch's mean μ and (biased)
 * variance σ²:
 *
 *   y, μ, σ² = BatchNormalization(x, scale, bias, running_mean, running_var, training_mode=1, momentum=0)
 *
 * The gradient rule for this form (ops/batchNormalization.ts) reads μ and σ²
 * from those outputs instead of recomputing them. The running statistics are
 * updated by separate per-channel ops and become graph outputs:
 *
 *   running_mean' = momentum · running_mean + (1 − momentum) · μ
 *   running_var'  = momentum · running_var  + (1 − momentum) · σ² · n/(n − 1)
 *
 * with ONNX's momentum convention (0.9 here is PyTorch's 0.1) and, as in
 * PyTorch, the unbiased batch variance in the running estimate (n = elements
 * per channel in the batch). The trainer feeds the running statistics in and
 * writes `updated` back after each step; the eval graph keeps the original
 * inference-form nodes. The graph's opset is raised to 17 if it is older.
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
  if (selected.size === 0) return { graph, runningStats: [] };
  if (graph.opset < GRADIENT_OPSET) {
    const blocker = upgradeBlocker(graph, graph.opset, GRADIENT_OPSET);
    if (blocker) throw new UserError(`training BatchNorm needs opset 14+, and graph '${graph.name}' cannot be raised: ${blocker}`);
    graph.opset = GRADIENT_OPSET;
  }
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
    if (n.outputs.filter((o) => o).length > 1) throw new UserError(`training BatchNorm: ${describeNode(n)} is already in training form`);
    const [x, , , mean, variance] = n.inputs;
    const channels = e.shape(n.inputs[1])?.[0];
    if (typeof channels !== 'number') throw new UserError(`training BatchNorm: ${describeNode(n)} has no static channel count`);
    const momentum = attrFloat(n, 'momentum', 0.9);
    e.prefix = `${n.name || n.outputs[0]}/train`;
    const batchMean = scope.fresh(`${n.name || n.outputs[0]}/batch_mean`);
    const batchVar = scope.fresh(`${n.name || n.outputs[0]}/batch_var`);
    e.node('BatchNormalization', n.inputs, { ...n.attrs, momentum: attr.float(0), training_mode: attr.int(1) }, [n.outputs[0], batchMean, batchVar]);
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
