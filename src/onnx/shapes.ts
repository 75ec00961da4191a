import { UserError } from '../util/errors';
import { DataType } from './dtype';
import { Dim, Graph, Node, ValueInfo, attrFloat, attrInt, attrInts, attrString, describeNode, topologicalSort } from './graph';
import { TensorData, tensorToNumbers } from './tensor';

/**
 * Static shape inference over the graph IR, with symbolic dimensions: a batch
 * axis named 'N' flows through as 'N'. Small integer tensors (shapes, axes,
 * pads) are tracked symbolically too, so PyTorch's `Shape → Gather → Concat →
 * Reshape` patterns resolve. Unknown ops or values yield no shape, never a
 * guess.
 */

export interface ShapeContext {
  info(name: string): ValueInfo | undefined;
  /** the value of a small integer tensor, when known (entries may be symbolic) */
  intValue(name: string): Dim[] | undefined;
  floatValue(name: string): number[] | undefined;
}

export interface NodeInference {
  outputs: (ValueInfo | undefined)[];
  /** known values of integer outputs (Shape, Gather over shapes, Concat …) */
  intValues?: (Dim[] | undefined)[];
}

type Rule = (node: Node, ctx: ShapeContext) => NodeInference;

const rules = new Map<string, Rule>();
export function registerShapeRule(opType: string, rule: Rule): void {
  rules.set(opType, rule);
}

const vi = (name: string, dataType: DataType, shape?: Dim[]): ValueInfo => ({ name, dataType, shape });

function shapeOf(ctx: ShapeContext, name: string, _node: Node): Dim[] | undefined {
  return ctx.info(name)?.shape;
}

function same(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  return { outputs: node.outputs.map((o, i) => (i === 0 && x ? vi(o, x.dataType, x.shape && [...x.shape]) : undefined)) };
}

/** Numpy-style broadcast of two shapes (symbolic dims must match by name or be 1). */
export function broadcastShapes(a: Dim[], b: Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else if (da === db) out.push(da);
    else if (typeof da === 'string' && typeof db !== 'string') out.push(db);
    else if (typeof db === 'string' && typeof da !== 'string') out.push(da);
    else if (typeof da === 'string' && typeof db === 'string') out.push(da);
    else throw new UserError(`cannot broadcast shapes [${a}] and [${b}]`);
  }
  return out;
}

function broadcast(node: Node, ctx: ShapeContext, outType?: DataType): NodeInference {
  const infos = node.inputs.filter((i) => i).map((i) => ctx.info(i));
  if (infos.some((i) => !i?.shape)) return { outputs: [infos[0] ? vi(node.outputs[0], outType ?? infos[0].dataType) : undefined] };
  let s: Dim[] = infos[0]!.shape!;
  for (const i of infos.slice(1)) s = broadcastShapes(s, i!.shape!);
  // Where's first input is the bool condition; its value type is the second input's.
  const dt = outType ?? (node.opType === 'Where' ? infos[1]!.dataType : infos[0]!.dataType);
  return { outputs: [vi(node.outputs[0], dt, s)] };
}

const mulDim = (a: Dim, b: Dim): Dim =>
  a === 1 ? b : b === 1 ? a : typeof a === 'number' && typeof b === 'number' ? a * b : `${a}*${b}`;

/** Output size of a sliding window (Conv, pools). */
function windowOut(size: Dim, k: number, s: number, padBegin: number, padEnd: number, d: number, ceil: boolean): Dim {
  if (typeof size !== 'number') return `${size}_w`;
  const eff = d * (k - 1) + 1;
  const v = (size + padBegin + padEnd - eff) / s;
  return (ceil ? Math.ceil(v) : Math.floor(v)) + 1;
}

function autoPads(node: Node, spatial: Dim[], kernel: number[], strides: number[], dil: number[]): number[] {
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const nd = kernel.length;
  if (autoPad === 'NOTSET' || autoPad === 'VALID') return attrInts(node, 'pads', new Array(2 * nd).fill(0));
  const pads = new Array(2 * nd).fill(0);
  for (let i = 0; i < nd; i++) {
    const size = spatial[i];
    if (typeof size !== 'number') continue;
    const out = Math.ceil(size / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - size);
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + nd] = total - pads[i];
  }
  return pads;
}

/** Resolved window attributes shared by Conv, MaxPool, AveragePool and their gradients. */
export function windowParams(node: Node, xShape: Dim[], kernel: number[]) {
  const nd = kernel.length;
  const strides = attrInts(node, 'strides', new Array(nd).fill(1));
  const dilations = attrInts(node, 'dilations', new Array(nd).fill(1));
  const pads = autoPads(node, xShape.slice(2), kernel, strides, dilations);
  return { strides, dilations, pads };
}

function conv(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const w = shapeOf(ctx, node.inputs[1], node);
  if (!x?.shape || !w) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const kernel = attrInts(node, 'kernel_shape', w.slice(2).map(Number));
  const { strides, dilations, pads } = windowParams(node, x.shape, kernel);
  const nd = kernel.length;
  const spatial = x.shape.slice(2).map((s, i) => windowOut(s, kernel[i], strides[i], pads[i], pads[i + nd], dilations[i], false));
  return { outputs: [vi(node.outputs[0], x.dataType, [x.shape[0], w[0], ...spatial])] };
}

function convTranspose(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const w = shapeOf(ctx, node.inputs[1], node);
  if (!x?.shape || !w) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const group = attrInt(node, 'group', 1);
  const kernel = attrInts(node, 'kernel_shape', w.slice(2).map(Number));
  const nd = kernel.length;
  const strides = attrInts(node, 'strides', new Array(nd).fill(1));
  const dil = attrInts(node, 'dilations', new Array(nd).fill(1));
  const outPad = attrInts(node, 'output_padding', new Array(nd).fill(0));
  const explicit = attrInts(node, 'output_shape');
  const pads = attrInts(node, 'pads', new Array(2 * nd).fill(0));
  const spatial: Dim[] = x.shape.slice(2).map((s, i) => {
    if (explicit) return explicit[explicit.length - nd + i];
    if (typeof s !== 'number') return `${s}_t`;
    return strides[i] * (s - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + nd];
  });
  return { outputs: [vi(node.outputs[0], x.dataType, [x.shape[0], mulDim(w[1], group), ...spatial])] };
}

function pool(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: node.outputs.map(() => undefined) };
  const kernel = attrInts(node, 'kernel_shape')!;
  const { strides, dilations, pads } = windowParams(node, x.shape, kernel);
  const ceil = attrInt(node, 'ceil_mode', 0) === 1;
  const nd = kernel.length;
  const spatial = x.shape.slice(2).map((s, i) => windowOut(s, kernel[i], strides[i], pads[i], pads[i + nd], dilations[i], ceil));
  const shape = [x.shape[0], x.shape[1], ...spatial];
  return { outputs: node.outputs.map((o, i) => (i === 0 ? vi(o, x.dataType, shape) : vi(o, DataType.INT64, [...shape]))) };
}

function maxUnpool(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [undefined] };
  if (node.inputs[2]) {
    const v = ctx.intValue(node.inputs[2]);
    return { outputs: [vi(node.outputs[0], x.dataType, v)] };
  }
  const kernel = attrInts(node, 'kernel_shape')!;
  const nd = kernel.length;
  const strides = attrInts(node, 'strides', new Array(nd).fill(1));
  const pads = attrInts(node, 'pads', new Array(2 * nd).fill(0));
  const spatial = x.shape.slice(2).map((s, i) => (typeof s === 'number' ? (s - 1) * strides[i] + kernel[i] - pads[i] - pads[i + nd] : `${s}_u`));
  return { outputs: [vi(node.outputs[0], x.dataType, [x.shape[0], x.shape[1], ...spatial])] };
}

function globalPool(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [undefined] };
  return { outputs: [vi(node.outputs[0], x.dataType, [x.shape[0], x.shape[1], ...x.shape.slice(2).map(() => 1)])] };
}

function gemm(node: Node, ctx: ShapeContext): NodeInference {
  const a = ctx.info(node.inputs[0]);
  const b = shapeOf(ctx, node.inputs[1], node);
  if (!a?.shape || !b) return { outputs: [a ? vi(node.outputs[0], a.dataType) : undefined] };
  const m = attrInt(node, 'transA', 0) ? a.shape[1] : a.shape[0];
  const n = attrInt(node, 'transB', 0) ? b[0] : b[1];
  return { outputs: [vi(node.outputs[0], a.dataType, [m, n])] };
}

function matmul(node: Node, ctx: ShapeContext): NodeInference {
  const a = ctx.info(node.inputs[0]);
  const b = shapeOf(ctx, node.inputs[1], node);
  if (!a?.shape || !b) return { outputs: [a ? vi(node.outputs[0], a.dataType) : undefined] };
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
  const out = [...batch, as[as.length - 2], bs[bs.length - 1]];
  if (a.shape.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return { outputs: [vi(node.outputs[0], a.dataType, out)] };
}

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function concat(node: Node, ctx: ShapeContext): NodeInference {
  const infos = node.inputs.map((i) => ctx.info(i));
  const first = infos[0];
  const values = node.inputs.map((i) => ctx.intValue(i));
  const intValues = values.every((v) => v) ? [values.flatMap((v) => v!)] : undefined;
  if (!first || infos.some((i) => !i?.shape)) return { outputs: [first ? vi(node.outputs[0], first.dataType) : undefined], intValues };
  const rank = first.shape!.length;
  const axis = normAxis(attrInt(node, 'axis')!, rank);
  const out = [...first.shape!];
  let total: Dim = 0;
  for (const i of infos) {
    const d = i!.shape![axis];
    total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
  }
  out[axis] = total;
  return { outputs: [vi(node.outputs[0], first.dataType, out)], intValues };
}

function flatten(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const axis = normAxis(attrInt(node, 'axis', 1), x.shape.length);
  const prod = (ds: Dim[]) => ds.reduce<Dim>((p, d) => mulDim(p, d), 1);
  return { outputs: [vi(node.outputs[0], x.dataType, [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))])] };
}

function reshape(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const target = ctx.intValue(node.inputs[1]);
  if (!x || !target) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const allowZero = attrInt(node, 'allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero && x.shape ? x.shape[i] : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    if (!x.shape) return { outputs: [vi(node.outputs[0], x.dataType)] };
    const known = x.shape.every((d) => typeof d === 'number') && out.every((d) => typeof d === 'number');
    if (known) {
      const total = (x.shape as number[]).reduce((p, d) => p * d, 1);
      const rest = (out as number[]).reduce((p, d, i) => (i === minus ? p : p * d), 1);
      out[minus] = total / rest;
    } else {
      // Symbolic: cancel the matching symbolic factors (typical: [N, -1] from [N, C, H, W]).
      const numbers = (ds: Dim[]) => ds.filter((d) => typeof d === 'number').reduce<number>((p, d) => p * (d as number), 1);
      const syms = (ds: Dim[]) => ds.filter((d) => typeof d === 'string') as string[];
      const xs = syms(x.shape);
      const os = syms(out);
      if (xs.length === os.length && xs.every((s, i) => s === os[i])) {
        out[minus] = numbers(x.shape) / numbers(out.filter((_, i) => i !== minus));
      } else out[minus] = `${node.outputs[0]}_d${minus}`;
    }
  }
  return { outputs: [vi(node.outputs[0], x.dataType, out)] };
}

function transpose(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const perm = attrInts(node, 'perm', x.shape.map((_, i) => x.shape!.length - 1 - i));
  return { outputs: [vi(node.outputs[0], x.dataType, perm.map((p) => x.shape![p]))] };
}

/** axes from the attribute (old opsets) or the second input (opset 13+ / 18+) */
function axesOf(node: Node, ctx: ShapeContext, inputIndex: number): number[] | undefined {
  const a = attrInts(node, 'axes');
  if (a) return a;
  const name = node.inputs[inputIndex];
  if (!name) return undefined;
  const v = ctx.intValue(name);
  return v?.map(Number);
}

function squeeze(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const axes = axesOf(node, ctx, 1)?.map((a) => normAxis(a, x.shape!.length));
  const out = x.shape.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
  const v = ctx.intValue(node.inputs[0]);
  return { outputs: [vi(node.outputs[0], x.dataType, out)], intValues: [v] };
}

function unsqueeze(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const v = ctx.intValue(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined], intValues: [v] };
  const axes = axesOf(node, ctx, 1);
  if (!axes) return { outputs: [vi(node.outputs[0], x.dataType)], intValues: [v] };
  const rank = x.shape.length + axes.length;
  const norm = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
  const out: Dim[] = [...x.shape];
  for (const a of norm) out.splice(a, 0, 1);
  return { outputs: [vi(node.outputs[0], x.dataType, out)], intValues: [v] };
}

function reduce(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const axesIn = axesOf(node, ctx, 1);
  const noop = attrInt(node, 'noop_with_empty_axes', 0) === 1;
  const rank = x.shape.length;
  const axes = axesIn && axesIn.length ? axesIn.map((a) => normAxis(a, rank)) : noop ? [] : x.shape.map((_, i) => i);
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keep) out.push(1);
  });
  return { outputs: [vi(node.outputs[0], x.dataType, out)] };
}

function argReduce(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [vi(node.outputs[0], DataType.INT64)] };
  const axis = normAxis(attrInt(node, 'axis', 0), x.shape.length);
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const out = x.shape.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d]));
  return { outputs: [vi(node.outputs[0], DataType.INT64, out)] };
}

function shape(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [vi(node.outputs[0], DataType.INT64)] };
  const rank = x.shape.length;
  const start = normAxis(attrInt(node, 'start', 0), rank);
  const endAttr = attrInt(node, 'end');
  const end = endAttr === undefined ? rank : Math.min(rank, normAxis(endAttr, rank));
  const value = x.shape.slice(start, end);
  return { outputs: [vi(node.outputs[0], DataType.INT64, [value.length])], intValues: [value] };
}

function gather(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const idx = ctx.info(node.inputs[1]);
  const xv = ctx.intValue(node.inputs[0]);
  const iv = ctx.intValue(node.inputs[1]);
  let intValues: (Dim[] | undefined)[] | undefined;
  if (xv && iv) intValues = [iv.map((i) => xv[normAxis(Number(i), xv.length)])];
  if (!x?.shape || !idx?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined], intValues };
  const axis = normAxis(attrInt(node, 'axis', 0), x.shape.length);
  const out = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  return { outputs: [vi(node.outputs[0], x.dataType, out)], intValues };
}

function slice(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const rank = x.shape.length;
  let starts: number[] | undefined, ends: number[] | undefined, axes: number[] | undefined, steps: number[] | undefined;
  if (node.inputs.length > 1) {
    starts = ctx.intValue(node.inputs[1])?.map(Number);
    ends = ctx.intValue(node.inputs[2])?.map(Number);
    axes = node.inputs[3] ? ctx.intValue(node.inputs[3])?.map(Number) : undefined;
    steps = node.inputs[4] ? ctx.intValue(node.inputs[4])?.map(Number) : undefined;
  } else {
    starts = attrInts(node, 'starts');
    ends = attrInts(node, 'ends');
    axes = attrInts(node, 'axes');
  }
  if (!starts || !ends || starts.some(Number.isNaN) || ends.some(Number.isNaN)) return { outputs: [vi(node.outputs[0], x.dataType)] };
  axes = axes ?? starts.map((_, i) => i);
  steps = steps ?? starts.map(() => 1);
  const out = [...x.shape];
  const xv = ctx.intValue(node.inputs[0]);
  let value: Dim[] | undefined;
  axes.forEach((a0, k) => {
    const a = normAxis(a0, rank);
    const dim = x.shape![a];
    if (typeof dim !== 'number') {
      out[a] = `${node.outputs[0]}_d${a}`;
      return;
    }
    const [s, e] = sliceBounds(starts![k], ends![k], steps![k], dim);
    const n = steps![k] > 0 ? Math.max(0, Math.ceil((e - s) / steps![k])) : Math.max(0, Math.ceil((s - e) / -steps![k]));
    out[a] = n;
    if (xv && rank === 1) {
      value = [];
      for (let i = s; steps![k] > 0 ? i < e : i > e; i += steps![k]) value.push(xv[i]);
    }
  });
  return { outputs: [vi(node.outputs[0], x.dataType, out)], intValues: [value] };
}

/** Clamped [start, end) for one sliced axis, as ONNX defines it. */
export function sliceBounds(start: number, end: number, step: number, dim: number): [number, number] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
  } else {
    s = clamp(s, 0, dim - 1);
    e = clamp(e, -1, dim - 1);
  }
  return [s, e];
}

function split(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: node.outputs.map((o) => (x ? vi(o, x.dataType) : undefined)) };
  const axis = normAxis(attrInt(node, 'axis', 0), x.shape.length);
  const dim = x.shape[axis];
  let sizes = attrInts(node, 'split') ?? (node.inputs[1] ? ctx.intValue(node.inputs[1])?.map(Number) : undefined);
  if (!sizes && typeof dim === 'number') {
    const k = node.outputs.length;
    const chunk = Math.ceil(dim / k);
    sizes = node.outputs.map((_, i) => Math.min(chunk, dim - chunk * i));
  }
  return {
    outputs: node.outputs.map((o, i) => {
      const s = [...x.shape!];
      s[axis] = sizes ? sizes[i] : `${o}_d${axis}`;
      return vi(o, x.dataType, s);
    }),
  };
}

function pad(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const pads = attrInts(node, 'pads') ?? ctx.intValue(node.inputs[1])?.map(Number);
  if (!pads) return { outputs: [vi(node.outputs[0], x.dataType)] };
  const rank = x.shape.length;
  let axes = node.inputs[3] ? ctx.intValue(node.inputs[3])?.map((a) => normAxis(Number(a), rank)) : undefined;
  axes = axes ?? x.shape.map((_, i) => i);
  const out = [...x.shape];
  axes.forEach((a, k) => {
    const d = out[a];
    out[a] = typeof d === 'number' ? d + pads[k] + pads[k + axes!.length] : `${d}_p`;
  });
  return { outputs: [vi(node.outputs[0], x.dataType, out)] };
}

function resize(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  if (!x?.shape) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  const sizes = node.inputs[3] ? ctx.intValue(node.inputs[3]) : undefined;
  if (sizes) return { outputs: [vi(node.outputs[0], x.dataType, sizes)] };
  const scales = node.inputs[2] ? ctx.floatValue(node.inputs[2]) : undefined;
  if (!scales) return { outputs: [vi(node.outputs[0], x.dataType)] };
  return {
    outputs: [vi(node.outputs[0], x.dataType, x.shape.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]) : scales[i] === 1 ? d : `${d}_r`)))],
  };
}

function constant(node: Node): NodeInference {
  const a = node.attrs.value;
  if (a?.kind === 'tensor') {
    const t = a.value;
    const small = t.data.length <= 64 && (t.dataType === DataType.INT64 || t.dataType === DataType.INT32);
    return { outputs: [vi(node.outputs[0], t.dataType, [...t.dims])], intValues: [small ? tensorToNumbers(t) : undefined] };
  }
  const ints = attrInts(node, 'value_ints');
  if (ints) return { outputs: [vi(node.outputs[0], DataType.INT64, [ints.length])], intValues: [ints] };
  const i = attrInt(node, 'value_int');
  if (i !== undefined) return { outputs: [vi(node.outputs[0], DataType.INT64, [])], intValues: [[i]] };
  const f = attrFloat(node, 'value_float');
  if (f !== undefined) return { outputs: [vi(node.outputs[0], DataType.FLOAT, [])] };
  return { outputs: [undefined] };
}

function cast(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  return { outputs: [vi(node.outputs[0], attrInt(node, 'to')! as DataType, x?.shape && [...x.shape])], intValues: [ctx.intValue(node.inputs[0])] };
}

function expand(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const target = ctx.intValue(node.inputs[1]);
  if (!x?.shape || !target) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  return { outputs: [vi(node.outputs[0], x.dataType, broadcastShapes(x.shape, target))] };
}

function constantOfShape(node: Node, ctx: ShapeContext): NodeInference {
  const target = ctx.intValue(node.inputs[0]);
  const a = node.attrs.value;
  const dt = a?.kind === 'tensor' ? a.value.dataType : DataType.FLOAT;
  return { outputs: [vi(node.outputs[0], dt, target)] };
}

function tile(node: Node, ctx: ShapeContext): NodeInference {
  const x = ctx.info(node.inputs[0]);
  const reps = ctx.intValue(node.inputs[1]);
  if (!x?.shape || !reps) return { outputs: [x ? vi(node.outputs[0], x.dataType) : undefined] };
  return { outputs: [vi(node.outputs[0], x.dataType, x.shape.map((d, i) => mulDim(d, reps[i])))] };
}

function batchNorm(node: Node, ctx: ShapeContext): NodeInference {
  const r = same(node, ctx);
  const c = ctx.info(node.inputs[1]);
  // Training-mode outputs (running mean/var) have the per-channel shape.
  return { outputs: node.outputs.map((o, i) => (i === 0 ? r.outputs[0] : c ? vi(o, c.dataType, c.shape) : undefined)) };
}

function oneHot(node: Node, ctx: ShapeContext): NodeInference {
  const idx = ctx.info(node.inputs[0]);
  const depth = ctx.intValue(node.inputs[1]);
  const values = ctx.info(node.inputs[2]);
  if (!idx?.shape || !depth || !values) return { outputs: [values ? vi(node.outputs[0], values.dataType) : undefined] };
  const axis = attrInt(node, 'axis', -1);
  const out = [...idx.shape];
  out.splice(axis < 0 ? out.length + 1 + axis : axis, 0, depth[0]);
  return { outputs: [vi(node.outputs[0], values.dataType, out)] };
}

for (const op of [
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Clip', 'HardSwish', 'HardSigmoid', 'Identity', 'Softmax', 'LogSoftmax',
  'Neg', 'Exp', 'Log', 'Sqrt', 'Abs', 'Sign', 'Erf', 'Round', 'Floor', 'Ceil', 'Reciprocal', 'Elu', 'Selu', 'Softplus',
  'Gelu', 'Mish', 'PRelu', 'LRN', 'InstanceNormalization', 'RandomNormalLike', 'RandomUniformLike', 'ScatterElements',
  'ScatterND', 'Not', 'IsNaN', 'Cos', 'Sin',
]) registerShapeRule(op, same);
registerShapeRule('Dropout', (n, c) => {
  const r = same(n, c);
  const x = c.info(n.inputs[0]);
  return { outputs: n.outputs.map((o, i) => (i === 0 ? r.outputs[0] : x ? vi(o, DataType.BOOL, x.shape) : undefined)) };
});
for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Mod']) registerShapeRule(op, (n, c) => broadcast(n, c));
for (const op of ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor']) registerShapeRule(op, (n, c) => broadcast(n, c, DataType.BOOL));
registerShapeRule('Conv', conv);
registerShapeRule('ConvTranspose', convTranspose);
registerShapeRule('BatchNormalization', batchNorm);
registerShapeRule('MaxPool', pool);
registerShapeRule('AveragePool', pool);
registerShapeRule('LpPool', pool);
registerShapeRule('MaxUnpool', maxUnpool);
registerShapeRule('GlobalAveragePool', globalPool);
registerShapeRule('GlobalMaxPool', globalPool);
registerShapeRule('Gemm', gemm);
registerShapeRule('MatMul', matmul);
registerShapeRule('Concat', concat);
registerShapeRule('Flatten', flatten);
registerShapeRule('Reshape', reshape);
registerShapeRule('Transpose', transpose);
registerShapeRule('Squeeze', squeeze);
registerShapeRule('Unsqueeze', unsqueeze);
for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceLogSumExp', 'ReduceL2', 'ReduceSumSquare', 'ReduceL1', 'ReduceLogSum'])
  registerShapeRule(op, reduce);
registerShapeRule('ArgMax', argReduce);
registerShapeRule('ArgMin', argReduce);
registerShapeRule('Shape', shape);
registerShapeRule('Size', (n) => ({ outputs: [vi(n.outputs[0], DataType.INT64, [])] }));
registerShapeRule('Gather', gather);
registerShapeRule('GatherElements', (n, c) => {
  const x = c.info(n.inputs[0]);
  const i = c.info(n.inputs[1]);
  return { outputs: [x ? vi(n.outputs[0], x.dataType, i?.shape && [...i.shape]) : undefined] };
});
registerShapeRule('Slice', slice);
registerShapeRule('Split', split);
registerShapeRule('Pad', pad);
registerShapeRule('Resize', resize);
registerShapeRule('Upsample', resize);
registerShapeRule('Constant', constant);
registerShapeRule('Cast', cast);
registerShapeRule('CastLike', (n, c) => {
  const x = c.info(n.inputs[0]);
  const t = c.info(n.inputs[1]);
  return { outputs: [t ? vi(n.outputs[0], t.dataType, x?.shape && [...x.shape]) : undefined] };
});
registerShapeRule('Expand', expand);
registerShapeRule('ConstantOfShape', constantOfShape);
registerShapeRule('Tile', tile);
registerShapeRule('OneHot', oneHot);

/**
 * Infers the type and shape of every value in the graph. Results include the
 * graph inputs and initializers. Values the rules cannot resolve are absent.
 */
export function inferShapes(g: Graph): Map<string, ValueInfo> {
  const infos = new Map<string, ValueInfo>();
  const ints = new Map<string, Dim[]>();
  const floats = new Map<string, number[]>();
  for (const v of g.inputs) infos.set(v.name, v);
  for (const [name, t] of g.initializers) {
    infos.set(name, vi(name, t.dataType, [...t.dims]));
    recordConstant(name, t, ints, floats);
  }
  const ctx: ShapeContext = {
    info: (n) => infos.get(n) ?? g.valueInfo.get(n),
    intValue: (n) => ints.get(n),
    floatValue: (n) => floats.get(n),
  };
  for (const node of topologicalSort(g)) {
    const rule = rules.get(node.opType);
    if (!rule) continue;
    let r: NodeInference;
    try {
      r = rule(node, ctx);
    } catch (e) {
      throw new UserError(`shape inference failed at ${describeNode(node)}: ${(e as Error).message}`);
    }
    r.outputs.forEach((o, i) => o && node.outputs[i] && infos.set(node.outputs[i], { ...o, name: node.outputs[i] }));
    r.intValues?.forEach((v, i) => v && node.outputs[i] && ints.set(node.outputs[i], v));
    if (node.opType === 'Constant' && node.attrs.value?.kind === 'tensor') recordConstant(node.outputs[0], node.attrs.value.value, ints, floats);
  }
  return infos;
}

function recordConstant(name: string, t: TensorData, ints: Map<string, Dim[]>, floats: Map<string, number[]>) {
  if (t.data.length > 64) return;
  if (t.dataType === DataType.INT64 || t.dataType === DataType.INT32) ints.set(name, tensorToNumbers(t));
  if (t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE) floats.set(name, tensorToNumbers(t));
}

/** Writes inferred intermediate shapes into g.valueInfo and fills the outputs' shapes. */
export function annotateShapes(g: Graph): Graph {
  const infos = inferShapes(g);
  const io = new Set([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const o of g.outputs) {
    const i = infos.get(o.name);
    if (i?.shape) {
      o.shape = i.shape;
      o.dataType = i.dataType;
    }
  }
  const outs = new Set(g.outputs.map((o) => o.name));
  for (const [name, info] of infos) if (!io.has(name) && !outs.has(name) && info.shape) g.valueInfo.set(name, info);
  return g;
}

/** Runs the shape rule of one node; undefined when the op has no rule. */
export function inferNode(node: Node, ctx: ShapeContext): NodeInference | undefined {
  const rule = rules.get(node.opType);
  if (!rule) return undefined;
  try {
    return rule(node, ctx);
  } catch (e) {
    throw new UserError(`shape inference failed at ${describeNode(node)}: ${(e as Error).message}`);
  }
}

export function hasShapeRule(opType: string): boolean {
  return rules.has(opType);
}
