import { buildGradientGraph } from '../../src/autodiff/gradient';
import { Dim, attr } from '../../src/onnx/graph';
import { GraphBuilder } from '../../src/onnx/builder';
import { Rng } from '../../src/util/random';
import { expectAccurate, gradCheck, randomTensor } from './gradcheck';

interface ConvCase {
  label: string;
  n?: number;
  c: number;
  o: number;
  hw: [number, number];
  k: [number, number];
  stride?: [number, number];
  pads?: [number, number, number, number];
  dil?: [number, number];
  group?: number;
  bias?: boolean;
  /** input declared with symbolic dims */
  symbolic?: Dim[];
  autoPad?: string;
}

const cases: ConvCase[] = [
  { label: '3×3 same padding', c: 3, o: 4, hw: [7, 9], k: [3, 3], pads: [1, 1, 1, 1] },
  { label: 'stride 2, odd sizes', c: 3, o: 5, hw: [9, 7], k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
  { label: 'rectangular kernel, uneven strides, asymmetric pads', c: 2, o: 3, hw: [8, 11], k: [3, 5], stride: [2, 3], pads: [1, 2, 0, 1] },
  { label: 'dilation 2', c: 3, o: 2, hw: [9, 9], k: [3, 3], dil: [2, 2], pads: [2, 1, 2, 1] },
  { label: 'dilation and stride', c: 2, o: 3, hw: [11, 10], k: [3, 2], dil: [2, 3], stride: [2, 2], pads: [1, 0, 0, 2] },
  { label: 'groups 2', c: 4, o: 6, hw: [6, 7], k: [3, 3], group: 2, pads: [1, 1, 1, 1] },
  { label: 'depthwise', c: 4, o: 4, hw: [7, 6], k: [3, 3], group: 4, pads: [1, 1, 1, 1], stride: [2, 1] },
  { label: 'depthwise with multiplier 2', c: 3, o: 6, hw: [6, 6], k: [3, 3], group: 3, pads: [0, 1, 1, 0] },
  { label: '1×1 pointwise', c: 5, o: 3, hw: [5, 4], k: [1, 1] },
  { label: '1×1 stride 2', c: 3, o: 4, hw: [7, 5], k: [1, 1], stride: [2, 2] },
  { label: 'no bias, large kernel, stride 4 (AlexNet stem shape)', c: 3, o: 4, hw: [23, 19], k: [7, 7], stride: [4, 4], pads: [2, 2, 2, 2], bias: false },
  { label: 'small output, many channels (batch folded into Gemm)', n: 3, c: 16, o: 16, hw: [4, 4], k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
  { label: 'grouped, small output (folded)', n: 2, c: 8, o: 8, hw: [3, 3], k: [3, 3], group: 2 },
  { label: 'pads beyond the kernel reach', c: 2, o: 2, hw: [4, 5], k: [2, 2], pads: [2, 2, 2, 2] },
  { label: 'fewer output than input channels (im2col of dy), asymmetric pads', c: 6, o: 2, hw: [7, 8], k: [3, 3], pads: [0, 1, 2, 1] },
  { label: 'im2col of dy, grouped and dilated', c: 6, o: 4, hw: [8, 7], k: [3, 2], group: 2, dil: [2, 1], pads: [2, 1, 1, 0] },
  { label: 'im2col of dy, small output (folded)', n: 2, c: 16, o: 4, hw: [3, 3], k: [3, 3], pads: [1, 1, 1, 1] },
  { label: '1×1 with padding, fewer outputs', c: 5, o: 2, hw: [4, 3], k: [1, 1], pads: [1, 0, 0, 1] },
  { label: 'per-offset products: stride, dilation, asymmetric pads', c: 8, o: 8, hw: [9, 8], k: [3, 3], stride: [2, 1], dil: [1, 2], pads: [1, 2, 0, 1] },
  { label: 'per-offset products on the wide grid (stride 1), dilated, asymmetric pads', c: 8, o: 12, hw: [7, 9], k: [3, 3], dil: [1, 2], pads: [1, 0, 2, 1] },
  { label: 'per-offset products on the wide grid, symbolic batch', c: 8, o: 8, hw: [6, 5], k: [3, 3], pads: [1, 1, 1, 1], symbolic: ['N', 8, 6, 5] },
  { label: 'per-offset products per sample on the wide grid (frames larger than the batch-folded form takes)', n: 1, c: 8, o: 8, hw: [40, 41], k: [3, 3], pads: [1, 1, 1, 1] },
  { label: 'per-offset products of dy per sample on the wide grid (large frames)', n: 1, c: 16, o: 8, hw: [40, 40], k: [3, 3], pads: [1, 1, 1, 1] },
  { label: 'per-offset products, grouped', c: 16, o: 16, hw: [6, 7], k: [3, 3], group: 2, pads: [1, 1, 1, 1] },
  { label: 'per-offset products of dy', c: 16, o: 8, hw: [7, 6], k: [3, 3], pads: [0, 1, 2, 1] },
  { label: 'per-offset products of dy, grouped and dilated', n: 2, c: 32, o: 16, hw: [6, 5], k: [3, 2], group: 2, dil: [2, 1], pads: [2, 1, 1, 0] },
  { label: 'symbolic batch', c: 3, o: 4, hw: [7, 6], k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], symbolic: ['N', 3, 7, 6] },
  { label: 'symbolic spatial sizes', c: 2, o: 3, hw: [9, 8], k: [3, 3], stride: [2, 2], pads: [1, 1, 0, 0], symbolic: ['N', 2, 'H', 'W'] },
  { label: 'symbolic spatial sizes, im2col of dy', c: 4, o: 2, hw: [6, 7], k: [3, 3], pads: [1, 1, 1, 1], symbolic: ['N', 4, 'H', 'W'] },
  { label: 'auto_pad SAME_UPPER, stride 2', c: 2, o: 3, hw: [7, 8], k: [3, 3], stride: [2, 2], autoPad: 'SAME_UPPER' },
];

describe('Conv gradient', () => {
  test.each(cases)('$label', async (cc) => {
    const rng = new Rng(cc.c * 100 + cc.o * 10 + cc.hw[0]);
    const n = cc.n ?? 2;
    const group = cc.group ?? 1;
    const b = new GraphBuilder('conv', { seed: 1 });
    const x = b.input('x', cc.symbolic ?? [n, cc.c, ...cc.hw]);
    const w = b.constant(randomTensor(rng, [cc.o, cc.c / group, ...cc.k]), 'w');
    const inputs = [x, w];
    if (cc.bias ?? true) inputs.push(b.constant(randomTensor(rng, [cc.o]), 'b'));
    const attrs: Record<string, ReturnType<typeof attr.int>> = { kernel_shape: attr.ints(cc.k), group: attr.int(group) };
    if (cc.stride) attrs.strides = attr.ints(cc.stride);
    if (cc.pads) attrs.pads = attr.ints(cc.pads);
    if (cc.dil) attrs.dilations = attr.ints(cc.dil);
    if (cc.autoPad) attrs.auto_pad = attr.string(cc.autoPad);
    b.output(b.op('Conv', inputs, attrs), 'y');
    const results = await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, [n, cc.c, ...cc.hw]) }, wrt: inputs });
    expectAccurate(results);
  });
});

describe('ConvTranspose gradient', () => {
  const tcases = [
    { label: 'stride 2 with output padding', c: 3, o: 2, hw: [4, 5] as [number, number], k: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], outPad: [1, 0], group: 1 },
    { label: 'stride 1, asymmetric pads', c: 2, o: 3, hw: [5, 4] as [number, number], k: [3, 2], stride: [1, 1], pads: [0, 1, 1, 0], outPad: [0, 0], group: 1 },
    { label: 'grouped, dilated', c: 4, o: 6, hw: [4, 4] as [number, number], k: [2, 3], stride: [2, 1], pads: [0, 1, 0, 1], outPad: [1, 0], group: 2, dil: [1, 2] },
  ];
  test.each(tcases)('$label', async (cc) => {
    const rng = new Rng(7 + cc.c);
    const b = new GraphBuilder('convT', { seed: 1 });
    const x = b.input('x', [2, cc.c, ...cc.hw]);
    const w = b.constant(randomTensor(rng, [cc.c, cc.o / cc.group, ...cc.k]), 'w');
    const bias = b.constant(randomTensor(rng, [cc.o]), 'b');
    const attrs = {
      kernel_shape: attr.ints(cc.k),
      strides: attr.ints(cc.stride),
      pads: attr.ints(cc.pads),
      output_padding: attr.ints(cc.outPad),
      group: attr.int(cc.group),
      dilations: attr.ints(cc.dil ?? [1, 1]),
    };
    b.output(b.op('ConvTranspose', [x, w, bias], attrs), 'y');
    const results = await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, [2, cc.c, ...cc.hw]) }, wrt: [x, w, bias] });
    expectAccurate(results);
  });
});

describe('Conv gradient formulation', () => {
  const opsOf = (stride: number, hw: number, c: number, o: number) => {
    const b = new GraphBuilder('conv', { seed: 1 });
    const x = b.input('x', ['N', c, hw, hw]);
    b.output(b.conv(x, { out: o, kernel: 3, stride }), 'y');
    const g = buildGradientGraph({ graph: b.build(), loss: 'y', wrt: ['x', 'conv.weight'] }).graph;
    return g.nodes.map((n) => n.opType);
  };
  test('stride 1: input gradient is a Conv with the flipped kernel; weight gradient one batch-folded Gemm per kernel offset', () => {
    const ops = opsOf(1, 28, 8, 8);
    expect(ops).not.toContain('ConvTranspose');
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(2); // forward, input gradient
    expect(ops.filter((o) => o === 'Gemm')).toHaveLength(9);
    expect(ops).not.toContain('MatMul');
    expect(ops).not.toContain('ReduceSum'); // the batch is inside the Gemms
  });
  test('stride 2 uses ConvTranspose; few channels take an im2col Conv, and a small output folds the batch into one Gemm', () => {
    const ops = opsOf(2, 4, 4, 32);
    expect(ops).toContain('ConvTranspose');
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(2); // forward, im2col
    expect(ops).toContain('Gemm');
    expect(ops).not.toContain('MatMul');
  });
});
