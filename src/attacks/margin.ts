import { DataType } from '../onnx/dtype';
import { Attr, Graph, NameScope, attr, cloneGraph } from '../onnx/graph';
import { inferShapes } from '../onnx/shapes';
import { TensorData, floatTensor, int64Vector } from '../onnx/tensor';
import { supportedOps } from '../autodiff';

/**
 * Appends the Carlini-Wagner margin as standard ONNX ops, so the gradient
 * engine can differentiate it like any other loss:
 *
 *   margin[n] = z[n, label] − max_{i ≠ label} z[n, i]
 *
 * The label arrives as a one-hot float mask `label_mask` [N, K] (a float
 * input keeps every op on the differentiable path standard: Mul, ReduceSum,
 * Sub, Reshape, MaxPool). The max over the other classes is taken after
 * pushing the label's logit down by a large constant, with one MaxPool over
 * the class axis (or, where the engine has no MaxPool rule, a chain of
 * two-input Max over the split classes); either way its gradient goes to the
 * arg-max class only, as the margin's does.
 */
export const MARGIN_OUTPUT = 'margin';
export const LABEL_MASK_INPUT = 'label_mask';

/** Push-down for the label's logit: far below any logit a classifier produces. */
const EXCLUDE = 1e9;

export function numClassesOf(g: Graph, logits: string): number {
  const declared = g.outputs.find((o) => o.name === logits)?.shape;
  const shape = declared && typeof declared[1] === 'number' ? declared : inferShapes(g).get(logits)?.shape;
  const k = shape?.[1];
  if (shape?.length !== 2 || typeof k !== 'number') {
    throw new Error(`graph '${g.name}': '${logits}' must have a static shape [N, K], found [${shape?.join(', ') ?? 'unknown'}]`);
  }
  return k;
}

export function appendMargin(forward: Graph, logits = 'logits'): { graph: Graph; margin: string; mask: string } {
  const g = cloneGraph(forward);
  const k = numClassesOf(g, logits);
  const scope = new NameScope(g);
  if (scope.has(LABEL_MASK_INPUT) || scope.has(MARGIN_OUTPUT)) {
    throw new Error(`graph '${g.name}' already uses the name '${LABEL_MASK_INPUT}' or '${MARGIN_OUTPUT}'`);
  }
  scope.reserve(LABEL_MASK_INPUT);
  scope.reserve(MARGIN_OUTPUT);
  const batch = g.inputs.find((v) => v.name === 'input')?.shape?.[0] ?? 'N';
  g.inputs.push({ name: LABEL_MASK_INPUT, dataType: DataType.FLOAT, shape: [batch, k] });

  const constant = (base: string, t: TensorData) => {
    const n = scope.fresh(base);
    g.initializers.set(n, t);
    return n;
  };
  const node = (opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string) => {
    const o = out ?? scope.fresh(`margin/${opType.toLowerCase()}`);
    g.nodes.push({ name: scope.fresh(`margin/${opType}`), opType, inputs, outputs: [o], attrs });
    return o;
  };

  const picked = node('Mul', [logits, LABEL_MASK_INPUT]);
  const real =
    g.opset >= 13
      ? node('ReduceSum', [picked, constant('margin/axes', int64Vector([1]))], { keepdims: attr.int(0) })
      : node('ReduceSum', [picked], { axes: attr.ints([1]), keepdims: attr.int(0) });
  const push = node('Mul', [LABEL_MASK_INPUT, constant('margin/exclude', floatTensor([], [EXCLUDE]))]);
  const others = node('Sub', [logits, push]);
  let other: string;
  if (supportedOps().includes('MaxPool')) {
    const rows = node('Reshape', [others, constant('margin/rows', int64Vector([-1, 1, 1, k]))]);
    const pooled = node('MaxPool', [rows], { kernel_shape: attr.ints([1, k]) });
    other = node('Reshape', [pooled, constant('margin/flat', int64Vector([-1]))]);
  } else {
    const parts = Array.from({ length: k }, () => scope.fresh('margin/class'));
    g.nodes.push({ name: scope.fresh('margin/Split'), opType: 'Split', inputs: [others], outputs: parts, attrs: g.opset >= 18 ? { axis: attr.int(1), num_outputs: attr.int(k) } : { axis: attr.int(1) } });
    let best = parts[0];
    for (const p of parts.slice(1)) best = node('Max', [best, p]);
    other = node('Reshape', [best, constant('margin/flat', int64Vector([-1]))]);
  }
  node('Sub', [real, other], {}, MARGIN_OUTPUT);
  g.outputs.push({ name: MARGIN_OUTPUT, dataType: DataType.FLOAT, shape: [batch] });
  return { graph: g, margin: MARGIN_OUTPUT, mask: LABEL_MASK_INPUT };
}
