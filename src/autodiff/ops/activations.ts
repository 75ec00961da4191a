import { attr, attrFloat } from '../../onnx/graph';
import { GradientRule } from '../rule';

/**
 * Pointwise activations. Piecewise-linear ones (Relu, LeakyRelu, Clip,
 * HardSigmoid, HardSwish) use the one-sided convention at their kinks that
 * PyTorch uses: the gradient at exactly 0 of Relu is 0.
 */
export const activations: Record<string, GradientRule> = {
  Relu: {
    // dy · [y > 0]; a Mul by the cast mask measured a little faster than Where on ORT's CPU EP
    grad: ({ node, dy: [g], e }) => [() => e.mul(g!, e.op('Cast', [e.op('Greater', [node.outputs[0], e.scalarLike(0, g!)])], { to: attr.int(e.dataType(g!)) }))],
  },
  LeakyRelu: {
    grad: ({ node, dy: [g], e }) => {
      const alpha = attrFloat(node, 'alpha', 0.01);
      const x = node.inputs[0];
      return [() => e.op('Where', [e.op('Greater', [x, e.scalarLike(0, x)]), g!, e.scale(g!, alpha)])];
    },
  },
  Clip: {
    // min and max are constants in every model we know; they get no gradient.
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => {
      const [x, lo, hi] = node.inputs;
      return [
        () => {
          let inside: string | undefined;
          if (lo) inside = e.op('Greater', [x, lo]);
          if (hi) {
            const below = e.op('Less', [x, hi]);
            inside = inside ? e.op('And', [inside, below]) : below;
          }
          return inside ? e.op('Where', [inside, g!, e.scalarLike(0, g!)]) : g!;
        },
      ];
    },
  },
  Sigmoid: {
    // σ' = y (1 - y)
    grad: ({ node, dy: [g], e }) => {
      const y = node.outputs[0];
      return [() => e.mul(g!, e.mul(y, e.sub(e.scalarLike(1, y), y)))];
    },
  },
  Tanh: {
    grad: ({ node, dy: [g], e }) => {
      const y = node.outputs[0];
      return [() => e.mul(g!, e.sub(e.scalarLike(1, y), e.mul(y, y)))];
    },
  },
  HardSigmoid: {
    // y = max(0, min(1, αx + β)): slope α strictly inside (0, 1)
    grad: ({ node, dy: [g], e }) => {
      const alpha = attrFloat(node, 'alpha', 0.2);
      const y = node.outputs[0];
      return [
        () => {
          const inside = e.op('And', [e.op('Greater', [y, e.scalarLike(0, y)]), e.op('Less', [y, e.scalarLike(1, y)])]);
          return e.op('Where', [inside, e.scale(g!, alpha), e.scalarLike(0, g!)]);
        },
      ];
    },
  },
  HardSwish: {
    // y = x · max(0, min(1, x/6 + 1/2)): y' = 0 below -3, 1 above 3, (2x + 3)/6 between
    grad: ({ node, dy: [g], e }) => {
      const x = node.inputs[0];
      return [
        () => {
          const c = (v: number) => e.scalarLike(v, x);
          const mid = e.add(e.scale(x, 1 / 3), c(0.5));
          const slope = e.op('Where', [e.op('Less', [x, c(-3)]), c(0), e.op('Where', [e.op('Greater', [x, c(3)]), c(1), mid])]);
          return e.mul(g!, slope);
        },
      ];
    },
  },
  Softplus: {
    // d log(1 + eˣ) = σ(x)
    grad: ({ node, dy: [g], e }) => [() => e.mul(g!, e.op('Sigmoid', [node.inputs[0]]))],
  },
  Elu: {
    // y' = 1 for x > 0, y + α otherwise
    grad: ({ node, dy: [g], e }) => {
      const alpha = attrFloat(node, 'alpha', 1);
      const [x] = node.inputs;
      const y = node.outputs[0];
      return [() => e.op('Where', [e.op('Greater', [x, e.scalarLike(0, x)]), g!, e.mul(g!, e.add(y, e.scalarLike(alpha, y)))])];
    },
  },
};
