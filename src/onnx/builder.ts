import { Rng } from '../util/random';
import { DataType } from './dtype';
import { Attr, Dim, Graph, Node, NameScope, ValueInfo, attr, emptyGraph } from './graph';
import { ShapeContext, inferNode } from './shapes';
import { TensorData, floatTensor, int64Vector, numel, tensorToNumbers } from './tensor';

/**
 * Defines architectures in TypeScript and produces the graph IR. Every value
 * gets its shape as it is created (symbolic batch axis allowed), so layer
 * sizes never have to be guessed.
 *
 * Initialisation (documented because results depend on it):
 * - 'he': normal, std = sqrt(2 / fan_in) — for layers followed by ReLU
 *   (He et al. 2015). fan_in = in_channels/group × kernel area (conv) or
 *   in_features (linear).
 * - 'glorot': uniform in ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
 *   For ConvTranspose, fan_in is computed as for the equivalent conv.
 * - biases start at zero; BatchNorm at scale 1, bias 0, mean 0, var 1.
 * All draws come from one seeded `Rng`, in creation order.
 */
export type Init = 'he' | 'glorot' | 'zeros' | 'ones';

export interface BuilderOptions {
  seed?: number;
  opset?: number;
}

export interface ConvOptions {
  out: number;
  kernel: number | [number, number];
  stride?: number | [number, number];
  /** symmetric padding per spatial axis; default keeps size for odd kernels at stride 1 */
  pad?: number | [number, number];
  dilation?: number | [number, number];
  group?: number;
  bias?: boolean;
  init?: Init;
  name?: string;
}

export interface PoolOptions {
  kernel: number | [number, number];
  stride?: number | [number, number];
  pad?: number | [number, number];
  ceil?: boolean;
  name?: string;
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

export class GraphBuilder {
  readonly graph: Graph;
  readonly rng: Rng;
  private readonly scope = new NameScope();
  private readonly infos = new Map<string, ValueInfo>();
  private readonly ints = new Map<string, Dim[]>();
  private readonly floats = new Map<string, number[]>();

  constructor(name: string, opts: BuilderOptions = {}) {
    this.graph = emptyGraph(name, opts.opset ?? 17);
    this.rng = new Rng(opts.seed ?? 0);
  }

  private ctx: ShapeContext = {
    info: (n) => this.infos.get(n),
    intValue: (n) => this.ints.get(n),
    floatValue: (n) => this.floats.get(n),
  };

  fresh(base: string): string {
    return this.scope.fresh(base);
  }

  input(name: string, shape: Dim[], dataType: DataType = DataType.FLOAT): string {
    this.scope.reserve(name);
    const v: ValueInfo = { name, dataType, shape: [...shape] };
    this.graph.inputs.push(v);
    this.infos.set(name, v);
    return name;
  }

  /** Marks a value as a graph output, renaming it through Identity when a name is given. */
  output(value: string, name?: string): string {
    let out = value;
    if (name && name !== value) {
      this.scope.reserve(name);
      this.graph.nodes.push({ name: `${name}_identity`, opType: 'Identity', inputs: [value], outputs: [name], attrs: {} });
      this.infos.set(name, { ...this.info(value), name });
      out = name;
    }
    const info = this.info(out);
    this.graph.outputs.push({ name: out, dataType: info.dataType, shape: info.shape && [...info.shape] });
    return out;
  }

  info(value: string): ValueInfo {
    const i = this.infos.get(value);
    if (!i) throw new Error(`builder '${this.graph.name}': unknown value '${value}'`);
    return i;
  }

  shape(value: string): Dim[] {
    const s = this.info(value).shape;
    if (!s) throw new Error(`builder '${this.graph.name}': shape of '${value}' is unknown`);
    return s;
  }

  /** A static dimension, or an error naming the value when it is symbolic. */
  dim(value: string, axis: number): number {
    const s = this.shape(value);
    const d = s[axis < 0 ? s.length + axis : axis];
    if (typeof d !== 'number') throw new Error(`builder '${this.graph.name}': axis ${axis} of '${value}' is symbolic (${d})`);
    return d;
  }

  /** Adds an initializer under a fresh name. */
  constant(t: TensorData, name = 'const'): string {
    const n = this.scope.fresh(name);
    this.graph.initializers.set(n, t);
    this.infos.set(n, { name: n, dataType: t.dataType, shape: [...t.dims] });
    if (t.data.length <= 64) {
      if (t.dataType === DataType.INT64 || t.dataType === DataType.INT32) this.ints.set(n, tensorToNumbers(t));
      if (t.dataType === DataType.FLOAT) this.floats.set(n, tensorToNumbers(t));
    }
    return n;
  }

  ints64(values: number[], name = 'ints'): string {
    return this.constant(int64Vector(values), name);
  }

  scalar(v: number, name = 'scalar'): string {
    return this.constant(floatTensor([], [v]), name);
  }

  /** A trainable parameter with the given initialisation. */
  param(name: string, dims: number[], init: Init, fan?: { fanIn: number; fanOut: number }): string {
    const t = floatTensor(dims);
    const d = t.data as Float32Array;
    if (init === 'ones') d.fill(1);
    else if (init === 'he') {
      const std = Math.sqrt(2 / (fan?.fanIn ?? dims[1] ?? 1));
      for (let i = 0; i < d.length; i++) d[i] = this.rng.normal() * std;
    } else if (init === 'glorot') {
      const lim = Math.sqrt(6 / ((fan?.fanIn ?? 1) + (fan?.fanOut ?? 1)));
      for (let i = 0; i < d.length; i++) d[i] = (this.rng.uniform() * 2 - 1) * lim;
    }
    return this.constant(t, name);
  }

  /** Generic node with any number of outputs; shapes inferred when a rule exists. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, opts: { outputs?: number | string[]; name?: string; domain?: string } = {}): string[] {
    const base = opts.name ?? opType.toLowerCase();
    const nodeName = this.scope.fresh(base);
    const outputs = Array.isArray(opts.outputs)
      ? opts.outputs.map((o) => this.scope.fresh(o))
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.scope.fresh(i === 0 ? `${nodeName}.out` : `${nodeName}.out${i}`));
    const node: Node = { name: nodeName, opType, domain: opts.domain, inputs, outputs, attrs };
    this.graph.nodes.push(node);
    const r = inferNode(node, this.ctx);
    r?.outputs.forEach((o, i) => o && this.infos.set(outputs[i], { ...o, name: outputs[i] }));
    r?.intValues?.forEach((v, i) => v && this.ints.set(outputs[i], v));
    return outputs;
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string): string {
    return this.node(opType, inputs, attrs, { name })[0];
  }

  // ---------- layers ----------

  conv(x: string, o: ConvOptions): string {
    const name = o.name ?? this.scope.fresh('conv');
    const cin = this.dim(x, 1);
    const group = o.group ?? 1;
    const [kh, kw] = pair(o.kernel);
    const [sh, sw] = pair(o.stride ?? 1);
    const [dh, dw] = pair(o.dilation ?? 1);
    const [ph, pw] = pair(o.pad ?? [Math.floor((dh * (kh - 1)) / 2), Math.floor((dw * (kw - 1)) / 2)]);
    const fanIn = (cin / group) * kh * kw;
    const w = this.param(`${name}.weight`, [o.out, cin / group, kh, kw], o.init ?? 'he', { fanIn, fanOut: (o.out / group) * kh * kw });
    const inputs = [x, w];
    if (o.bias ?? true) inputs.push(this.param(`${name}.bias`, [o.out], 'zeros'));
    return this.op(
      'Conv',
      inputs,
      { kernel_shape: attr.ints([kh, kw]), strides: attr.ints([sh, sw]), pads: attr.ints([ph, pw, ph, pw]), dilations: attr.ints([dh, dw]), group: attr.int(group) },
      name,
    );
  }

  /** Transposed convolution; `outputPadding` resolves the size ambiguity of strided layers. */
  convTranspose(x: string, o: ConvOptions & { outputPadding?: number | [number, number] }): string {
    const name = o.name ?? this.scope.fresh('convT');
    const cin = this.dim(x, 1);
    const group = o.group ?? 1;
    const [kh, kw] = pair(o.kernel);
    const [sh, sw] = pair(o.stride ?? 1);
    const [ph, pw] = pair(o.pad ?? [Math.floor((kh - 1) / 2), Math.floor((kw - 1) / 2)]);
    const [oph, opw] = pair(o.outputPadding ?? 0);
    const w = this.param(`${name}.weight`, [cin, o.out / group, kh, kw], o.init ?? 'he', { fanIn: (cin / group) * kh * kw, fanOut: (o.out / group) * kh * kw });
    const inputs = [x, w];
    if (o.bias ?? true) inputs.push(this.param(`${name}.bias`, [o.out], 'zeros'));
    return this.op(
      'ConvTranspose',
      inputs,
      { kernel_shape: attr.ints([kh, kw]), strides: attr.ints([sh, sw]), pads: attr.ints([ph, pw, ph, pw]), output_padding: attr.ints([oph, opw]), group: attr.int(group) },
      name,
    );
  }

  /** BatchNormalization in inference form (running statistics are parameters). */
  batchNorm(x: string, o: { name?: string; epsilon?: number; momentum?: number } = {}): string {
    const name = o.name ?? this.scope.fresh('bn');
    const c = this.dim(x, 1);
    const scale = this.param(`${name}.weight`, [c], 'ones');
    const bias = this.param(`${name}.bias`, [c], 'zeros');
    const mean = this.param(`${name}.running_mean`, [c], 'zeros');
    const variance = this.param(`${name}.running_var`, [c], 'ones');
    return this.op(
      'BatchNormalization',
      [x, scale, bias, mean, variance],
      { epsilon: attr.float(o.epsilon ?? 1e-5), momentum: attr.float(o.momentum ?? 0.9) },
      name,
    );
  }

  linear(x: string, o: { out: number; bias?: boolean; init?: Init; name?: string }): string {
    const name = o.name ?? this.scope.fresh('fc');
    const fin = this.dim(x, 1);
    const w = this.param(`${name}.weight`, [o.out, fin], o.init ?? 'he', { fanIn: fin, fanOut: o.out });
    const inputs = [x, w];
    if (o.bias ?? true) inputs.push(this.param(`${name}.bias`, [o.out], 'zeros'));
    return this.op('Gemm', inputs, { transB: attr.int(1) }, name);
  }

  relu(x: string, name?: string): string {
    return this.op('Relu', [x], {}, name);
  }
  leakyRelu(x: string, alpha = 0.01, name?: string): string {
    return this.op('LeakyRelu', [x], { alpha: attr.float(alpha) }, name);
  }
  sigmoid(x: string, name?: string): string {
    return this.op('Sigmoid', [x], {}, name);
  }
  tanh(x: string, name?: string): string {
    return this.op('Tanh', [x], {}, name);
  }
  clip(x: string, min: number, max: number, name?: string): string {
    return this.op('Clip', [x, this.scalar(min, 'clip_min'), this.scalar(max, 'clip_max')], {}, name);
  }
  softmax(x: string, axis = -1, name?: string): string {
    return this.op('Softmax', [x], { axis: attr.int(axis) }, name);
  }
  logSoftmax(x: string, axis = -1, name?: string): string {
    return this.op('LogSoftmax', [x], { axis: attr.int(axis) }, name);
  }
  add(a: string, b: string, name?: string): string {
    return this.op('Add', [a, b], {}, name);
  }
  sub(a: string, b: string, name?: string): string {
    return this.op('Sub', [a, b], {}, name);
  }
  mul(a: string, b: string, name?: string): string {
    return this.op('Mul', [a, b], {}, name);
  }
  div(a: string, b: string, name?: string): string {
    return this.op('Div', [a, b], {}, name);
  }
  matmul(a: string, b: string, name?: string): string {
    return this.op('MatMul', [a, b], {}, name);
  }
  concat(xs: string[], axis: number, name?: string): string {
    return this.op('Concat', xs, { axis: attr.int(axis) }, name);
  }
  flatten(x: string, axis = 1, name?: string): string {
    return this.op('Flatten', [x], { axis: attr.int(axis) }, name);
  }
  reshape(x: string, shape: number[], name?: string): string {
    return this.op('Reshape', [x, this.ints64(shape, 'shape')], {}, name);
  }
  transpose(x: string, perm: number[], name?: string): string {
    return this.op('Transpose', [x], { perm: attr.ints(perm) }, name);
  }
  globalAvgPool(x: string, name?: string): string {
    return this.op('GlobalAveragePool', [x], {}, name);
  }

  private poolAttrs(o: PoolOptions): Record<string, Attr> {
    const [kh, kw] = pair(o.kernel);
    const [sh, sw] = pair(o.stride ?? o.kernel);
    const [ph, pw] = pair(o.pad ?? 0);
    const a: Record<string, Attr> = { kernel_shape: attr.ints([kh, kw]), strides: attr.ints([sh, sw]), pads: attr.ints([ph, pw, ph, pw]) };
    if (o.ceil) a.ceil_mode = attr.int(1);
    return a;
  }

  maxPool(x: string, o: PoolOptions): string {
    return this.op('MaxPool', [x], this.poolAttrs(o), o.name);
  }

  /** MaxPool that also returns the argmax indices, for SegNet's unpooling. */
  maxPoolWithIndices(x: string, o: PoolOptions): { output: string; indices: string } {
    const [output, indices] = this.node('MaxPool', [x], this.poolAttrs(o), { outputs: 2, name: o.name });
    return { output, indices };
  }

  /**
   * MaxUnpool with the encoder's indices. `like` is the tensor that was pooled:
   * its shape is passed as output_shape so odd sizes (7 → 3 → 7) round-trip.
   */
  maxUnpool(x: string, indices: string, o: PoolOptions & { like?: string }): string {
    const inputs = [x, indices];
    if (o.like) {
      const s = this.shape(o.like);
      inputs.push(s.every((d) => typeof d === 'number') ? this.ints64(s as number[], 'unpool_shape') : this.op('Shape', [o.like]));
    }
    const a = this.poolAttrs(o);
    delete a.ceil_mode;
    return this.op('MaxUnpool', inputs, a, o.name);
  }

  averagePool(x: string, o: PoolOptions & { countIncludePad?: boolean }): string {
    const a = this.poolAttrs(o);
    if (o.countIncludePad) a.count_include_pad = attr.int(1);
    return this.op('AveragePool', [x], a, o.name);
  }

  /** Nearest-neighbour upsampling by an integer factor. */
  upsampleNearest(x: string, factor: number, name?: string): string {
    const rank = this.shape(x).length;
    const scales = this.constant(floatTensor([rank], [1, 1, ...new Array(rank - 2).fill(factor)]), 'scales');
    return this.op('Resize', [x, '', scales], { mode: attr.string('nearest') }, name);
  }

  /** The finished graph. Outputs carry inferred shapes. */
  build(): Graph {
    if (this.graph.outputs.length === 0) throw new Error(`builder '${this.graph.name}': no outputs were marked`);
    return this.graph;
  }

  /** Number of trainable float values (initializers of float type). */
  parameterCount(): number {
    let n = 0;
    for (const t of this.graph.initializers.values()) if (t.dataType === DataType.FLOAT) n += numel(t.dims);
    return n;
  }
}
