import { UserError } from '../../util/errors';
import { Node, attr, attrFloat, attrInt, describeNode } from '../../onnx/graph';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * BatchNormalization, y = (x − μ) · scale / √(σ² + ε) + bias per channel.
 *
 * Inference form: μ, σ² are the running statistics (inputs 3, 4), so y is
 * affine in x and every input has a gradient.
 *
 * Training form (training_mode=1, as toTrainingBatchNorm emits it): μ, σ² are
 * the batch statistics, so x also reaches y through them. With A = scale/√(σ²+ε),
 * S₁ = Σ dy and S₂ = Σ dy·(x − μ) over the n elements of a channel:
 *   dx = A · (dy − S₁/n − (x − μ) · S₂ / (n (σ² + ε))),
 *   dscale = S₂ / √(σ²+ε),  dbias = S₁
 * — one fused formula instead of differentiating the statistics op by op.
 */
function perChannel(e: Emitter, v: string, rank: number): string {
  const c = e.shape(v)?.[0];
  return e.op('Reshape', [v, e.ints([1, typeof c === 'number' ? c : -1, ...new Array(rank - 2).fill(1)])]);
}

function isTraining(node: Node, opset: number): boolean {
  if (opset >= 14) return attrInt(node, 'training_mode', 0) === 1;
  return node.outputs.filter((o) => o).length > 1;
}

function trainingGrad(node: Node, dy: (string | undefined)[], e: Emitter) {
  if (dy[1] || dy[2]) throw new UserError(`autodiff: the batch statistics of ${describeNode(node)} reach the loss; only its normalised output is differentiated`);
  const g = dy[0]!;
  const [x, scale] = node.inputs;
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const rank = e.rank(x);
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  // toTrainingBatchNorm's nodes (momentum 0) output the batch statistics; otherwise recompute them.
  const fromOutputs = attrFloat(node, 'momentum', 0.9) === 0 && node.outputs[1] && node.outputs[2];
  let stats: { mean: string; variance: string } | undefined;
  const batchStats = () => {
    if (stats) return stats;
    if (fromOutputs) return (stats = { mean: node.outputs[1], variance: node.outputs[2] });
    const m = e.reduceMean(x, axes, true);
    const d = e.sub(x, m);
    return (stats = { mean: e.op('Reshape', [m, e.ints([-1])]), variance: e.op('Reshape', [e.reduceMean(e.mul(d, d), axes, true), e.ints([-1])]) });
  };
  let parts: { inv: string; s1: string; s2: string; xc: string } | undefined;
  const shared = () => {
    if (parts) return parts;
    const { mean, variance } = batchStats();
    const inv = e.op('Reciprocal', [e.op('Sqrt', [e.add(variance, e.scalarLike(eps, variance))])]);
    const xc = e.sub(x, perChannel(e, mean, rank));
    return (parts = { inv, s1: e.reduceSum(g, axes, false), s2: e.reduceSum(e.mul(g, xc), axes, false), xc });
  };
  return [
    () => {
      const { inv, s1, s2, xc } = shared();
      const count = e.op('Cast', [e.op('Div', [e.op('Size', [x]), e.op('Shape', [scale])])], { to: attr.int(e.dataType(x)) });
      const a = e.mul(scale, inv);
      const mean1 = e.div(s1, count);
      const slope = e.div(e.mul(s2, e.mul(inv, inv)), count);
      // dx = A·dy − A·(S₁/n) − A·slope·(x − μ)
      const first = e.mul(g, perChannel(e, a, rank));
      const second = e.mul(xc, perChannel(e, e.neg(e.mul(a, slope)), rank));
      return e.add(e.add(first, second), perChannel(e, e.neg(e.mul(a, mean1)), rank));
    },
    () => e.mul(shared().s2, shared().inv),
    () => shared().s1,
  ];
}

export const batchNormalization: Record<string, GradientRule> = {
  BatchNormalization: {
    // In training form the statistics inputs are unused by y.
    differentiable: (node) => (attrInt(node, 'training_mode', 0) === 1 ? [0, 1, 2] : [0, 1, 2, 3, 4]),
    grad: ({ node, dy, e }) => {
      if (isTraining(node, e.opset)) return trainingGrad(node, dy, e);
      const g = dy[0];
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
