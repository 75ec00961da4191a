import { UserError } from '../../util/errors';
import { DataType } from '../../onnx/dtype';
import { Attr, Node, attr, attrInt, attrInts, attrString, describeNode } from '../../onnx/graph';
import { windowParams } from '../../onnx/shapes';
import { TensorData } from '../../onnx/tensor';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * Conv and ConvTranspose.
 *
 * Input gradient: a Conv with the kernel flipped and its in/out channels
 * swapped when all strides are 1 (measured faster than ConvTranspose on ORT's
 * CPU EP), else ConvTranspose with output_padding restoring odd sizes.
 *
 * Weight gradient (see bench/autodiff.ts for the measurements that chose it):
 * im2col by one depthwise Conv with a fixed one-hot kernel, which handles
 * strides, pads and dilations, giving cols [N, C·k², P]; then
 *   - per-sample MatMul dy[N, O, P] · colsᵀ → [N, O, C·k²] and a ReduceSum
 *     over N, when P (output pixels) is large: well-shaped GEMMs, no transposes;
 *   - or, when P is small (late layers), the batch folded into the GEMM's
 *     inner dimension: one Gemm over [O, N·P] × [C·k², N·P]ᵀ, so no
 *     [N, O, C·k²] intermediate is ever materialised.
 */
export interface Window {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

function convWindow(e: Emitter, node: Node, x: string, w: string): Window {
  const ws = e.staticShape(w);
  if (!ws) throw new UserError(`autodiff: ${describeNode(node)} needs a weight of static shape`);
  const kernel = attrInts(node, 'kernel_shape', ws.slice(2));
  const xs = e.shape(x);
  if (!xs) throw new UserError(`autodiff: the shape of '${x}' (input of ${describeNode(node)}) is unknown`);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad.startsWith('SAME') && xs.slice(2).some((d) => typeof d !== 'number')) {
    throw new UserError(`autodiff: ${describeNode(node)} uses auto_pad=${autoPad} on symbolic spatial sizes`);
  }
  const { strides, dilations, pads } = windowParams(node, xs, kernel);
  return { kernel, strides, pads, dilations, group: attrInt(node, 'group', 1) };
}

function windowAttrs(w: Window, extra: Record<string, Attr> = {}): Record<string, Attr> {
  return {
    kernel_shape: attr.ints(w.kernel),
    strides: attr.ints(w.strides),
    pads: attr.ints(w.pads),
    dilations: attr.ints(w.dilations),
    group: attr.int(w.group),
    ...extra,
  };
}

/** One-hot depthwise kernel [C·k², 1, k…]: output channel c·k² + t copies offset t of channel c. */
function im2colKernel(channels: number, kernel: number[], dataType: DataType): TensorData {
  const kk = kernel.reduce((p, k) => p * k, 1);
  const n = channels * kk * kk;
  const data = dataType === DataType.DOUBLE ? new Float64Array(n) : new Float32Array(n);
  for (let c = 0; c < channels; c++) for (let t = 0; t < kk; t++) data[(c * kk + t) * kk + t] = 1;
  return { dataType, dims: [channels * kk, 1, ...kernel], data };
}

/** One-hot depthwise kernel with offsets reversed: channel c·k² + t picks offset (k−1−t) per axis. */
function im2colKernelFlipped(channels: number, kernel: number[], dataType: DataType): TensorData {
  const t = im2colKernel(channels, kernel, dataType);
  const kk = kernel.reduce((p, k) => p * k, 1);
  for (let i = 0; i < t.data.length; i++) t.data[i] = 0;
  for (let c = 0; c < channels; c++) for (let j = 0; j < kk; j++) t.data[(c * kk + j) * kk + (kk - 1 - j)] = 1;
  return t;
}

/**
 * Σ over samples and positions of left[n, g, l, p] · cols[n, g, r, p] → [g, l, r]:
 * the correlation both weight-gradient layouts reduce to.
 */
function correlate(e: Emitter, left: string, cols: string, n: number, g: number, l: number, r: number, p: number | undefined): string {
  // Per-sample products materialise l·r per sample; folding the batch into one GEMM costs transposes of (l + r)·p.
  const batched = p === undefined || l * r <= p * (l + r);
  if (batched) {
    const pp = p ?? -1;
    const a = g === 1 ? e.op('Reshape', [left, e.ints([n, l, pp])]) : e.op('Reshape', [left, e.ints([n, g, l, pp])]);
    const b = g === 1 ? e.op('Reshape', [cols, e.ints([n, r, pp])]) : e.op('Reshape', [cols, e.ints([n, g, r, pp])]);
    return e.reduceSum(e.op('MatMul', [a, e.transpose(b, g === 1 ? [0, 2, 1] : [0, 1, 3, 2])]), [0], false);
  }
  if (g === 1) {
    const a = e.op('Reshape', [e.transpose(e.op('Reshape', [left, e.ints([n, l, p])]), [1, 0, 2]), e.ints([l, -1])]);
    const b = e.op('Reshape', [e.transpose(e.op('Reshape', [cols, e.ints([n, r, p])]), [1, 0, 2]), e.ints([r, -1])]);
    return e.op('Gemm', [a, b], { transB: attr.int(1) });
  }
  const a = e.op('Reshape', [e.transpose(e.op('Reshape', [left, e.ints([n, g, l, p])]), [1, 2, 0, 3]), e.ints([g, l, -1])]);
  const b = e.op('Reshape', [e.transpose(e.op('Reshape', [cols, e.ints([n, g, r, p])]), [1, 2, 0, 3]), e.ints([g, r, -1])]);
  return e.op('MatMul', [a, e.transpose(b, [0, 2, 1])]);
}

/** Offsets of a kernel in row-major order: [t_h, t_w, …] for t = 0 … k²−1. */
function kernelOffsets(kernel: number[]): number[][] {
  const r: number[][] = [[]];
  for (const k of kernel) {
    const next: number[][] = [];
    for (const prefix of r) for (let i = 0; i < k; i++) next.push([...prefix, i]);
    r.splice(0, r.length, ...next);
  }
  return r;
}

/**
 * Σ over samples and positions of left[n, g, l, p] · shifted_t[n, g, r, p], one
 * batched MatMul per kernel offset t, stacked → [g, l, r, k²]. No im2col
 * tensor is materialised: each shifted operand is a strided Slice.
 */
function correlateOffsets(e: Emitter, left: string, padded: string, n: number, g: number, l: number, r: number, p: number, slice: (t: number[]) => { starts: number[]; ends: number[]; steps: number[] }, kernel: number[]): string {
  const nd = kernel.length;
  const axes = Array.from({ length: nd }, (_, i) => i + 2);
  const shape = (c: number) => (g === 1 ? [n, c, p] : [n, g, c, p]);
  const a = e.op('Reshape', [left, e.ints(shape(l))]);
  const swap = g === 1 ? [0, 2, 1] : [0, 1, 3, 2];
  const parts = kernelOffsets(kernel).map((t) => {
    const { starts, ends, steps } = slice(t);
    const shifted = e.op('Slice', [padded, e.ints(starts), e.ints(ends), e.ints(axes), e.ints(steps)]);
    const prod = e.op('MatMul', [a, e.transpose(e.op('Reshape', [shifted, e.ints(shape(r))]), swap)]);
    return e.unsqueeze(e.reduceSum(prod, [0], false), [g === 1 ? 2 : 3]);
  });
  const stacked = e.op('Concat', parts, { axis: attr.int(g === 1 ? 2 : 3) });
  return g === 1 ? e.unsqueeze(stacked, [0]) : stacked;
}

/**
 * correlateOffsets for 2-D stride-1 windows on the "wide" grid: with both
 * operands padded to a common row width wp, the operand shifted by kernel
 * offset t is one contiguous range of its flattened rows, so each shift is a
 * block copy rather than a strided 2-D Slice (measured several times faster
 * for small images). `left` [n, g·l, rows, ≤wp] is zero-padded on the right
 * to wp; `big` [n, g·r, H, wp] is padded with one extra zero row so every
 * range fits; columns past left's width meet zeros and add nothing.
 */
function correlateWide(e: Emitter, left: string, leftWidth: number, big: string, n: number, g: number, l: number, r: number, rows: number, wp: number, start: (t: number[]) => number, kernel: number[]): string {
  const len = rows * wp;
  const shape = (c: number, last: number) => (g === 1 ? [n, c, last] : [n, g, c, last]);
  const a = e.op('Reshape', [zeroPad(e, left, [0, 0], [0, wp - leftWidth]), e.ints(shape(l, len))]);
  const flat = e.op('Reshape', [big, e.ints(shape(r, -1))]);
  const swap = g === 1 ? [0, 2, 1] : [0, 1, 3, 2];
  const last = g === 1 ? 2 : 3;
  const parts = kernelOffsets(kernel).map((t) => {
    const s0 = start(t);
    const shifted = e.op('Slice', [flat, e.ints([s0]), e.ints([s0 + len]), e.ints([last])]);
    return e.unsqueeze(e.reduceSum(e.op('MatMul', [a, e.transpose(shifted, swap)]), [0], false), [last]);
  });
  const stacked = e.op('Concat', parts, { axis: attr.int(last) });
  return g === 1 ? e.unsqueeze(stacked, [0]) : stacked;
}

/** Largest per-sample wide grid (rows × padded width) that takes the batch-folded form: 32×32 images and below. */
const FOLDED_MAX_FRAME = 40 * 40;

/**
 * correlateWide with the batch folded into the GEMMs' inner dimension (one
 * group): both operands are laid out channel-major over frames of H·wp values
 * per sample, [l | r, N·H·wp], so the operand shifted by kernel offset t is
 * one contiguous range of every row at once, and each offset is one Gemm
 * [l, L] × [L, r] with L ≈ N·H·wp — no per-sample products, no ReduceSum
 * over the batch. A shift never carries a valid term across frames: left is
 * zero wherever q + shift would leave its frame (the extra zero row of
 * `big`). Measured against correlateWide (docs/training.md, "Performance"):
 * 5–20 % less time for 28×28 and 14×14 layers; even at 56×56, 6 % slower at 112×112.
 * (Concatenating the k² shifted ranges for one wide Gemm was slower: the
 * copy costs more than the better GEMM shape saves.)
 */
function correlateFolded(e: Emitter, left: string, leftWidth: number, big: string, l: number, r: number, rows: number, wp: number, start: (t: number[]) => number, kernel: number[]): string {
  const bigRows = e.shape(big)![2] as number;
  // left: [N, l, rows, ≤wp] → zero rows/columns up to the frame [N, l, H, wp]
  const framed = zeroPad(e, left, [0, 0], [bigRows - rows, wp - leftWidth]);
  const a = e.op('Reshape', [e.transpose(framed, [1, 0, 2, 3]), e.ints([l, -1])]);
  const b = e.op('Reshape', [e.transpose(big, [1, 0, 2, 3]), e.ints([r, -1])]);
  const shifts = kernelOffsets(kernel).map(start);
  const most = Math.max(...shifts);
  const aCut = most === 0 ? a : e.op('Slice', [a, e.ints([0]), e.ints([-most]), e.ints([1])]);
  const parts = shifts.map((s) => {
    const shifted = e.op('Slice', [b, e.ints([s]), e.ints([s === most ? 2 ** 62 : s - most]), e.ints([1])]);
    return e.unsqueeze(e.op('Gemm', [aCut, shifted], { transB: attr.int(1) }), [2]);
  });
  return e.unsqueeze(e.op('Concat', parts, { axis: attr.int(2) }), [0]);
}

/**
 * Per-offset products on the wide grid: batch-folded for one group on small
 * images, per sample otherwise. At 56×56 and beyond the folded form was no
 * faster, and its channel-major copies of both operands raise the backward
 * pass's peak memory where activations are largest.
 */
function correlateShifted(e: Emitter, left: string, leftWidth: number, big: string, n: number, g: number, l: number, r: number, rows: number, wp: number, start: (t: number[]) => number, kernel: number[]): string {
  if (g === 1 && rows * wp <= FOLDED_MAX_FRAME) return correlateFolded(e, left, leftWidth, big, l, r, rows, wp, start, kernel);
  return correlateWide(e, left, leftWidth, big, n, g, l, r, rows, wp, start, kernel);
}

function zeroPad(e: Emitter, v: string, before: number[], after: number[]): string {
  if (before.every((b) => b === 0) && after.every((a) => a === 0)) return v;
  return e.op('Pad', [v, e.ints([0, 0, ...before, 0, 0, ...after])]);
}

/**
 * d(loss)/dW for y = Conv(input, W) with dOut = dy: W is [O, C/group, k…].
 * Also serves ConvTranspose (with the roles of its input and output swapped).
 *
 * Shifted copies are taken of whichever side has fewer channels: of the input
 * (any stride), or — at stride 1 — of dy, with the offsets reversed, lined up
 * with the input's positions. With static sizes and at least 8 channels per
 * group on both sides, one product per kernel offset (measured fastest: no
 * im2col tensor): at stride 1 the shifted operand is a contiguous range of
 * the "wide" grid, one batch-folded Gemm per offset for one group
 * (correlateFolded), one batched MatMul per offset for several
 * (correlateWide); otherwise a strided Slice (correlateOffsets);
 * with fewer channels (depthwise, stems with 3 input channels), with many
 * channels on few pixels (late layers), or with symbolic sizes, one im2col
 * by a depthwise Conv and one batched MatMul or batch-folded Gemm.
 */
export function convWeightGrad(e: Emitter, input: string, dOut: string, w: Window, outChannels: number): string {
  const xs = e.shape(input)!;
  const channels = xs[1];
  if (typeof channels !== 'number') throw new UserError(`autodiff: channel count of '${input}' is symbolic`);
  const g = w.group;
  const cg = channels / g;
  const og = outChannels / g;
  const kk = w.kernel.reduce((p, k) => p * k, 1);
  const nd = w.kernel.length;
  const n = typeof xs[0] === 'number' ? xs[0] : 0; // Reshape's 0 copies the (symbolic) batch size
  const spatial = (v: string) => {
    const sp = e.shape(v)!.slice(2);
    return sp.every((d) => typeof d === 'number') ? (sp as number[]) : undefined;
  };
  const area = (v: string) => spatial(v)?.reduce((a, b) => a * b, 1);
  const wShape = [outChannels, cg, ...w.kernel];
  const trivial = kk === 1 && w.strides.every((s) => s === 1) && w.pads.every((p) => p === 0);
  if (trivial) return e.op('Reshape', [correlate(e, dOut, input, n, g, og, cg, area(dOut)), e.ints(wShape)]);
  const reach = w.kernel.map((k, i) => w.dilations[i] * (k - 1));
  const dySide = og < cg && w.strides.every((s) => s === 1) && w.pads.every((p, i) => p <= reach[i % nd]);
  const inSizes = spatial(input);
  const outSizes = spatial(dOut);
  // Per-offset products are per-sample GEMMs of og × cg: worth it while they are not
  // larger than their operands (the same cost model as correlate's batched/folded choice);
  // late layers with few pixels and many channels fold the batch into one Gemm instead.
  const pixels = area(dOut);
  const offsets = inSizes !== undefined && outSizes !== undefined && Math.min(cg, og) >= 8 && og * cg <= pixels! * (og + cg);
  if (dySide) {
    const before = reach.map((r, i) => r - w.pads[i]);
    const after = reach.map((r, i) => r - w.pads[i + nd]);
    let r: string; // [g, Cg, Og·k²] or [g, Cg, Og, k²]
    if (offsets && nd === 2) {
      // dW[o, c, t] = Σ x[q] · dy[q + pad − d·t]: in padded dy, offset d·(k−1−t)
      const wp = outSizes![1] + before[1] + after[1];
      const big = zeroPad(e, dOut, before, [after[0] + 1, after[1]]);
      r = correlateShifted(e, input, inSizes![1], big, n, g, cg, og, inSizes![0], wp, (t) => w.dilations[0] * (w.kernel[0] - 1 - t[0]) * wp + w.dilations[1] * (w.kernel[1] - 1 - t[1]), w.kernel);
    } else if (offsets) {
      const padded = zeroPad(e, dOut, before, after);
      r = correlateOffsets(e, input, padded, n, g, cg, og, area(input)!, (t) => {
        const starts = t.map((ti, i) => w.dilations[i] * (w.kernel[i] - 1 - ti));
        return { starts, ends: starts.map((s0, i) => s0 + inSizes![i]), steps: t.map(() => 1) };
      }, w.kernel);
    } else {
      const cols = e.op('Conv', [dOut, e.constant(im2colKernelFlipped(outChannels, w.kernel, e.dataType(dOut)), 'im2col_dy')], windowAttrs({ ...w, pads: [...before, ...after], group: outChannels }));
      r = correlate(e, input, cols, n, g, cg, og * kk, area(input));
    }
    const t = e.transpose(e.op('Reshape', [r, e.ints([g, cg, og, kk])]), [0, 2, 1, 3]);
    return e.op('Reshape', [t, e.ints(wShape)]);
  }
  if (offsets && nd === 2 && w.strides.every((st) => st === 1)) {
    const wp = inSizes![1] + w.pads[1] + w.pads[3];
    const big = zeroPad(e, input, [w.pads[0], w.pads[1]], [w.pads[2] + 1, w.pads[3]]);
    const r = correlateShifted(e, dOut, outSizes![1], big, n, g, og, cg, outSizes![0], wp, (t) => w.dilations[0] * t[0] * wp + w.dilations[1] * t[1], w.kernel);
    return e.op('Reshape', [r, e.ints(wShape)]);
  }
  if (offsets) {
    const padded = zeroPad(e, input, w.pads.slice(0, nd), w.pads.slice(nd));
    const r = correlateOffsets(e, dOut, padded, n, g, og, cg, area(dOut)!, (t) => {
      const starts = t.map((ti, i) => w.dilations[i] * ti);
      return { starts, ends: starts.map((s0, i) => s0 + (outSizes![i] - 1) * w.strides[i] + 1), steps: w.strides };
    }, w.kernel);
    return e.op('Reshape', [r, e.ints(wShape)]);
  }
  const cols = e.op('Conv', [input, e.constant(im2colKernel(channels, w.kernel, e.dataType(input)), 'im2col')], windowAttrs({ ...w, group: channels }));
  return e.op('Reshape', [correlate(e, dOut, cols, n, g, og, cg * kk, area(dOut)), e.ints(wShape)]);
}

/** Kernel of the adjoint convolution: per group, in/out channels swapped, spatial axes reversed. */
function flippedKernel(e: Emitter, w: string, group: number): string {
  const ws = e.staticShape(w)!;
  const [o, cg, ...k] = ws;
  const og = o / group;
  let t: string;
  if (group === 1) t = e.transpose(w, [1, 0, ...k.map((_, i) => i + 2)]);
  else {
    const r = e.op('Reshape', [w, e.ints([group, og, cg, ...k])]);
    t = e.op('Reshape', [e.transpose(r, [0, 2, 1, ...k.map((_, i) => i + 3)]), e.ints([group * cg, og, ...k])]);
  }
  const axes = k.map((_, i) => i + 2);
  return e.op('Slice', [t, e.ints(axes.map(() => -1)), e.ints(axes.map(() => -(2 ** 62))), e.ints(axes), e.ints(axes.map(() => -1))]);
}

/** Input gradient of Conv: dy [N, O, Ho…] → [N, C, H…]. */
function convInputGrad(e: Emitter, node: Node, x: string, w: string, dy: string, win: Window): string {
  const xs = e.shape(x)!;
  const spatial = xs.slice(2);
  const nd = win.kernel.length;
  const reach = win.kernel.map((k, i) => win.dilations[i] * (k - 1));
  const unitStride = win.strides.every((s) => s === 1);
  if (unitStride && win.pads.every((p, i) => p <= reach[i % nd])) {
    const pads = [...reach.map((r, i) => r - win.pads[i]), ...reach.map((r, i) => r - win.pads[i + nd])];
    return e.op('Conv', [dy, flippedKernel(e, w, win.group)], windowAttrs({ ...win, pads }));
  }
  const ys = e.shape(dy)!;
  const staticSizes = spatial.every((d) => typeof d === 'number') && ys.slice(2).every((d) => typeof d === 'number');
  if (staticSizes) {
    // ConvTranspose's natural size falls short of H by the rows the forward's floor dropped.
    const outPad = spatial.map((h, i) => {
      const natural = win.strides[i] * ((ys[i + 2] as number) - 1) + reach[i] + 1 - win.pads[i] - win.pads[i + nd];
      return (h as number) - natural;
    });
    if (outPad.every((r) => r >= 0)) return e.op('ConvTranspose', [dy, w], windowAttrs(win, { output_padding: attr.ints(outPad) }));
  }
  // Symbolic sizes: keep every row up to the end padding, then cut to x's size at runtime.
  const full = e.op('ConvTranspose', [dy, w], windowAttrs({ ...win, pads: [...win.pads.slice(0, nd), ...new Array(nd).fill(0)] }, { output_padding: attr.ints(win.strides.map((s) => s - 1)) }));
  const axes = spatial.map((_, i) => i + 2);
  const ends = e.op('Shape', [x], { start: attr.int(2) });
  return e.op('Slice', [full, e.ints(axes.map(() => 0)), ends, e.ints(axes)]);
}

export const conv: Record<string, GradientRule> = {
  Conv: {
    grad: ({ node, dy: [g], e }) => {
      const [x, w, b] = node.inputs;
      const win = convWindow(e, node, x, w);
      const out = e.staticShape(w)![0];
      return [() => convInputGrad(e, node, x, w, g!, win), () => convWeightGrad(e, x, g!, win, out), b ? () => e.reduceSum(g!, spatialAndBatch(e, g!), false) : undefined];
    },
  },
  ConvTranspose: {
    grad: ({ node, dy: [g], e }) => {
      const [x, w, b] = node.inputs;
      const ws = e.staticShape(w);
      if (!ws) throw new UserError(`autodiff: ${describeNode(node)} needs a weight of static shape`);
      const win = convTransposeWindow(e, node, x, ws);
      // y = ConvTranspose(x, W) is the adjoint of x' = Conv(y', W): gradients swap roles.
      return [() => e.op('Conv', [g!, w], windowAttrs(win)), () => convWeightGrad(e, g!, x, win, ws[0]), b ? () => e.reduceSum(g!, spatialAndBatch(e, g!), false) : undefined];
    },
  },
};

function spatialAndBatch(e: Emitter, v: string): number[] {
  return [0, ...Array.from({ length: e.rank(v) - 2 }, (_, i) => i + 2)];
}

/** ConvTranspose's window, with output_shape / auto_pad resolved to explicit pads as the ONNX spec defines. */
function convTransposeWindow(e: Emitter, node: Node, x: string, ws: number[]): Window {
  const kernel = attrInts(node, 'kernel_shape', ws.slice(2));
  const nd = kernel.length;
  const strides = attrInts(node, 'strides', new Array(nd).fill(1));
  const dilations = attrInts(node, 'dilations', new Array(nd).fill(1));
  const group = attrInt(node, 'group', 1);
  const outputShape = attrInts(node, 'output_shape');
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads', new Array(2 * nd).fill(0));
  if (outputShape || autoPad.startsWith('SAME')) {
    const xs = e.staticShape(x);
    if (!xs) throw new UserError(`autodiff: ${describeNode(node)} sets output_shape/auto_pad on symbolic sizes`);
    const outPad = attrInts(node, 'output_padding', new Array(nd).fill(0));
    const target = outputShape ? outputShape.slice(-nd) : xs.slice(2).map((s, i) => s * strides[i]);
    pads = new Array(2 * nd).fill(0);
    for (let i = 0; i < nd; i++) {
      const total = strides[i] * (xs[i + 2] - 1) + outPad[i] + (kernel[i] - 1) * dilations[i] + 1 - target[i];
      const half = Math.floor(total / 2);
      if (autoPad === 'SAME_UPPER') {
        pads[i] = half;
        pads[i + nd] = total - half;
      } else {
        pads[i] = total - half;
        pads[i + nd] = half;
      }
    }
  }
  return { kernel, strides, pads, dilations, group };
}
