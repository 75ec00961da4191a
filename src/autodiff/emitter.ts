import { UserError } from '../util/errors';
import { DataType } from '../onnx/dtype';
import { Attr, Dim, Graph, NameScope, Node, ValueInfo, attr, topologicalSort } from '../onnx/graph';
import { ShapeContext, inferNode } from '../onnx/shapes';
import { TensorData, int64Vector, tensorToNumbers } from '../onnx/tensor';

/**
 * Appends backward nodes to a graph while keeping every value's type and
 * (possibly symbolic) shape known, so rules can pick static constants where
 * shapes are static and fall back to runtime Shape ops where they are not
 * (the batch axis of an exported classifier is typically symbolic).
 *
 * Emitted ops are valid at `opset` (13 or later): reductions and squeezes take
 * their axes in the form that opset expects.
 */
export class Emitter {
  private readonly infos = new Map<string, ValueInfo>();
  private readonly intValues = new Map<string, Dim[]>();
  private readonly floatValues = new Map<string, number[]>();
  private readonly intConsts = new Map<string, string>();
  private readonly scalarConsts = new Map<string, string>();
  private readonly shapeNodes = new Map<string, string>();
  /** name prefix for the nodes of the rule being run (set by the engine) */
  prefix = 'grad';

  readonly ctx: ShapeContext = {
    info: (n) => this.infos.get(n) ?? this.graph.valueInfo.get(n),
    intValue: (n) => this.intValues.get(n),
    floatValue: (n) => this.floatValues.get(n),
  };

  constructor(
    readonly graph: Graph,
    readonly scope: NameScope,
    readonly opset: number,
  ) {
    for (const v of graph.inputs) this.infos.set(v.name, v);
    for (const [name, t] of graph.initializers) this.recordConstant(name, t);
    for (const node of topologicalSort(graph)) this.infer(node);
  }

  private recordConstant(name: string, t: TensorData): void {
    this.infos.set(name, { name, dataType: t.dataType, shape: [...t.dims] });
    if (t.data.length > 64) return;
    if (t.dataType === DataType.INT64 || t.dataType === DataType.INT32) this.intValues.set(name, tensorToNumbers(t));
    if (t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE) this.floatValues.set(name, tensorToNumbers(t));
  }

  private producers?: Map<string, Node>;

  /** The node that computes v (forward graph), for rules that recognise patterns. */
  producer(v: string): Node | undefined {
    if (!this.producers) {
      this.producers = new Map();
      for (const n of this.graph.nodes) for (const o of n.outputs) if (o) this.producers.set(o, n);
    }
    return this.producers.get(v);
  }

  /** Makes a value added from outside (a new graph input) known. */
  declare(v: ValueInfo): void {
    this.infos.set(v.name, v);
  }

  /** Records the inferred outputs of a node (forward or backward). */
  infer(node: Node): void {
    const r = inferNode(node, this.ctx);
    r?.outputs.forEach((o, i) => o && node.outputs[i] && this.infos.set(node.outputs[i], { ...o, name: node.outputs[i] }));
    r?.intValues?.forEach((v, i) => v && node.outputs[i] && this.intValues.set(node.outputs[i], v));
    if (node.opType === 'Constant' && node.attrs.value?.kind === 'tensor') this.recordConstant(node.outputs[0], node.attrs.value.value);
  }

  /** For ops whose form the rule needs (ScatterElements/ScatterND with reduction='add' are opset 16). */
  requireOpset(version: number, what: string): void {
    if (this.opset < version) {
      throw new UserError(`autodiff: ${what} needs opset ${version}, and this graph stays at opset ${this.opset} (a node in it would change meaning if raised)`);
    }
  }

  // ---------- what is known about values ----------

  info(v: string): ValueInfo | undefined {
    return this.ctx.info(v);
  }

  dataType(v: string): DataType {
    const i = this.info(v);
    if (!i) throw new Error(`autodiff: type of '${v}' is unknown`);
    return i.dataType;
  }

  shape(v: string): Dim[] | undefined {
    return this.info(v)?.shape;
  }

  /** The shape when every dimension is a number. */
  staticShape(v: string): number[] | undefined {
    const s = this.shape(v);
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  }

  rank(v: string): number {
    const s = this.shape(v);
    if (!s) throw new UserError(`autodiff: the rank of '${v}' cannot be inferred; give the model's inputs shapes`);
    return s.length;
  }

  /** A known small integer tensor (axes, pads, shapes), e.g. from an initializer or a Constant. */
  intValue(v: string): number[] | undefined {
    const x = this.intValues.get(v);
    return x && x.every((d) => typeof d === 'number') ? (x as number[]) : undefined;
  }

  floatValue(v: string): number[] | undefined {
    return this.floatValues.get(v);
  }

  // ---------- emitting ----------

  /** Appends a node; `outputs` is a count of fresh names, or the (already reserved) output names. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: number | string[] = 1): string[] {
    const name = this.scope.fresh(`${this.prefix}/${opType}`);
    const outs = Array.isArray(outputs) ? outputs : Array.from({ length: outputs }, (_, i) => this.scope.fresh(i === 0 ? name : `${name}:${i}`));
    const node: Node = { name, opType, inputs, outputs: outs, attrs };
    this.graph.nodes.push(node);
    this.infer(node);
    return outs;
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.node(opType, inputs, attrs)[0];
  }

  constant(t: TensorData, base = 'const'): string {
    const name = this.scope.fresh(`${this.prefix}/${base}`);
    this.graph.initializers.set(name, t);
    this.recordConstant(name, t);
    return name;
  }

  /** An int64 vector constant, shared between rules. */
  ints(values: number[]): string {
    const key = values.join(',');
    let name = this.intConsts.get(key);
    if (!name) {
      name = this.scope.fresh(`grad/ints[${key}]`);
      this.graph.initializers.set(name, int64Vector(values));
      this.recordConstant(name, int64Vector(values));
      this.intConsts.set(key, name);
    }
    return name;
  }

  /** A 0-d constant of the given floating type (so double graphs stay double). */
  scalar(value: number, dataType: DataType): string {
    const key = `${dataType}:${value}`;
    let name = this.scalarConsts.get(key);
    if (!name) {
      name = this.scope.fresh(`grad/scalar(${value})`);
      const t = scalarTensor(value, dataType, []);
      this.graph.initializers.set(name, t);
      this.recordConstant(name, t);
      this.scalarConsts.set(key, name);
    }
    return name;
  }

  /** A scalar of the same type as `like`. */
  scalarLike(value: number, like: string): string {
    return this.scalar(value, this.dataType(like));
  }

  /** v's shape as an int64 tensor: a constant when static, else a (shared) Shape node. */
  shapeOf(v: string): string {
    const s = this.staticShape(v);
    if (s) return this.ints(s);
    let name = this.shapeNodes.get(v);
    if (!name) {
      const saved = this.prefix;
      this.prefix = 'grad/shape';
      name = this.op('Shape', [v]);
      this.prefix = saved;
      this.shapeNodes.set(v, name);
    }
    return name;
  }

  /** Runtime size of one axis as an int64 [1] tensor (a constant when static). */
  dimOf(v: string, axis: number): string {
    const s = this.shape(v);
    const a = axis < 0 ? axis + (s?.length ?? 0) : axis;
    const d = s?.[a];
    if (typeof d === 'number') return this.ints([d]);
    return this.op('Shape', [v], { start: attr.int(a), end: attr.int(a + 1) });
  }

  // ---------- helpers used by many rules ----------

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  neg(a: string): string {
    return this.op('Neg', [a]);
  }
  /** x · c for a constant c (no node when c = 1). */
  scale(x: string, c: number): string {
    if (c === 1) return x;
    if (c === -1) return this.neg(x);
    return this.mul(x, this.scalarLike(c, x));
  }

  transpose(x: string, perm: number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], { perm: attr.ints(perm) });
  }

  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    if (axes.length === 0) return x;
    return this.op('ReduceSum', [x, this.ints(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });
  }

  /** ReduceMean's axes moved from attribute to input at opset 18. */
  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    if (this.opset >= 18) return this.op('ReduceMean', [x, this.ints(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });
    return this.op('ReduceMean', [x], { axes: attr.ints(axes), keepdims: attr.int(keepdims ? 1 : 0) });
  }

  squeeze(x: string, axes: number[]): string {
    if (axes.length === 0) return x;
    return this.op('Squeeze', [x, this.ints(axes)]);
  }

  unsqueeze(x: string, axes: number[]): string {
    if (axes.length === 0) return x;
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }

  /** Records that v has like's shape (true by construction where shape rules cannot see it). */
  private sameShape(v: string, like: string): string {
    const s = this.shape(like);
    const i = this.info(v);
    if (s) this.infos.set(v, { name: v, dataType: i?.dataType ?? this.dataType(like), shape: [...s] });
    return v;
  }

  /** Reshape x to the shape of `like` (static constant, one -1 for one symbolic axis, else runtime). */
  reshapeLike(x: string, like: string): string {
    const target = this.shape(like);
    const have = this.shape(x);
    if (target && have && target.length === have.length && target.every((d, i) => d === have[i])) return x;
    if (target) {
      const symbolic = target.filter((d) => typeof d !== 'number').length;
      if (symbolic === 0) return this.op('Reshape', [x, this.ints(target as number[])]);
      if (symbolic === 1) return this.sameShape(this.op('Reshape', [x, this.ints(target.map((d) => (typeof d === 'number' ? d : -1)))]), like);
    }
    return this.sameShape(this.op('Reshape', [x, this.shapeOf(like)]), like);
  }

  expandLike(x: string, like: string): string {
    return this.sameShape(this.op('Expand', [x, this.shapeOf(like)]), like);
  }

  /** Zeros with the shape and type of `like`. */
  zerosLike(like: string): string {
    return this.sameShape(this.op('ConstantOfShape', [this.shapeOf(like)], { value: attr.tensor(scalarTensor(0, this.dataType(like), [1])) }), like);
  }

  /** Ones with the shape and type of `like`. */
  onesLike(like: string): string {
    return this.sameShape(this.op('ConstantOfShape', [this.shapeOf(like)], { value: attr.tensor(scalarTensor(1, this.dataType(like), [1])) }), like);
  }

  /**
   * Undoes numpy broadcasting: sums `grad` over the axes along which `target`
   * was broadcast, so the result has target's shape.
   */
  sumToShape(grad: string, target: string): string {
    const gs = this.shape(grad);
    const ts = this.shape(target);
    if (!gs || !ts) {
      if (gs && ts === undefined) throw new UserError(`autodiff: the shape of '${target}' is unknown; cannot undo its broadcast`);
      throw new UserError(`autodiff: the shape of '${grad}' is unknown; cannot undo broadcasting onto '${target}'`);
    }
    const lead = gs.length - ts.length;
    const axes: number[] = [];
    for (let i = 0; i < gs.length; i++) {
      if (i < lead) axes.push(i);
      else {
        const t = ts[i - lead];
        const g = gs[i];
        if (t === 1 && g !== 1) axes.push(i);
      }
    }
    if (axes.length === 0) return grad;
    const summed = this.reduceSum(grad, axes, true);
    return this.squeeze(summed, Array.from({ length: lead }, (_, i) => i));
  }
}

export function scalarTensor(value: number, dataType: DataType, dims: number[]): TensorData {
  switch (dataType) {
    case DataType.FLOAT:
      return { dataType, dims, data: Float32Array.of(value) };
    case DataType.DOUBLE:
      return { dataType, dims, data: Float64Array.of(value) };
    case DataType.INT64:
      return { dataType, dims, data: BigInt64Array.of(BigInt(value)) };
    default:
      throw new UserError(`autodiff: gradients of ${DataType[dataType] ?? dataType} tensors are not supported (use float32 or float64)`);
  }
}
