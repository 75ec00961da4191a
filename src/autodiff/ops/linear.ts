import { UserError } from '../../util/errors';
import { attr, attrFloat, attrInt, describeNode } from '../../onnx/graph';
import { GradientRule } from '../rule';

/**
 * Gemm and MatMul. Gemm's gradients are Gemms with the transposition flags
 * chosen so that no Transpose node is ever emitted.
 */
export const linear: Record<string, GradientRule> = {
  Gemm: {
    grad: ({ node, dy: [g], e }) => {
      const [a, b, c] = node.inputs;
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const tA = attrInt(node, 'transA', 0) === 1;
      const tB = attrInt(node, 'transB', 0) === 1;
      const gemm = (x: string, y: string, transA: boolean, transB: boolean) => {
        const attrs: Record<string, ReturnType<typeof attr.int>> = {};
        if (transA) attrs.transA = attr.int(1);
        if (transB) attrs.transB = attr.int(1);
        if (alpha !== 1) attrs.alpha = attr.float(alpha);
        return e.op('Gemm', [x, y], attrs);
      };
      // Y = α A'B' + βC with A' = op(A), B' = op(B)
      return [
        () => (tA ? gemm(b, g!, tB, true) : gemm(g!, b, false, !tB)),
        () => (tB ? gemm(g!, a, true, tA) : gemm(a, g!, !tA, false)),
        c ? () => e.sumToShape(e.scale(g!, beta), c) : undefined,
      ];
    },
  },
  MatMul: {
    grad: ({ node, dy: [g], e }) => {
      const [a, b] = node.inputs;
      const ra = e.rank(a);
      const rb = e.rank(b);
      if (ra === 0 || rb === 0) throw new UserError(`autodiff: ${describeNode(node)} multiplies a scalar`);
      // Promote 1-D operands the way MatMul does, and the gradient with them.
      const a2 = ra === 1 ? e.unsqueeze(a, [0]) : a;
      const b2 = rb === 1 ? e.unsqueeze(b, [1]) : b;
      let g2 = g!;
      if (ra === 1) g2 = e.unsqueeze(g2, [Math.max(0, e.rank(g2) - (rb === 1 ? 0 : 1))]);
      if (rb === 1) g2 = e.unsqueeze(g2, [e.rank(g2)]);
      const swapLast = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      return [
        () => {
          // dA = dY · Bᵀ, summed over broadcast batch axes
          const rB = e.rank(b2);
          const d = e.op('MatMul', [g2, e.transpose(b2, swapLast(rB))]);
          const r = e.sumToShape(d, a2);
          return ra === 1 ? e.reshapeLike(r, a) : r;
        },
        () => {
          // dB = Aᵀ · dY; with a 2-D B and batched A, fold the batch into one Gemm
          const rA = e.rank(a2);
          if (e.rank(b2) === 2 && rA > 2 && rb !== 1) {
            const k = e.shape(a2)![rA - 1];
            const n = e.shape(g2)![e.rank(g2) - 1];
            if (typeof k === 'number' && typeof n === 'number') {
              const a2d = e.op('Reshape', [a2, e.ints([-1, k])]);
              const g2d = e.op('Reshape', [g2, e.ints([-1, n])]);
              return e.op('Gemm', [a2d, g2d], { transA: attr.int(1) });
            }
          }
          const d = e.op('MatMul', [e.transpose(a2, swapLast(rA)), g2]);
          const r = e.sumToShape(d, b2);
          return rb === 1 ? e.reshapeLike(r, b) : r;
        },
      ];
    },
  },
};
