import { attrInt } from '../../onnx/graph';
import { GradientRule } from '../rule';

/** Softmax-13 and LogSoftmax-13 normalise along one axis. */
export const softmax: Record<string, GradientRule> = {
  Softmax: {
    // dx = y ⊙ (g − Σ g⊙y)
    grad: ({ node, dy: [g], e }) => {
      const y = node.outputs[0];
      const axis = attrInt(node, 'axis', -1);
      return [() => e.mul(y, e.sub(g!, e.reduceSum(e.mul(g!, y), [axis], true)))];
    },
  },
  LogSoftmax: {
    // dx = g − softmax(x) · Σ g
    grad: ({ node, dy: [g], e }) => {
      const y = node.outputs[0];
      const axis = attrInt(node, 'axis', -1);
      return [() => e.sub(g!, e.mul(e.op('Exp', [y]), e.reduceSum(g!, [axis], true)))];
    },
  },
};
