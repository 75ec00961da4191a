import { UserError } from '../../util/errors';
import { DataType } from '../../onnx/dtype';
import { Node, attr, attrInt, attrInts, attrString, describeNode } from '../../onnx/graph';
import { sliceBounds } from '../../onnx/shapes';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/** Ops that move or copy values without arithmetic: their gradients move them back. */

const INT64_MAX = 2 ** 62;
const normAxis = (a: number, r: number) => (a < 0 ? a + r : a);
const FLOAT_TYPES = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16]);

const passThrough: GradientRule = { differentiable: [0], grad: ({ dy: [g] }) => [() => g!] };
const reshapeBack: GradientRule = { differentiable: [0], grad: ({ node, dy: [g], e }) => [() => e.reshapeLike(g!, node.inputs[0])] };

export const structural: Record<string, GradientRule> = {
  Identity: passThrough,
  Dropout: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => {
      const training = node.inputs[2];
      if (training && !isConstantFalse(e, training)) {
        throw new UserError(`autodiff: ${describeNode(node)} may run in training mode; only inference-mode Dropout (an identity) is differentiated`);
      }
      return [() => g!];
    },
  },
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: {
    grad: ({ node, dy: [g], e }) => {
      const r = e.rank(node.inputs[0]);
      const perm = attrInts(node, 'perm', Array.from({ length: r }, (_, i) => r - 1 - i));
      const inverse = new Array<number>(r);
      perm.forEach((p, i) => (inverse[p] = i));
      return [() => e.transpose(g!, inverse)];
    },
  },
  Expand: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [() => e.sumToShape(g!, node.inputs[0])],
  },
  Cast: {
    grad: ({ node, dy: [g], e }) => {
      const from = e.dataType(node.inputs[0]);
      if (!FLOAT_TYPES.has(from)) return [undefined];
      return [() => (e.dataType(g!) === from ? g! : e.op('Cast', [g!], { to: attr.int(from) }))];
    },
  },
  Concat: {
    grad: ({ node, dy: [g], e }) => {
      const rank = e.rank(node.inputs[0]);
      const axis = normAxis(attrInt(node, 'axis')!, rank);
      const sizes = node.inputs.map((x) => e.shape(x)?.[axis]);
      let parts: string[] | undefined;
      if (sizes.every((s) => typeof s === 'number')) {
        // One Split serves every input.
        const split = () => (parts ??= e.node('Split', [g!, e.ints(sizes as number[])], { axis: attr.int(axis) }, sizes.length));
        return node.inputs.map((_, i) => () => split()[i]);
      }
      // Symbolic sizes along the axis: slice at runtime offsets.
      return node.inputs.map((x, i) => () => {
        let start = e.ints([0]);
        for (let j = 0; j < i; j++) start = e.add(start, e.dimOf(node.inputs[j], axis));
        const end = e.add(start, e.dimOf(x, axis));
        return e.op('Slice', [g!, start, end, e.ints([axis])]);
      });
    },
  },
  Split: {
    differentiable: [0],
    grad: ({ node, dy, e }) => {
      const x = node.inputs[0];
      const axis = normAxis(attrInt(node, 'axis', 0), e.rank(x));
      return [() => e.op('Concat', node.outputs.map((o, i) => dy[i] ?? e.zerosLike(o)), { axis: attr.int(axis) })];
    },
  },
  Slice: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [() => sliceGrad(e, node.inputs, g!, describeNode(node))],
  },
  Pad: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [() => padGrad(e, node, g!)],
  },
  Tile: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => [
      () => {
        // y[.., r·d + i, ..] = x[.., i, ..]: view each tiled axis as [reps, d] and sum the reps
        const x = node.inputs[0];
        const xs = e.staticShape(x);
        const reps = e.intValue(node.inputs[1]);
        if (!xs || !reps) throw new UserError(`autodiff: ${describeNode(node)} needs static shapes and repeats for its gradient`);
        const split = xs.flatMap((d, i) => [reps[i], d]);
        const r = e.op('Reshape', [g!, e.ints(split)]);
        return e.reshapeLike(e.reduceSum(r, xs.map((_, i) => 2 * i), false), x);
      },
    ],
  },
};

function isConstantFalse(e: Emitter, name: string): boolean {
  const init = e.graph.initializers.get(name);
  if (init) return init.data.length === 1 && Number(init.data[0]) === 0;
  const producer = e.graph.nodes.find((n) => n.outputs.includes(name));
  const v = producer?.opType === 'Constant' ? producer.attrs.value : undefined;
  return v?.kind === 'tensor' && v.value.data.length === 1 && Number(v.value.data[0]) === 0;
}

/**
 * Slice's gradient, one sliced axis at a time (a multi-axis slice is a
 * composition of single-axis ones). Steps of ±1 become a Pad; other steps
 * scatter into zeros.
 */
function sliceGrad(e: Emitter, inputs: string[], g: string, where: string): string {
  const [x, startsName, endsName, axesName, stepsName] = inputs;
  const starts = e.intValue(startsName);
  const ends = e.intValue(endsName);
  const rank = e.rank(x);
  const axes = axesName ? e.intValue(axesName)?.map((a) => normAxis(a, rank)) : starts?.map((_, i) => i);
  const steps = stepsName ? e.intValue(stepsName) : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps) throw new UserError(`autodiff: ${where} has slice bounds computed at runtime; only constant bounds are supported`);
  const xShape = e.shape(x)!;
  let cur = g;
  axes.forEach((axis, k) => {
    const dim = xShape[axis];
    const step = steps[k];
    if (typeof dim !== 'number') {
      // Symbolic axis (a batch axis): only forward slices with a non-negative start are supported.
      if (step !== 1 || starts[k] < 0 || ends[k] < 0) throw new UserError(`autodiff: ${where} slices symbolic axis ${axis} with negative bounds or steps`);
      const before = e.ints([starts[k]]);
      const after = ends[k] >= INT64_MAX / 4 ? e.ints([0]) : e.op('Max', [e.sub(e.dimOf(x, axis), e.ints([ends[k]])), e.ints([0])]);
      cur = padAxis(e, cur, rank, axis, before, after);
      return;
    }
    const [s, end] = sliceBounds(starts[k], ends[k], step, dim);
    if (step === 1) {
      const n = Math.max(0, end - s);
      cur = padAxis(e, cur, rank, axis, e.ints([s]), e.ints([dim - s - n]));
    } else if (step === -1) {
      const n = Math.max(0, s - end);
      const reversed = n > 0 ? e.op('Slice', [cur, e.ints([-1]), e.ints([-INT64_MAX]), e.ints([axis]), e.ints([-1])]) : cur;
      cur = padAxis(e, reversed, rank, axis, e.ints([end + 1]), e.ints([dim - 1 - s]));
    } else {
      const picked: number[] = [];
      for (let i = s; step > 0 ? i < end : i > end; i += step) picked.push(i);
      const curShape = e.staticShape(cur);
      if (!curShape) throw new UserError(`autodiff: ${where} slices with step ${step}; its gradient needs static shapes`);
      const idxShape = curShape.map((d, i) => (i === axis ? picked.length : 1));
      const idx = e.op('Expand', [e.op('Reshape', [e.ints(picked), e.ints(idxShape)]), e.ints(curShape)]);
      const full = curShape.map((d, i) => (i === axis ? dim : d));
      const zeros = e.op('ConstantOfShape', [e.ints(full)], { value: attr.tensor(zeroOf(e, g)) });
      cur = e.op('ScatterElements', [zeros, idx, cur], { axis: attr.int(axis) });
    }
  });
  return cur;
}

function zeroOf(e: Emitter, like: string) {
  const t = e.dataType(like);
  return t === DataType.DOUBLE ? { dataType: t, dims: [1], data: Float64Array.of(0) } : { dataType: DataType.FLOAT, dims: [1], data: Float32Array.of(0) };
}

/** Pads one axis (before/after are int64 [1] tensors). */
function padAxis(e: Emitter, x: string, rank: number, axis: number, before: string, after: string): string {
  const bv = e.intValue(before);
  const av = e.intValue(after);
  if (bv && av && bv[0] === 0 && av[0] === 0) return x;
  const zeros = (n: number) => (n > 0 ? [e.ints(new Array(n).fill(0))] : []);
  const pads =
    bv && av
      ? e.ints([...new Array(rank).fill(0).map((_, i) => (i === axis ? bv[0] : 0)), ...new Array(rank).fill(0).map((_, i) => (i === axis ? av[0] : 0))])
      : e.op('Concat', [...zeros(axis), before, ...zeros(rank - 1), after, ...zeros(rank - 1 - axis)], { axis: attr.int(0) });
  return e.op('Pad', [x, pads]);
}

/** Pad (constant mode) is undone by a Slice; negative pads (crops) are undone by padding. */
function padGrad(e: Emitter, node: Node, g: string): string {
  const mode = attrString(node, 'mode', 'constant');
  if (mode !== 'constant') throw new UserError(`autodiff: ${describeNode(node)} pads in '${mode}' mode; only constant padding is supported`);
  const x = node.inputs[0];
  const rank = e.rank(x);
  const padsAttr = attrInts(node, 'pads');
  const pads = padsAttr ?? e.intValue(node.inputs[1]);
  if (!pads) throw new UserError(`autodiff: ${describeNode(node)} computes its pads at runtime; only constant pads are supported`);
  const axes = node.inputs[3] ? e.intValue(node.inputs[3])?.map((a) => normAxis(a, rank)) : Array.from({ length: rank }, (_, i) => i);
  if (!axes) throw new UserError(`autodiff: ${describeNode(node)} has runtime axes`);
  const n = axes.length;
  let cur = g;
  const crops = axes.some((_, k) => pads[k] < 0 || pads[k + n] < 0);
  if (crops) {
    const full = new Array(2 * rank).fill(0);
    axes.forEach((a, k) => {
      full[a] = Math.max(0, -pads[k]);
      full[a + rank] = Math.max(0, -pads[k + n]);
    });
    cur = e.op('Pad', [cur, e.ints(full)]);
  }
  const sliced = axes.filter((_, k) => pads[k] > 0 || pads[k + n] > 0);
  if (sliced.length === 0) return cur;
  const starts = sliced.map((a) => Math.max(0, pads[axes.indexOf(a)]));
  const ends = sliced.map((a) => {
    const after = pads[axes.indexOf(a) + n];
    return after > 0 ? -after : INT64_MAX;
  });
  return e.op('Slice', [cur, e.ints(starts), e.ints(ends), e.ints(sliced)]);
}
