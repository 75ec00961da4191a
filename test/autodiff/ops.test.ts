import { DataType } from '../../src/onnx/dtype';
import { Attr, Dim, attr } from '../../src/onnx/graph';
import { GraphBuilder } from '../../src/onnx/builder';
import { TensorData, int64Tensor } from '../../src/onnx/tensor';
import { Rng } from '../../src/util/random';
import { awayFromZero, distinctValues, expectAccurate, gradCheck, randomTensor } from './gradcheck';

/**
 * Finite-difference checks of every elementwise, activation, linear, shape
 * and reduction rule. Ops with float64 kernels in ORT run in float64; the
 * others run in float32 with a 1e-2 step: Mean is linear, HardSigmoid and
 * HardSwish are piecewise linear/quadratic (central differences exact away
 * from their kinks), Softplus and Elu smooth (truncation error ~1e-5).
 */
const D = DataType.DOUBLE;
const F = DataType.FLOAT;

interface In {
  value: TensorData;
  /** constant operand (an initializer that is not differentiated) */
  constant?: boolean;
  /** declared shape (symbolic dims) */
  declared?: Dim[];
}

async function checkOp(op: string, inputs: (In | '')[], attrs: Record<string, Attr> = {}, outputs = 1, eps?: number) {
  const b = new GraphBuilder(op.toLowerCase());
  const names: string[] = [];
  const feeds: Record<string, TensorData> = {};
  const wrt: string[] = [];
  inputs.forEach((i, k) => {
    if (i === '') return names.push('');
    const isFloat = i.value.dataType === F || i.value.dataType === D;
    if (i.constant || !isFloat) return names.push(b.constant(i.value, `c${k}`));
    const n = b.input(`in${k}`, i.declared ?? i.value.dims, i.value.dataType);
    feeds[n] = i.value;
    wrt.push(n);
    names.push(n);
  });
  const outs = b.node(op, names, attrs, { outputs });
  outs.forEach((o, k) => b.output(o, `y${k}`));
  const results = await gradCheck({ graph: b.build(), feeds, wrt, coords: 60, eps });
  expectAccurate(results);
}

const rng = new Rng(99);
const r = (dims: number[], dt = D) => ({ value: randomTensor(rng, dims, dt) });
const away = (dims: number[], margin = 0.3, dt = D) => ({ value: awayFromZero(rng, dims, margin, dt) });
const positive = (dims: number[]) => {
  const t = randomTensor(rng, dims, D);
  for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + Math.abs(Number(t.data[i]));
  return { value: t };
};
const ints = (values: number[], dims = [values.length]) => ({ value: int64Tensor(dims, values) });

describe('broadcasting arithmetic', () => {
  const pairs: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [3, 1]],
    [[2, 3, 4], [1]],
    [[4], [2, 3, 4]],
    [[2, 1, 4], [1, 3, 1]],
    [[3, 1, 5], [5]],
  ];
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    test.each(pairs)(`${op} %j with %j`, (a, b) => checkOp(op, [r(a), op === 'Div' ? away(b, 0.5) : r(b)]));
  }
  test('Sum of three with broadcasting', () => checkOp('Sum', [r([2, 3]), r([3]), r([2, 1])]));
  test('Mean of two (float32: no double kernel; linear)', () => checkOp('Mean', [r([2, 3], F), r([1, 3], F)]));
  test('Max and Min pick the winner', async () => {
    const a = { value: distinctValues(rng, [3, 4], 0.1, D) };
    const b = { value: distinctValues(rng, [3, 4], 0.1, D) };
    for (let i = 0; i < 12; i++) b.value.data[i] = Number(b.value.data[i]) + 0.05; // never equal to a
    await checkOp('Max', [a, b]);
    await checkOp('Min', [a, { value: { ...b.value, dims: [3, 4] } }]);
  });
  test('Where with a constant condition', () =>
    checkOp('Where', [{ value: { dataType: DataType.BOOL, dims: [3, 1], data: Uint8Array.of(1, 0, 1) } }, r([3, 4]), r([4])]));
});

describe('unary math', () => {
  test('Neg', () => checkOp('Neg', [r([3, 4])]));
  test('Abs', () => checkOp('Abs', [away([3, 4])]));
  test('Sqrt', () => checkOp('Sqrt', [positive([3, 4])]));
  test('Exp', () => checkOp('Exp', [r([3, 4])]));
  test('Log', () => checkOp('Log', [positive([3, 4])]));
  test('Reciprocal', () => checkOp('Reciprocal', [away([3, 4], 0.5)]));
  test('Pow with a tensor exponent', () => checkOp('Pow', [positive([3, 4]), r([4])]));
  test('Pow with constant exponent 2 and 3', async () => {
    await checkOp('Pow', [r([3, 4]), { value: { dataType: D, dims: [], data: Float64Array.of(2) }, constant: true }]);
    await checkOp('Pow', [positive([3, 4]), { value: { dataType: D, dims: [], data: Float64Array.of(3) }, constant: true }]);
  });
});

describe('activations', () => {
  test('Relu', () => checkOp('Relu', [away([2, 3, 4])]));
  test('LeakyRelu', () => checkOp('LeakyRelu', [away([2, 3, 4])], { alpha: attr.float(0.2) }));
  test('Sigmoid', () => checkOp('Sigmoid', [r([2, 3, 4])]));
  test('Tanh', () => checkOp('Tanh', [r([2, 3, 4])]));
  test('Softplus (float32)', () => checkOp('Softplus', [r([2, 5], F)]));
  test('Elu (float32)', () => checkOp('Elu', [away([2, 5], 0.3, F)], { alpha: attr.float(0.7) }));
  test('Clip as Relu6, values away from 0 and 6', async () => {
    const x = randomTensor(rng, [3, 8], D);
    for (let i = 0; i < x.data.length; i++) x.data[i] = [-1.3, 0.7, 2.1, 5.2, 6.8, 3.3, -0.4, 4.4][i % 8] + 0.01 * i;
    const c = (v: number) => ({ value: { dataType: D, dims: [], data: Float64Array.of(v) }, constant: true });
    await checkOp('Clip', [{ value: x }, c(0), c(6)]);
    await checkOp('Clip', [{ value: x }, '', c(3)]);
  });
  const piecewise = (values: number[]) => {
    const t = randomTensor(rng, [2, values.length], F);
    for (let i = 0; i < t.data.length; i++) t.data[i] = values[i % values.length] * (1 + 0.01 * i);
    return { value: t };
  };
  test('HardSigmoid (float32, away from its corners at ±2.5)', () =>
    checkOp('HardSigmoid', [piecewise([-4, -2.2, -1, 0.3, 1.7, 2.2, 3.5, -0.6])], { alpha: attr.float(0.2), beta: attr.float(0.5) }));
  test('HardSwish (float32, away from ±3)', () => checkOp('HardSwish', [piecewise([-4.5, -2.5, -1.2, 0.4, 1.9, 2.6, 3.9, -0.2])]));
});

describe('softmax', () => {
  test('Softmax over the last axis', () => checkOp('Softmax', [r([3, 5])], { axis: attr.int(-1) }));
  test('Softmax over axis 1 of a 3-D tensor', () => checkOp('Softmax', [r([2, 4, 3])], { axis: attr.int(1) }));
  test('LogSoftmax', () => checkOp('LogSoftmax', [r([3, 5])], { axis: attr.int(1) }));
});

describe('Gemm and MatMul', () => {
  const combos = [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ];
  test.each(combos)('Gemm transA=%i transB=%i with alpha, beta and a broadcast C', (ta, tb) =>
    checkOp('Gemm', [r(ta ? [4, 3] : [3, 4]), r(tb ? [5, 4] : [4, 5]), r([5])], { transA: attr.int(ta), transB: attr.int(tb), alpha: attr.float(0.7), beta: attr.float(1.3) }));
  test('Gemm with a full C and without C', async () => {
    await checkOp('Gemm', [r([3, 4]), r([4, 2]), r([3, 2])]);
    await checkOp('Gemm', [r([3, 4]), r([2, 4])], { transB: attr.int(1) });
  });
  test.each([
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[4], [4, 5]],
    [[3, 4], [4]],
    [[4], [4]],
    [[2, 3, 4], [4]],
    [[4], [2, 4, 3]],
  ])('MatMul %j × %j', (a, b) => checkOp('MatMul', [r(a), r(b)]));
  test('MatMul with a symbolic batch folds into one Gemm for a 2-D weight', () =>
    checkOp('MatMul', [{ value: randomTensor(rng, [2, 3, 4], D), declared: ['N', 3, 4] }, r([4, 2])]));
});

describe('shape and data movement', () => {
  test('Reshape', () => checkOp('Reshape', [r([2, 3, 4]), ints([6, -1])]));
  test('Flatten', () => checkOp('Flatten', [r([2, 3, 2, 2])], { axis: attr.int(1) }));
  test('Squeeze / Unsqueeze', async () => {
    await checkOp('Squeeze', [r([2, 1, 3, 1]), ints([1, 3])]);
    await checkOp('Unsqueeze', [r([2, 3]), ints([0, 3])]);
  });
  test('Transpose', () => checkOp('Transpose', [r([2, 3, 4])], { perm: attr.ints([2, 0, 1]) }));
  test('Expand', () => checkOp('Expand', [r([3, 1]), ints([2, 3, 4])]));
  test('Cast float64 → float32 (linear: a large step keeps float32 rounding out)', () => checkOp('Cast', [r([3, 4])], { to: attr.int(F) }, 1, 1e-2));
  test('Identity and inference Dropout', async () => {
    await checkOp('Identity', [r([3, 2])]);
    await checkOp('Dropout', [r([3, 2])]);
  });
  test('Concat with static sizes', () => checkOp('Concat', [r([2, 3, 2]), r([2, 1, 2]), r([2, 4, 2])], { axis: attr.int(1) }));
  test('Concat along a symbolic axis', () =>
    checkOp('Concat', [{ value: randomTensor(rng, [2, 3], D), declared: ['A', 3] }, { value: randomTensor(rng, [3, 3], D), declared: ['B', 3] }], { axis: attr.int(0) }));
  test('Split with explicit sizes, every output used', () => checkOp('Split', [r([2, 7]), ints([2, 4, 1])], { axis: attr.int(1) }, 3));
  test('Split into equal parts', () => checkOp('Split', [r([6, 2])], { axis: attr.int(0) }, 3));
  test.each([
    ['step 1 on two axes', [4, 7, 5], [1, -5], [3, 6], [0, 1], [1, 1]],
    ['negative step', [6, 5], [4], [0], [0], [-1]],
    ['step 2 and -2', [7, 6], [1, 5], [6, 0], [0, 1], [2, -2]],
    ['open end', [5, 4], [2], [2 ** 40], [1], [1]],
  ] as [string, number[], number[], number[], number[], number[]][])('Slice %s', (_l, dims, starts, ends, axes, steps) =>
    checkOp('Slice', [r(dims), ints(starts), ints(ends), ints(axes), ints(steps)]));
  test('Slice on a symbolic batch axis', () =>
    checkOp('Slice', [{ value: randomTensor(rng, [5, 3], D), declared: ['N', 3] }, ints([1]), ints([3]), ints([0])]));
  test('Pad (constant) with positive and negative pads', async () => {
    await checkOp('Pad', [r([2, 3, 4]), ints([0, 1, 2, 0, 2, 1])]);
    await checkOp('Pad', [r([2, 5, 4]), ints([0, -1, 2, 0, 1, -2])]);
  });
  test('Tile', () => checkOp('Tile', [r([2, 3]), ints([2, 3])]));
  test('Gather of a channel (Inception transform_input)', () => checkOp('Gather', [r([2, 3, 4]), { value: int64Tensor([], [0]) }], { axis: attr.int(1) }));
  test('Gather with repeated and negative indices', () => checkOp('Gather', [r([5, 3]), { value: int64Tensor([2, 2], [1, -1, 1, 0]) }], { axis: attr.int(0) }));
  test('GatherElements', () => checkOp('GatherElements', [r([3, 4]), { value: int64Tensor([3, 2], [0, 3, 1, 1, 2, 0]) }], { axis: attr.int(1) }));
});

describe('reductions', () => {
  test('ReduceSum over axes given as input, keepdims 0 and 1', async () => {
    await checkOp('ReduceSum', [r([2, 3, 4]), ints([0, 2])], { keepdims: attr.int(0) });
    await checkOp('ReduceSum', [r([2, 3, 4]), ints([-1])], { keepdims: attr.int(1) });
  });
  test('ReduceSum over all axes', () => checkOp('ReduceSum', [r([2, 3])], { keepdims: attr.int(0) }));
  test('ReduceMean (axes attribute), keepdims 0', () => checkOp('ReduceMean', [r([2, 3, 4])], { axes: attr.ints([1, 2]), keepdims: attr.int(0) }));
  test('ReduceMean over a symbolic axis', () =>
    checkOp('ReduceMean', [{ value: randomTensor(rng, [3, 4], D), declared: ['N', 4] }], { axes: attr.ints([0]), keepdims: attr.int(1) }));
});
