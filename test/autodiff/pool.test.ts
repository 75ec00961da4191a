import { Dim, attr, Attr } from '../../src/onnx/graph';
import { GraphBuilder } from '../../src/onnx/builder';
import { DataType } from '../../src/onnx/dtype';
import { Rng } from '../../src/util/random';
import { distinctValues, expectAccurate, gradCheck, randomTensor } from './gradcheck';

interface PoolCase {
  label: string;
  hw: [number, number];
  k: [number, number];
  stride?: [number, number];
  pads?: [number, number, number, number];
  dil?: [number, number];
  ceil?: boolean;
  includePad?: boolean;
  symbolic?: Dim[];
}

function poolAttrs(p: PoolCase): Record<string, Attr> {
  const a: Record<string, Attr> = { kernel_shape: attr.ints(p.k) };
  if (p.stride) a.strides = attr.ints(p.stride);
  if (p.pads) a.pads = attr.ints(p.pads);
  if (p.dil) a.dilations = attr.ints(p.dil);
  if (p.ceil) a.ceil_mode = attr.int(1);
  if (p.includePad) a.count_include_pad = attr.int(1);
  return a;
}

async function checkPool(op: string, p: PoolCase, seed: number) {
  const rng = new Rng(seed);
  const dims = [2, 3, ...p.hw];
  const b = new GraphBuilder(op, { seed: 1 });
  const x = b.input('x', p.symbolic ?? dims);
  b.output(b.op(op, [x], poolAttrs(p)), 'y');
  const feeds = { x: op === 'MaxPool' ? distinctValues(rng, dims) : randomTensor(rng, dims) };
  expectAccurate(await gradCheck({ graph: b.build(), feeds, wrt: [x], coords: 64 }));
}

describe('MaxPool gradient', () => {
  const cases: PoolCase[] = [
    { label: '2×2 stride 2 (disjoint windows)', hw: [6, 8], k: [2, 2], stride: [2, 2] },
    { label: '2×2 stride 2, odd sizes', hw: [7, 5], k: [2, 2], stride: [2, 2] },
    { label: '3×3 stride 2 pad 1 (ResNet stem, overlapping)', hw: [9, 8], k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
    { label: '3×3 stride 1 pad 1 (every element in 9 windows)', hw: [5, 6], k: [3, 3], pads: [1, 1, 1, 1] },
    { label: '3×3 stride 2, ceil mode (Inception/AlexNet)', hw: [8, 7], k: [3, 3], stride: [2, 2], ceil: true },
    { label: 'rectangular, dilated', hw: [9, 9], k: [2, 3], stride: [1, 2], dil: [2, 1] },
    { label: '3×3 stride 3 with end pads (disjoint)', hw: [8, 8], k: [3, 3], stride: [3, 3], pads: [0, 0, 1, 1] },
    { label: '2×2 stride 2, ceil mode on odd sizes (disjoint windows overhanging)', hw: [7, 5], k: [2, 2], stride: [2, 2], ceil: true },
    { label: 'symbolic batch, overlapping', hw: [7, 7], k: [3, 3], stride: [2, 2], symbolic: ['N', 3, 7, 7] },
    { label: 'symbolic spatial sizes', hw: [6, 6], k: [2, 2], stride: [2, 2], symbolic: ['N', 3, 'H', 'W'] },
  ];
  test.each(cases)('$label', (p) => checkPool('MaxPool', p, p.hw[0] * 13 + p.k[0]));
});

describe('AveragePool gradient', () => {
  const cases: PoolCase[] = [
    { label: '2×2 stride 2 (DenseNet transition)', hw: [6, 8], k: [2, 2], stride: [2, 2] },
    { label: '2×2 stride 2, odd sizes', hw: [7, 5], k: [2, 2], stride: [2, 2] },
    { label: '3×3 stride 1 pad 1, count_include_pad (Inception)', hw: [6, 5], k: [3, 3], pads: [1, 1, 1, 1], includePad: true },
    { label: '3×3 stride 1 pad 1, pads excluded from the count', hw: [6, 5], k: [3, 3], pads: [1, 1, 1, 1] },
    { label: '3×3 stride 2, ceil mode', hw: [8, 7], k: [3, 3], stride: [2, 2], ceil: true },
    { label: '3×3 stride 2, ceil mode with pads', hw: [7, 8], k: [3, 3], stride: [2, 2], pads: [1, 0, 1, 0], ceil: true, includePad: true },
    { label: '1×1 stride 1 (adaptive pooling to the same size)', hw: [4, 4], k: [1, 1] },
    { label: 'symbolic batch', hw: [6, 6], k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], symbolic: ['N', 3, 6, 6] },
    { label: 'symbolic spatial sizes (disjoint windows)', hw: [7, 6], k: [2, 2], stride: [2, 2], symbolic: ['N', 3, 'H', 'W'] },
  ];
  test.each(cases)('$label', (p) => checkPool('AveragePool', p, p.hw[0] * 17 + p.k[1]));
});

describe('global pooling gradients', () => {
  test.each([
    ['GlobalAveragePool', [2, 3, 5, 4]],
    ['GlobalAveragePool', ['N', 3, 'H', 'W']],
    ['GlobalMaxPool', [2, 3, 5, 4]],
  ] as [string, Dim[]][])('%s on %j', async (op, shape) => {
    const rng = new Rng(5);
    const b = new GraphBuilder(op);
    const x = b.input('x', shape);
    b.output(b.op(op, [x]), 'y');
    const feeds = { x: op === 'GlobalMaxPool' ? distinctValues(rng, [2, 3, 5, 4]) : randomTensor(rng, [2, 3, 5, 4]) };
    expectAccurate(await gradCheck({ graph: b.build(), feeds, wrt: [x], coords: 120 }));
  });
});

describe('MaxPool with indices and MaxUnpool (SegNet)', () => {
  test.each([
    ['2×2 stride 2, odd size restored', [2, 3, 7, 5], 2, 2],
    ['3×3 stride 2 overlapping', [2, 2, 9, 9], 3, 2],
  ] as [string, number[], number, number][])('%s', async (_label, dims, k, s) => {
    const rng = new Rng(11);
    const b = new GraphBuilder('unpool', { seed: 3 });
    const x = b.input('x', ['N', ...dims.slice(1)]);
    const { output, indices } = b.maxPoolWithIndices(x, { kernel: k, stride: s });
    // Something differentiable between pool and unpool, and the pooled value used twice.
    const mid = b.mul(output, b.constant(randomTensor(rng, [1, dims[1], 1, 1]), 'gain'));
    const up = b.maxUnpool(mid, indices, { kernel: k, stride: s, like: x });
    b.output(b.add(up, b.mul(x, x)), 'y');
    b.output(output, 'pooled');
    expectAccurate(await gradCheck({ graph: b.build(), feeds: { x: distinctValues(rng, dims) }, wrt: [x], coords: 80 }));
  });
});

describe('BatchNormalization (inference form) gradient', () => {
  test.each([
    ['NCHW', [3, 4, 5, 3]],
    ['NC (after a linear layer)', [5, 6]],
  ] as [string, number[]][])('%s, float64, wrt input and all parameters', async (_l, dims) => {
    const rng = new Rng(2);
    const c = dims[1];
    const D = DataType.DOUBLE;
    const b = new GraphBuilder('bn');
    const x = b.input('x', dims, D);
    const params = ['scale', 'bias', 'mean', 'var'].map((n) => {
      const t = randomTensor(rng, [c], D);
      if (n === 'var') for (let i = 0; i < c; i++) t.data[i] = 0.5 + Math.abs(Number(t.data[i]));
      return b.constant(t, n);
    });
    b.output(b.op('BatchNormalization', [x, ...params], { epsilon: attr.float(1e-3) }), 'y');
    expectAccurate(await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, dims, D) }, wrt: [x, ...params] }));
  });
});

describe('Resize (nearest) gradient', () => {
  const cases: { label: string; dims: number[]; scales?: number[]; sizes?: number[]; attrs?: Record<string, Attr> }[] = [
    { label: '×2 with ONNX defaults (half_pixel, round_prefer_floor)', dims: [2, 2, 3, 4], scales: [1, 1, 2, 2] },
    { label: '×3 as PyTorch exports it (asymmetric, floor)', dims: [1, 2, 3, 2], scales: [1, 1, 3, 3], attrs: { coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') } },
    { label: 'to sizes 5×7 from 3×4 (not a block pattern)', dims: [2, 1, 3, 4], sizes: [2, 1, 5, 7] },
    { label: 'block upscale of the channel axis', dims: [2, 2, 3, 2], scales: [1, 2, 1, 1] },
    { label: 'block on one axis, index map on the other', dims: [1, 2, 3, 4], scales: [1, 1, 2, 1.5] },
    { label: 'downsample by sizes, align_corners', dims: [1, 2, 6, 5], sizes: [1, 2, 4, 3], attrs: { coordinate_transformation_mode: attr.string('align_corners') } },
  ];
  test.each(cases)('$label', async (c) => {
    const rng = new Rng(3);
    const D = DataType.FLOAT; // ORT has no double Resize; nearest resize is linear, so float32 FD is exact
    const b = new GraphBuilder('resize');
    const x = b.input('x', c.dims, D);
    const inputs = [x, ''];
    if (c.scales) inputs.push(b.constant({ dataType: DataType.FLOAT, dims: [4], data: Float32Array.from(c.scales) }, 'scales'));
    else inputs.push('', b.ints64(c.sizes!, 'sizes'));
    b.output(b.op('Resize', inputs, { mode: attr.string('nearest'), ...(c.attrs ?? {}) }), 'y');
    expectAccurate(await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, c.dims, D) }, wrt: [x] }));
  });
});
