import { UserError } from '../../util/errors';
import { DataType } from '../../onnx/dtype';
import { Node, attr, attrInts, attrString, describeNode } from '../../onnx/graph';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * Resize in nearest mode. The source index of every output position is
 * computed here exactly as ONNX defines it (coordinate transformation, then
 * nearest rounding, clamped), per axis. The gradient sums dy over each
 * source's preimage: for integer upscales of the spatial axes (the usual
 * case) an AveragePool over the blocks times their area (measured several
 * times faster than a ReduceSum over a reshaped block axis); for blocks on
 * other axes a Reshape + ReduceSum; else a MatMul with the 0/1 selection
 * matrix of that axis.
 */
function sourceIndex(node: Node, inSize: number, outSize: number, scale: number): number[] {
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const nearest = attrString(node, 'nearest_mode', 'round_prefer_floor');
  const r: number[] = [];
  for (let j = 0; j < outSize; j++) {
    let x: number;
    switch (ctm) {
      case 'half_pixel':
        x = (j + 0.5) / scale - 0.5;
        break;
      case 'pytorch_half_pixel':
        x = outSize > 1 ? (j + 0.5) / scale - 0.5 : 0;
        break;
      case 'align_corners':
        x = outSize > 1 ? (j * (inSize - 1)) / (outSize - 1) : 0;
        break;
      case 'asymmetric':
        x = j / scale;
        break;
      case 'tf_half_pixel_for_nn':
        x = (j + 0.5) / scale;
        break;
      default:
        throw new UserError(`autodiff: ${describeNode(node)} uses coordinate_transformation_mode=${ctm}, which has no nearest gradient here`);
    }
    let i: number;
    const frac = x - Math.floor(x);
    switch (nearest) {
      case 'floor':
        i = Math.floor(x);
        break;
      case 'ceil':
        i = Math.ceil(x);
        break;
      case 'round_prefer_ceil':
        i = frac === 0.5 ? Math.ceil(x) : Math.round(x);
        break;
      default:
        i = frac === 0.5 ? Math.floor(x) : Math.round(x);
    }
    r.push(Math.min(Math.max(i, 0), inSize - 1));
  }
  return r;
}

export const resize: Record<string, GradientRule> = {
  Resize: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [() => resizeGrad(e, node, g!)],
  },
};

function resizeGrad(e: Emitter, node: Node, g: string): string {
  const mode = attrString(node, 'mode', 'nearest');
  if (mode !== 'nearest') throw new UserError(`autodiff: ${describeNode(node)} resizes in '${mode}' mode; only nearest is differentiated`);
  if (attrInts(node, 'axes')) throw new UserError(`autodiff: ${describeNode(node)} sets 'axes'`);
  const [x, , scalesName, sizesName] = node.inputs;
  const xs = e.shape(x);
  if (!xs) throw new UserError(`autodiff: the shape of '${x}' is unknown`);
  const scales = scalesName ? e.floatValue(scalesName) : undefined;
  const sizes = sizesName ? e.intValue(sizesName) : undefined;
  if (!(scales && scales.length) && !sizes) throw new UserError(`autodiff: ${describeNode(node)} has runtime scales/sizes`);
  // Per axis: unchanged, an integer block upscale, or a general index map.
  const plans = xs.map((inSize, a) => {
    const scale = sizes ? undefined : scales![a];
    if (scale === 1 || (sizes && sizes[a] === inSize)) return { kind: 'same' as const };
    if (typeof inSize !== 'number') throw new UserError(`autodiff: ${describeNode(node)} resizes symbolic axis ${a}`);
    const outSize = sizes ? sizes[a] : Math.floor(inSize * scale!);
    const src = sourceIndex(node, inSize, outSize, sizes ? outSize / inSize : scale!);
    const factor = outSize / inSize;
    if (Number.isInteger(factor) && src.every((s, j) => s === Math.floor(j / factor))) return { kind: 'block' as const, factor };
    return { kind: 'map' as const, inSize, outSize, src };
  });
  // Integer upscales of spatial axes only (the usual case): the block sums are an AveragePool times the block area.
  if (xs.length >= 3 && plans.every((p, a) => p.kind === 'same' || (p.kind === 'block' && a >= 2))) {
    const kernel = plans.slice(2).map((p) => (p.kind === 'block' ? p.factor : 1));
    const pooled = e.op('AveragePool', [g], { kernel_shape: attr.ints(kernel), strides: attr.ints(kernel) });
    return e.scale(pooled, kernel.reduce((a, b) => a * b, 1));
  }
  let cur = g;
  for (let a = xs.length - 1; a >= 0; a--) {
    const plan = plans[a];
    if (plan.kind === 'same') continue;
    if (plan.kind === 'block') {
      // [.., in·f, ..] → [.., in, f, ..] → sum over f
      const shape = e.shape(cur)!.map((d) => (typeof d === 'number' ? d : 0));
      const split = [...shape.slice(0, a), xs[a] as number, plan.factor, ...shape.slice(a + 1)];
      cur = e.reduceSum(e.op('Reshape', [cur, e.ints(split)]), [a + 1], false);
      continue;
    }
    const { inSize, outSize, src } = plan;
    // Selection matrix Sᵀ [out, in] with Sᵀ[j, src[j]] = 1; along this axis dx = dy · Sᵀ.
    const dt = e.dataType(x);
    const st = dt === DataType.DOUBLE ? new Float64Array(outSize * inSize) : new Float32Array(outSize * inSize);
    src.forEach((i, j) => (st[j * inSize + i] = 1));
    const rank = xs.length;
    const perm = Array.from({ length: rank }, (_, i) => i);
    [perm[a], perm[rank - 1]] = [perm[rank - 1], perm[a]];
    const moved = e.transpose(cur, perm);
    const mm = e.op('MatMul', [moved, e.constant({ dataType: dt, dims: [outSize, inSize], data: st }, 'nearest_selection')]);
    cur = e.transpose(mm, perm);
  }
  return cur;
}
