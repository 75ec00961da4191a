import { DataType } from '../onnx/dtype';
import { Attr, Graph, NameScope, attr, cloneGraph } from '../onnx/graph';
import { inferShapes } from '../onnx/shapes';
import { TensorData, floatTensor, int64Vector } from '../onnx/tensor';

/**
 * Appends the Carlini-Wagner margin as standard ONNX ops, so the gradient
 * engine can differentiate it like any other loss:
 *
 *   margin[n] = z[n, label] − max_{i ≠ label} z[n, i]
 *
 * The label arrives as a one-hot float mask `label_mask` [N, K], so every
 * op on the differentiable path is a plain elementwise or reduction op (Mul,
 * ReduceSum, Sub, Split, Max). The max over the other classes is taken after
 * pushing the label's logit down by a large constant; Max's gradient goes to
 * the arg-max class only, as the margin's does. The margin is [N, 1] (one
 * value per image).
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
  // Opset 13 moved reduction and squeeze axes from attributes to inputs; the engine needs 13 or later anyway.
  const real = node('ReduceSum', [picked, constant('margin/axes', int64Vector([1]))], { keepdims: attr.int(1) });
  const push = node('Mul', [LABEL_MASK_INPUT, constant('margin/exclude', floatTensor([], [EXCLUDE]))]);
  const others = node('Sub', [logits, push]);
  // Classes split into K columns [N, 1] and reduced by two-input Max in a balanced tree: only
  // elementwise ops on the differentiable path, so no shape op has to carry the symbolic batch axis.
  let level = Array.from({ length: k }, () => scope.fresh('margin/class'));
  const split: Record<string, Attr> = g.opset >= 18 ? { axis: attr.int(1), num_outputs: attr.int(k) } : { axis: attr.int(1) };
  g.nodes.push({ name: scope.fresh('margin/Split'), opType: 'Split', inputs: [others], outputs: level, attrs: split });
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(node('Max', [level[i], level[i + 1]]));
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  const other = level[0];
  node('Sub', [real, other], {}, MARGIN_OUTPUT);
  g.outputs.push({ name: MARGIN_OUTPUT, dataType: DataType.FLOAT, shape: [batch, 1] });
  return { graph: g, margin: MARGIN_OUTPUT, mask: LABEL_MASK_INPUT };
}
