import { UserError } from '../../util/errors';
import { Node, attr, attrFloat, attrInt, attrInts, describeNode } from '../../onnx/graph';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * BatchNormalization, y = (x − μ) · scale / √(σ² + ε) + bias per channel.
 *
 * Inference form: μ, σ² are the running statistics (inputs 3, 4), so y is
 * affine in x and every input has a gradient.
 *
 * Batch statistics (μ, σ² computed from x itself: the ops toTrainingBatchNorm
 * writes, or a node in training_mode=1): x also reaches y through them. With A = scale/√(σ²+ε),
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

/** The axes of a ReduceMean, from its attribute or (opset 18+) its second input. */
function meanAxes(e: Emitter, n: Node): number[] | undefined {
  return attrInts(n, 'axes') ?? (n.inputs[1] ? e.intValue(n.inputs[1]) : undefined);
}

/**
 * Recognises mean and var inputs that are the batch statistics of x, as
 * toTrainingBatchNorm writes them: Reshape(ReduceMean(x)) and
 * Reshape(ReduceMean((x − μ)²)) over [0, 2, …]. Returns x − μ.
 */
function batchStatistics(e: Emitter, node: Node): { centred: string } | undefined {
  const [x, , , mean, variance] = node.inputs;
  const rank = e.rank(x);
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)].join(',');
  const unwrap = (v: string) => {
    const p = e.producer(v);
    return p?.opType === 'Reshape' ? p.inputs[0] : v;
  };
  const isMean = (n: Node | undefined): n is Node => n?.opType === 'ReduceMean' && attrInt(n, 'keepdims', 1) === 1 && meanAxes(e, n)?.join(',') === axes;
  const mu = unwrap(mean);
  const m = e.producer(mu);
  const v = e.producer(unwrap(variance));
  if (!isMean(m) || m.inputs[0] !== x || !isMean(v)) return undefined;
  const sq = e.producer(v.inputs[0]);
  if (sq?.opType !== 'Mul' || sq.inputs[0] !== sq.inputs[1]) return undefined;
  const sub = e.producer(sq.inputs[0]);
  if (sub?.opType !== 'Sub' || sub.inputs[0] !== x || sub.inputs[1] !== mu) return undefined;
  return { centred: sq.inputs[0] };
}

/**
 * The fused backward of normalising with the batch's own statistics. With
 * mean, var computed from x (either by the node itself in training mode, or by
 * the ops batchStatistics recognises), x → y through them too; the mean and
 * var inputs then get no separate gradient.
 */
function batchStatsGrad(node: Node, g: string, e: Emitter, stats: () => { mean: string; variance: string; centred: string }) {
  const [x, scale] = node.inputs;
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const rank = e.rank(x);
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  let parts: { inv: string; s1: string; s2: string; xc: string } | undefined;
  const shared = () => {
    if (parts) return parts;
    const { variance, centred } = stats();
    const inv = e.op('Reciprocal', [e.op('Sqrt', [e.add(variance, e.scalarLike(eps, variance))])]);
    return (parts = { inv, s1: e.reduceSum(g, axes, false), s2: e.reduceSum(e.mul(g, centred), axes, false), xc: centred });
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
    () => undefined,
    () => undefined,
  ];
}

/** Training mode (training_mode=1): the node computes the statistics itself; recompute them here. */
function trainingGrad(node: Node, dy: (string | undefined)[], e: Emitter) {
  if (dy[1] || dy[2]) throw new UserError(`autodiff: the running statistics output by ${describeNode(node)} reach the loss; only its normalised output is differentiated`);
  const x = node.inputs[0];
  const rank = e.rank(x);
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  let stats: { mean: string; variance: string; centred: string } | undefined;
  return batchStatsGrad(node, dy[0]!, e, () => {
    if (stats) return stats;
    const m = e.reduceMean(x, axes, true);
    const centred = e.sub(x, m);
    return (stats = { mean: e.op('Reshape', [m, e.ints([-1])]), variance: e.op('Reshape', [e.reduceMean(e.mul(centred, centred), axes, true), e.ints([-1])]), centred });
  });
}

export const batchNormalization: Record<string, GradientRule> = {
  BatchNormalization: {
    // In training form the statistics inputs are unused by y.
    differentiable: (node) => (attrInt(node, 'training_mode', 0) === 1 ? [0, 1, 2] : [0, 1, 2, 3, 4]),
    grad: ({ node, dy, e }) => {
      if (isTraining(node, e.opset)) return trainingGrad(node, dy, e);
      const g = dy[0];
      const [x, scale, , mean, variance] = node.inputs;
      const batch = batchStatistics(e, node);
      if (batch) return batchStatsGrad(node, g!, e, () => ({ mean, variance, centred: batch.centred }));
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
