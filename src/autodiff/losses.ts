import { UserError } from '../util/errors';
import { DataType } from '../onnx/dtype';
import { Dim, Graph, NameScope, attr, cloneGraph } from '../onnx/graph';
import { Emitter } from './emitter';

/**
 * Losses appended to a graph as standard ONNX ops, each per sample ([N]), so
 * the gradient engine differentiates them like the model itself and callers
 * choose the reduction (sum for attacks, mean for training). The input graph
 * is not modified.
 */
export interface LossOnGraph {
  graph: Graph;
  /** per-sample loss [N] */
  loss: string;
}

function start(g: Graph, what: string): { graph: Graph; e: Emitter; scope: NameScope } {
  if (g.opset < 13) throw new UserError(`${what}: graph '${g.name}' uses opset ${g.opset}; losses need opset 13 or later`);
  const graph = cloneGraph(g);
  const scope = new NameScope(graph);
  const e = new Emitter(graph, scope, graph.opset);
  e.prefix = what;
  return { graph, e, scope };
}

function requireValue(e: Emitter, v: string, what: string): Dim[] {
  const s = e.shape(v);
  if (!e.info(v)) throw new UserError(`${what}: '${v}' is not a value of the graph`);
  if (!s) throw new UserError(`${what}: the shape of '${v}' cannot be inferred`);
  return s;
}

/** The output name `loss` when free, else a fresh variant. */
function finalName(scope: NameScope): string {
  return scope.fresh('loss');
}

/**
 * Softmax cross-entropy with integer class labels, per sample:
 * loss[n] = −log softmax(logits[n])[labels[n]]. `labels` becomes an int64 [N]
 * graph input unless the graph already has a value of that name.
 */
export function appendCrossEntropy(g: Graph, logits: string, labels = 'labels'): LossOnGraph & { labels: string } {
  const what = 'cross-entropy';
  const { graph, e, scope } = start(g, what);
  const shape = requireValue(e, logits, what);
  if (shape.length !== 2) throw new UserError(`${what}: '${logits}' has shape [${shape.join(', ')}]; logits must be [N, K]`);
  if (!e.info(labels)) {
    scope.reserve(labels);
    const v = { name: labels, dataType: DataType.INT64, shape: [shape[0]] };
    graph.inputs.push(v);
    e.declare(v);
  }
  const labelInfo = graph.inputs.find((v) => v.name === labels) ?? e.info(labels);
  if (labelInfo && labelInfo.dataType !== DataType.INT64) throw new UserError(`${what}: labels '${labels}' must be int64`);
  const lsm = e.op('LogSoftmax', [logits], { axis: attr.int(1) });
  const picked = e.op('GatherElements', [lsm, e.unsqueeze(labels, [1])], { axis: attr.int(1) });
  const loss = finalName(scope);
  e.node('Neg', [e.squeeze(picked, [1])], {}, [loss]);
  return { graph, loss, labels };
}

/** Mean squared error per sample: the mean of (prediction − target)² over the non-batch axes. */
export function appendMse(g: Graph, prediction: string, target: string): LossOnGraph {
  const what = 'mse';
  const { graph, e, scope } = start(g, what);
  const shape = requireValue(e, prediction, what);
  requireValue(e, target, what);
  const d = e.sub(prediction, target);
  const sq = e.mul(d, d);
  const loss = finalName(scope);
  const axes = Array.from({ length: shape.length - 1 }, (_, i) => i + 1);
  if (axes.length === 0) e.node('Identity', [sq], {}, [loss]);
  else if (graph.opset >= 18) e.node('ReduceMean', [sq, e.ints(axes)], { keepdims: attr.int(0) }, [loss]);
  else e.node('ReduceMean', [sq], { axes: attr.ints(axes), keepdims: attr.int(0) }, [loss]);
  return { graph, loss };
}

/**
 * KL(softmax(P) ‖ softmax(Q)) per sample = Σ_k p_k (log p_k − log q_k), from
 * logits [N, K]. P is usually the reference (a clean prediction), Q the model
 * being trained; gradients flow into both unless one is stopped.
 */
export function appendKl(g: Graph, logitsP: string, logitsQ: string): LossOnGraph {
  const what = 'kl';
  const { graph, e, scope } = start(g, what);
  for (const v of [logitsP, logitsQ]) {
    const s = requireValue(e, v, what);
    if (s.length !== 2) throw new UserError(`${what}: '${v}' has shape [${s.join(', ')}]; logits must be [N, K]`);
  }
  const lp = e.op('LogSoftmax', [logitsP], { axis: attr.int(1) });
  const lq = e.op('LogSoftmax', [logitsQ], { axis: attr.int(1) });
  const terms = e.mul(e.op('Exp', [lp]), e.sub(lp, lq));
  const loss = finalName(scope);
  e.node('ReduceSum', [terms, e.ints([1])], { keepdims: attr.int(0) }, [loss]);
  return { graph, loss };
}

/**
 * TRADES (Zhang et al. 2019), per sample: CE(softmax(clean), y) + β·KL(softmax(clean) ‖ softmax(adversarial)),
 * clean and adversarial logits [N, K] of the same images. Gradients flow into both, as in the paper.
 */
export function appendTrades(g: Graph, logitsClean: string, logitsAdversarial: string, beta: number, labels = 'labels'): LossOnGraph & { labels: string } {
  const what = 'trades';
  if (!(beta >= 0 && Number.isFinite(beta))) throw new UserError(`${what}: β must be a non-negative number, got ${beta}`);
  const ce = appendCrossEntropy(g, logitsClean, labels);
  const kl = appendKl(ce.graph, logitsClean, logitsAdversarial);
  // The parts' outputs are free names taken as 'loss', 'loss_1'…; renamed before the sum takes the plain one.
  const parts = kl.graph;
  const names = new NameScope(parts);
  const rename = (from: string) => {
    const to = names.fresh(`${what}/${from}`);
    for (const n of parts.nodes) {
      n.inputs = n.inputs.map((i) => (i === from ? to : i));
      n.outputs = n.outputs.map((o) => (o === from ? to : o));
    }
    const info = parts.valueInfo.get(from);
    parts.valueInfo.delete(from);
    if (info) parts.valueInfo.set(to, { ...info, name: to });
    return to;
  };
  const ceLoss = rename(ce.loss);
  const klLoss = rename(kl.loss);
  const { graph, e, scope } = start(parts, what);
  const weighted = e.mul(klLoss, e.scalarLike(beta, klLoss));
  const loss = finalName(scope);
  e.node('Add', [ceLoss, weighted], {}, [loss]);
  return { graph, loss, labels: ce.labels };
}
