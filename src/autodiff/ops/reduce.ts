import { UserError } from '../../util/errors';
import { Node, attrInt, attrInts, describeNode } from '../../onnx/graph';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * ReduceSum / ReduceMean: the gradient is the upstream gradient, reshaped to
 * keep the reduced axes, expanded back over them (divided by the count for
 * the mean).
 */
function reducedAxes(e: Emitter, node: Node): number[] {
  const x = node.inputs[0];
  const rank = e.rank(x);
  const fromAttr = attrInts(node, 'axes');
  let axes = fromAttr;
  if (!axes && node.inputs[1]) {
    axes = e.intValue(node.inputs[1]);
    if (!axes) throw new UserError(`autodiff: ${describeNode(node)} reduces over axes computed at runtime`);
  }
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
}

function expandBack(e: Emitter, node: Node, g: string, axes: number[]): string {
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const kept = keep ? g : e.unsqueeze(g, axes);
  return e.expandLike(kept, node.inputs[0]);
}

export const reduce: Record<string, GradientRule> = {
  ReduceSum: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [() => expandBack(e, node, g!, reducedAxes(e, node))],
  },
  ReduceMean: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [
      () => {
        const axes = reducedAxes(e, node);
        const x = node.inputs[0];
        const shape = e.shape(x)!;
        const dims = axes.map((a) => shape[a]);
        if (dims.every((d) => typeof d === 'number')) {
          const count = (dims as number[]).reduce((p, d) => p * d, 1);
          return expandBack(e, node, e.scale(g!, 1 / count), axes);
        }
        // Runtime count: the number of elements of x over those of the reduced result.
        const n = e.op('Cast', [e.op('ReduceProd', [e.op('Gather', [e.shapeOf(x), e.ints(axes)])], { keepdims: { kind: 'int', value: 0 } })], {
          to: { kind: 'int', value: e.dataType(x) },
        });
        return expandBack(e, node, e.div(g!, n), axes);
      },
    ],
  },
};
