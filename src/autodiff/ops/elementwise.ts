import { UserError } from '../../util/errors';
import { describeNode } from '../../onnx/graph';
import { GradientRule } from '../rule';

/**
 * Arithmetic with numpy broadcasting. Each input's gradient is summed back
 * over the axes it was broadcast along (Emitter.sumToShape).
 */
export const elementwise: Record<string, GradientRule> = {
  Add: {
    grad: ({ node, dy: [g], e }) => node.inputs.map((x) => () => e.sumToShape(g!, x)),
  },
  Sub: {
    grad: ({ node, dy: [g], e }) => [() => e.sumToShape(g!, node.inputs[0]), () => e.sumToShape(e.neg(g!), node.inputs[1])],
  },
  Mul: {
    grad: ({ node, dy: [g], e }) => {
      const [a, b] = node.inputs;
      return [() => e.sumToShape(e.mul(g!, b), a), () => e.sumToShape(e.mul(g!, a), b)];
    },
  },
  Div: {
    // y = a / b: da = g / b, db = -g · y / b
    grad: ({ node, dy: [g], e }) => {
      const [a, b] = node.inputs;
      const y = node.outputs[0];
      return [() => e.sumToShape(e.div(g!, b), a), () => e.sumToShape(e.neg(e.div(e.mul(g!, y), b)), b)];
    },
  },
  Sum: {
    grad: ({ node, dy: [g], e }) => node.inputs.map((x) => () => e.sumToShape(g!, x)),
  },
  Mean: {
    grad: ({ node, dy: [g], e }) => node.inputs.map((x) => () => e.sumToShape(e.scale(g!, 1 / node.inputs.length), x)),
  },
  Neg: {
    grad: ({ dy: [g], e }) => [() => e.neg(g!)],
  },
  Abs: {
    grad: ({ node, dy: [g], e }) => [() => e.mul(g!, e.op('Sign', [node.inputs[0]]))],
  },
  Sqrt: {
    // d sqrt(x) = g / (2 y)
    grad: ({ node, dy: [g], e }) => [() => e.div(g!, e.scale(node.outputs[0], 2))],
  },
  Exp: {
    grad: ({ node, dy: [g], e }) => [() => e.mul(g!, node.outputs[0])],
  },
  Log: {
    grad: ({ node, dy: [g], e }) => [() => e.div(g!, node.inputs[0])],
  },
  Reciprocal: {
    // d(1/x) = -g · y²
    grad: ({ node, dy: [g], e }) => {
      const y = node.outputs[0];
      return [() => e.neg(e.mul(g!, e.mul(y, y)))];
    },
  },
  Pow: {
    // y = a^b: da = g · b · a^(b-1); db = g · y · ln a
    grad: ({ node, dy: [g], e }) => {
      const [a, b] = node.inputs;
      const y = node.outputs[0];
      return [
        () => {
          const exponent = e.floatValue(b) ?? e.intValue(b);
          if (exponent && exponent.length === 1 && exponent[0] === 2) return e.sumToShape(e.mul(g!, e.scale(a, 2)), a);
          const bf = e.dataType(b) === e.dataType(a) ? b : e.op('Cast', [b], { to: { kind: 'int', value: e.dataType(a) } });
          const pm1 = e.op('Pow', [a, e.sub(bf, e.scalarLike(1, a))]);
          return e.sumToShape(e.mul(g!, e.mul(bf, pm1)), a);
        },
        () => e.sumToShape(e.mul(g!, e.mul(y, e.op('Log', [a]))), b),
      ];
    },
  },
  Max: minMax('Max'),
  Min: minMax('Min'),
  Where: {
    differentiable: [1, 2],
    grad: ({ node, dy: [g], e }) => {
      const [c, a, b] = node.inputs;
      return [
        undefined,
        () => e.sumToShape(e.op('Where', [c, g!, e.scalarLike(0, g!)]), a),
        () => e.sumToShape(e.op('Where', [c, e.scalarLike(0, g!), g!]), b),
      ];
    },
  },
};

/** Max/Min of two inputs: the gradient goes to the winner (the first input on ties, like the forward's choice). */
function minMax(op: 'Max' | 'Min'): GradientRule {
  return {
    grad: ({ node, dy: [g], e }) => {
      if (node.inputs.length !== 2) throw new UserError(`autodiff: ${describeNode(node)} has ${node.inputs.length} inputs; gradients support two`);
      const [a, b] = node.inputs;
      let firstWins: string | undefined;
      const mask = () => (firstWins ??= e.op(op === 'Max' ? 'GreaterOrEqual' : 'LessOrEqual', [a, b]));
      const zero = () => e.scalarLike(0, g!);
      return [
        () => e.sumToShape(e.op('Where', [mask(), g!, zero()]), a),
        () => e.sumToShape(e.op('Where', [mask(), zero(), g!]), b),
      ];
    },
  };
}
