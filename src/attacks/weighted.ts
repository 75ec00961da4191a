import { DataType } from '../onnx/dtype';
import { Graph, NameScope, attr, cloneGraph } from '../onnx/graph';
import { int64Vector } from '../onnx/tensor';
import { numClassesOf } from './margin';

/**
 * Appends s[n] = Σ_c w[n, c] · z[n, c], with the weights an input
 * `logit_weights` [N, K]. Its input gradient is Σ_c w_c ∇z_c: fed with
 * ∂L/∂z of any loss L computed from the logits outside the graph (the DLR
 * loss, objective.ts), one backward pass gives ∇_x L exactly, without that
 * loss having to exist as ONNX ops (DLR needs a sort).
 */
export const WEIGHTED_OUTPUT = 'weighted_logits';
export const LOGIT_WEIGHTS_INPUT = 'logit_weights';

export function appendWeightedLogits(forward: Graph, logits = 'logits'): { graph: Graph; output: string; weights: string } {
  const g = cloneGraph(forward);
  const k = numClassesOf(g, logits);
  const scope = new NameScope(g);
  if (scope.has(LOGIT_WEIGHTS_INPUT) || scope.has(WEIGHTED_OUTPUT)) {
    throw new Error(`graph '${g.name}' already uses the name '${LOGIT_WEIGHTS_INPUT}' or '${WEIGHTED_OUTPUT}'`);
  }
  scope.reserve(LOGIT_WEIGHTS_INPUT);
  scope.reserve(WEIGHTED_OUTPUT);
  const batch = g.inputs.find((v) => v.name === 'input')?.shape?.[0] ?? 'N';
  g.inputs.push({ name: LOGIT_WEIGHTS_INPUT, dataType: DataType.FLOAT, shape: [batch, k] });
  const product = scope.fresh('weighted/mul');
  g.nodes.push({ name: scope.fresh('weighted/Mul'), opType: 'Mul', inputs: [logits, LOGIT_WEIGHTS_INPUT], outputs: [product], attrs: {} });
  const axes = scope.fresh('weighted/axes');
  g.initializers.set(axes, int64Vector([1]));
  g.nodes.push({ name: scope.fresh('weighted/ReduceSum'), opType: 'ReduceSum', inputs: [product, axes], outputs: [WEIGHTED_OUTPUT], attrs: { keepdims: attr.int(1) } });
  g.outputs.push({ name: WEIGHTED_OUTPUT, dataType: DataType.FLOAT, shape: [batch, 1] });
  return { graph: g, output: WEIGHTED_OUTPUT, weights: LOGIT_WEIGHTS_INPUT };
}
