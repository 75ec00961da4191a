import { UserError } from '../../util/errors';
import { Node, attrFloat, attrInt, describeNode } from '../../onnx/graph';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * BatchNormalization in inference form, y = (x − mean) · scale / √(var + ε) + bias,
 * with per-channel parameters broadcast over [N, C, …]. Training-form nodes
 * are rejected: for training, toTrainingBatchNorm (../batchNorm.ts) rewrites
 * them into standard ops that the engine differentiates.
 */
function perChannel(e: Emitter, v: string, rank: number): string {
  const c = e.shape(v)?.[0];
  return e.op('Reshape', [v, e.ints([1, typeof c === 'number' ? c : -1, ...new Array(rank - 2).fill(1)])]);
}

function isTraining(node: Node, opset: number): boolean {
  if (opset >= 14) return attrInt(node, 'training_mode', 0) === 1;
  return node.outputs.filter((o) => o).length > 1;
}

export const batchNormalization: Record<string, GradientRule> = {
  BatchNormalization: {
    grad: ({ node, dy: [g], e }) => {
      if (isTraining(node, e.opset)) {
        throw new UserError(`autodiff: ${describeNode(node)} is in training mode; convert it with toTrainingBatchNorm before differentiating`);
      }
      const [x, scale, , mean, variance] = node.inputs;
      const eps = attrFloat(node, 'epsilon', 1e-5);
      const rank = e.rank(x);
      const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
      // Shared pieces, built on first use.
      let inv: string | undefined, sumG: string | undefined, sumGX: string | undefined;
      const invStd = () => (inv ??= e.op('Reciprocal', [e.op('Sqrt', [e.add(variance, e.scalarLike(eps, variance))])]));
      const sg = () => (sumG ??= e.reduceSum(g!, axes, false));
      // Σ dy·(x − mean) = Σ dy·x − mean·Σ dy: one pass over dy·x instead of forming x − mean
      const centred = () => (sumGX ??= e.sub(e.reduceSum(e.mul(g!, x), axes, false), e.mul(mean, sg())));
      return [
        () => e.mul(g!, perChannel(e, e.mul(scale, invStd()), rank)),
        () => e.mul(centred(), invStd()),
        () => sg(),
        () => e.neg(e.mul(sg(), e.mul(scale, invStd()))),
        () => {
          // d/dvar of (x − mean)·scale·(var + ε)^(-1/2) = −½ · scale · inv³ · (x − mean)
          const i = invStd();
          return e.scale(e.mul(centred(), e.mul(scale, e.mul(i, e.mul(i, i)))), -0.5);
        },
      ];
    },
  },
};
