import { UserError } from '../../util/errors';
import { DataType } from '../../onnx/dtype';
import { Node, attr, attrInt, attrInts, describeNode } from '../../onnx/graph';
import { windowParams } from '../../onnx/shapes';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * Pooling. MaxPool routes each output's gradient to the input element that
 * won its window, using the pool's own argmax indices (an indices output is
 * added to the forward node when it has none), so ties resolve exactly as the
 * forward did:
 *   - non-overlapping windows: MaxUnpool (each input element wins at most once);
 *   - overlapping windows (3×3 stride 2 …): ScatterElements with
 *     reduction='add' over the flattened tensor, so an element that wins
 *     several windows receives the sum.
 * AveragePool spreads dy / (window count) back over each window: by Expand
 * when windows tile the input exactly, else by a depthwise ConvTranspose with
 * a ones kernel.
 */

function maxPoolIndices(e: Emitter, node: Node): string {
  if (attrInt(node, 'storage_order', 0) !== 0) throw new UserError(`autodiff: ${describeNode(node)} uses column-major indices (storage_order=1)`);
  if (node.outputs[1]) return node.outputs[1];
  const name = e.scope.fresh(`${node.outputs[0]}.argmax`);
  node.outputs[1] = name;
  e.infer(node);
  return name;
}

function poolWindow(e: Emitter, node: Node, x: string) {
  const xs = e.shape(x);
  if (!xs) throw new UserError(`autodiff: the shape of '${x}' (input of ${describeNode(node)}) is unknown`);
  const kernel = attrInts(node, 'kernel_shape')!;
  const { strides, dilations, pads } = windowParams(node, xs, kernel);
  return { xs, kernel, strides, dilations, pads, nd: kernel.length };
}

/** Scatter-adds flat values into a zero tensor shaped like x (indices are flat offsets into x). */
function scatterAddFlat(e: Emitter, x: string, indices: string, values: string): string {
  e.requireOpset(16, 'the gradient of a max pool with overlapping windows (ScatterElements with reduction=add)');
  const s = e.staticShape(x);
  const total = s ? e.ints([s.reduce((a, b) => a * b, 1)]) : e.op('ReduceProd', [e.shapeOf(x)], { keepdims: attr.int(1) });
  const zeros = e.op('ConstantOfShape', [total], { value: attr.tensor(zeroTensor(e.dataType(x))) });
  const flat = (v: string) => e.op('Reshape', [v, e.ints([-1])]);
  const r = e.op('ScatterElements', [zeros, flat(indices), flat(values)], { axis: attr.int(0), reduction: attr.string('add') });
  return e.reshapeLike(r, x);
}

function zeroTensor(dt: DataType) {
  return dt === DataType.DOUBLE ? { dataType: dt, dims: [1], data: Float64Array.of(0) } : { dataType: DataType.FLOAT, dims: [1], data: Float32Array.of(0) };
}

/**
 * ORT's averaging divisor of each output position along one axis: the window
 * clipped to the padded input (count_include_pad) or to the input itself.
 */
function divisors(size: number, out: number, k: number, s: number, padBegin: number, padEnd: number, includePad: boolean): number[] {
  const r: number[] = [];
  for (let o = 0; o < out; o++) {
    let start = o * s - padBegin;
    let end = Math.min(start + k, size + padEnd);
    const padded = end - start;
    start = Math.max(start, 0);
    end = Math.min(end, size);
    r.push(includePad ? padded : end - start);
  }
  return r;
}

export const pool: Record<string, GradientRule> = {
  MaxPool: {
    grad: ({ node, dy: [g], e }) => {
      const x = node.inputs[0];
      return [
        () => {
          const { xs, kernel, strides, dilations, pads, nd } = poolWindow(e, node, x);
          const idx = maxPoolIndices(e, node);
          const disjoint = kernel.every((k, i) => strides[i] >= dilations[i] * (k - 1) + 1);
          // MaxUnpool insists that output_shape covers the size it infers from its own attributes.
          const ys = e.shape(node.outputs[0]);
          const fits =
            dilations.every((d) => d === 1) &&
            xs.slice(2).every((h, i) => {
              const o = ys?.[i + 2];
              return typeof h === 'number' && typeof o === 'number' && (o - 1) * strides[i] + kernel[i] - pads[i] - pads[i + nd] <= h;
            });
          if (!disjoint || !fits) return scatterAddFlat(e, x, idx, g!);
          return e.op('MaxUnpool', [g!, idx, e.shapeOf(x)], { kernel_shape: attr.ints(kernel), strides: attr.ints(strides), pads: attr.ints(pads) });
        },
      ];
    },
  },
  GlobalMaxPool: {
    grad: ({ node, dy: [g], e }) => [
      () => {
        // Argmax over the flattened spatial axes, then scatter dy there.
        const x = node.inputs[0];
        const flat = e.op('Reshape', [x, e.ints([0, 0, -1])]);
        const arg = e.op('ArgMax', [flat], { axis: attr.int(2), keepdims: attr.int(1) });
        const upd = e.op('Reshape', [g!, e.ints([0, 0, 1])]);
        const r = e.op('ScatterElements', [e.zerosLike(flat), arg, upd], { axis: attr.int(2) });
        return e.reshapeLike(r, x);
      },
    ],
  },
  MaxUnpool: {
    differentiable: [0],
    // y[I[i]] = x[i]: dx[i] = dy[I[i]]
    grad: ({ node, dy: [g], e }) => [() => e.op('Gather', [e.op('Reshape', [g!, e.ints([-1])]), node.inputs[1]], { axis: attr.int(0) })],
  },
  GlobalAveragePool: {
    grad: ({ node, dy: [g], e }) => [
      () => {
        const x = node.inputs[0];
        const xs = e.shape(x)!;
        const spatial = xs.slice(2);
        let scaled: string;
        if (spatial.every((d) => typeof d === 'number')) scaled = e.scale(g!, 1 / (spatial as number[]).reduce((a, b) => a * b, 1));
        else {
          const count = e.op('ReduceProd', [e.op('Shape', [x], { start: attr.int(2) })], { keepdims: attr.int(0) });
          scaled = e.div(g!, e.op('Cast', [count], { to: attr.int(e.dataType(x)) }));
        }
        return e.expandLike(scaled, x);
      },
    ],
  },
  AveragePool: {
    grad: ({ node, dy: [g], e }) => [() => averagePoolGrad(e, node, g!)],
  },
};

function averagePoolGrad(e: Emitter, node: Node, g: string): string {
  const x = node.inputs[0];
  const { xs, kernel, strides, dilations, pads, nd } = poolWindow(e, node, x);
  if (dilations.some((d) => d !== 1)) throw new UserError(`autodiff: ${describeNode(node)} is a dilated AveragePool`);
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  const ceil = attrInt(node, 'ceil_mode', 0) === 1;
  const ys = e.shape(node.outputs[0]);
  const spatial = xs.slice(2);
  const tiles = !ceil && pads.every((p) => p === 0) && kernel.every((k, i) => strides[i] === k);
  if (tiles) {
    // Each input element lies in at most one window of exactly k elements.
    const area = kernel.reduce((a, b) => a * b, 1);
    const scaled = e.scale(g, 1 / area);
    // [N, C, Ho, Wo] → [N, C, Ho, 1, Wo, 1] → expand → [N, C, Ho·k, Wo·k]
    const axes = Array.from({ length: nd }, (_, i) => 3 + 2 * i);
    const up = e.unsqueeze(scaled, axes);
    const outSpatial = ys?.slice(2);
    const expandShape = e.op('Concat', [
      e.op('Shape', [g], { end: attr.int(2) }),
      ...Array.from({ length: nd }, (_, i) => [typeof outSpatial?.[i] === 'number' ? e.ints([outSpatial[i] as number]) : e.dimOf(g, i + 2), e.ints([kernel[i]])]).flat(),
    ], { axis: attr.int(0) });
    const expanded = e.op('Expand', [up, expandShape]);
    return fitTrailing(e, reshapeMerged(e, expanded, g, kernel), x, nd);
  }
  if (!spatial.every((d) => typeof d === 'number') || !ys || !ys.slice(2).every((d) => typeof d === 'number')) {
    throw new UserError(`autodiff: ${describeNode(node)} has symbolic spatial sizes; its gradient needs them static`);
  }
  const channels = xs[1];
  if (typeof channels !== 'number') throw new UserError(`autodiff: ${describeNode(node)} has a symbolic channel count`);
  const outSizes = ys.slice(2) as number[];
  const sizes = spatial as number[];
  // Per-position divisor as a [1, 1, Ho, Wo] constant (outer product of the per-axis counts).
  const per = sizes.map((h, i) => divisors(h, outSizes[i], kernel[i], strides[i], pads[i], pads[i + nd], includePad));
  const total = outSizes.reduce((a, b) => a * b, 1);
  const dt = e.dataType(x);
  const inv = dt === DataType.DOUBLE ? new Float64Array(total) : new Float32Array(total);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat;
    let d = 1;
    for (let i = nd - 1; i >= 0; i--) {
      d *= per[i][rem % outSizes[i]];
      rem = Math.floor(rem / outSizes[i]);
    }
    inv[flat] = 1 / d;
  }
  const weighted = e.mul(g, e.constant({ dataType: dt, dims: [1, 1, ...outSizes], data: inv }, 'inv_count'));
  const ones = dt === DataType.DOUBLE ? new Float64Array(channels * kernel.reduce((a, b) => a * b, 1)).fill(1) : new Float32Array(channels * kernel.reduce((a, b) => a * b, 1)).fill(1);
  const kernelOnes = e.constant({ dataType: dt, dims: [channels, 1, ...kernel], data: ones }, 'ones_kernel');
  // ConvTranspose's natural size vs x: extra rows are added by output_padding, overhang (ceil mode) cropped by the end pad.
  const endPads = pads.slice(nd);
  const outPad = sizes.map((h, i) => {
    const natural = strides[i] * (outSizes[i] - 1) + kernel[i] - pads[i] - endPads[i];
    const r = h - natural;
    if (r < 0) {
      endPads[i] -= r;
      return 0;
    }
    return r;
  });
  return e.op('ConvTranspose', [weighted, kernelOnes], {
    kernel_shape: attr.ints(kernel),
    strides: attr.ints(strides),
    pads: attr.ints([...pads.slice(0, nd), ...endPads]),
    output_padding: attr.ints(outPad),
    group: attr.int(channels),
  });
}

/** [N, C, Ho, k, Wo, k] → [N, C, Ho·k, Wo·k]. */
function reshapeMerged(e: Emitter, expanded: string, g: string, kernel: number[]): string {
  const nd = kernel.length;
  const ys = e.shape(g)!;
  const dims = ys.slice(2).map((d, i) => (typeof d === 'number' ? d * kernel[i] : undefined));
  if (dims.every((d) => d !== undefined)) return e.op('Reshape', [expanded, e.ints([0, 0, ...(dims as number[])])]);
  const parts = Array.from({ length: nd }, (_, i) => e.op('Mul', [e.dimOf(g, i + 2), e.ints([kernel[i]])]));
  return e.op('Reshape', [expanded, e.op('Concat', [e.ints([0, 0]), ...parts], { axis: attr.int(0) })]);
}

/** Zero-pads the trailing spatial rows a floor-mode pool never read, to x's size. */
function fitTrailing(e: Emitter, v: string, x: string, nd: number): string {
  const vs = e.shape(v);
  const xs = e.shape(x)!;
  const rank = nd + 2;
  const staticPads = vs && xs.slice(2).every((d, i) => typeof d === 'number' && typeof vs[i + 2] === 'number');
  if (staticPads) {
    const after = xs.slice(2).map((d, i) => (d as number) - (vs![i + 2] as number));
    if (after.every((a) => a === 0)) return v;
    return e.op('Pad', [v, e.ints([...new Array(rank).fill(0), 0, 0, ...after])]);
  }
  const after = e.sub(e.op('Shape', [x], { start: attr.int(2) }), e.op('Shape', [v], { start: attr.int(2) }));
  return e.op('Pad', [v, e.op('Concat', [e.ints(new Array(rank + 2).fill(0)), after], { axis: attr.int(0) })]);
}
