import { Graph, Node, describeNode } from '../onnx/graph';

/** The opset the backward pass is written for (ScatterElements with reduction='add' needs 16). */
export const GRADIENT_OPSET = 17;

/**
 * Why the graph's nodes would change meaning if its default-domain opset were
 * raised from `from` to `to` (13 ≤ from < to ≤ 17), or undefined when they
 * would not. Between 13 and 17 the only semantic changes to existing ops are
 * RoiAlign-16's default coordinate mode and BatchNormalization-14's training
 * outputs; everything else only widened type lists or added attributes whose
 * defaults keep the old behaviour.
 */
export function upgradeBlocker(g: Graph, from: number, to: number): string | undefined {
  const check = (nodes: Node[]): string | undefined => {
    for (const n of nodes) {
      if (n.domain && n.domain !== 'ai.onnx') continue;
      if (n.opType === 'RoiAlign' && from < 16 && to >= 16 && !n.attrs.coordinate_transformation_mode) return `${describeNode(n)} changes its default coordinate mode at opset 16`;
      if (n.opType === 'BatchNormalization' && from < 14 && to >= 14 && n.outputs.filter((o) => o).length > 1) return `${describeNode(n)} has training outputs, which changed at opset 14`;
    }
    return undefined;
  };
  return check(g.nodes);
}

/** The opset of the gradient graph: the forward graph's, raised to 17 when that is safe. */
export function gradientOpset(g: Graph): number {
  if (g.opset >= GRADIENT_OPSET) return g.opset;
  return upgradeBlocker(g, g.opset, GRADIENT_OPSET) ? g.opset : GRADIENT_OPSET;
}
