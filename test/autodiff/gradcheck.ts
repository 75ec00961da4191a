import * as ort from 'onnxruntime-node';
import { buildGradientGraph } from '../../src/autodiff/gradient';
import { DataType } from '../../src/onnx/dtype';
import { Graph, cloneGraph } from '../../src/onnx/graph';
import { inferShapes } from '../../src/onnx/shapes';
import { TensorData, numel } from '../../src/onnx/tensor';
import { createSession, ModelSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';

/**
 * Finite-difference gradient checks.
 *
 * The graph's outputs are reduced to a scalar by a fixed random projection,
 * L = Σ_k ⟨out_k, R_k⟩, computed in float64 on the test side from the
 * outputs ORT returns. The analytic gradient of L (from the gradient graph)
 * is compared with central differences
 *   - coordinate by coordinate (all coordinates of small tensors, a random
 *     subset of large ones), as a relative L2 error over those coordinates;
 *   - along a direction v = ĝ + r̂ (the analytic gradient's direction plus a
 *     random one, both unit length): ⟨∇L, v⟩ vs (L(θ+εv) − L(θ−εv)) / 2ε,
 *     which tests every coordinate at once.
 * Graphs in float64 use ε = 1e-5 (errors ~1e-9); float32 graphs (ORT has no
 * double kernels for Conv, ConvTranspose, AveragePool, GlobalAveragePool) are
 * built from ops that are linear or piecewise linear away from kinks, so the
 * central difference is exact up to rounding, and test inputs keep a margin
 * from every kink (ReLU at 0, pooling ties) larger than ε.
 */
export interface CheckOptions {
  graph: Graph;
  feeds: Record<string, TensorData>;
  wrt: string[];
  eps?: number;
  /** coordinates checked per wrt tensor (default 48) */
  coords?: number;
  seed?: number;
  /**
   * Freeze every kink at the evaluation point before differencing: each Relu
   * becomes a multiplication by its 0/1 mask and each MaxPool a Gather of its
   * argmax indices, all taken from a run at the unperturbed point. The
   * gradient at a point off the kinks equals that of this linearisation, and
   * a network of Conv/BN/Relu/pool/Add/Gemm becomes exactly linear in its
   * input and in each single parameter tensor, so a large step (default 4)
   * drowns float32 rounding without any truncation error. For deep float32
   * networks, where ORT has no double kernels.
   */
  linearize?: boolean;
}

export interface CheckResult {
  name: string;
  /** relative L2 error over the checked coordinates */
  coordError: number;
  /** relative error of the directional derivative */
  directionError: number;
  checked: number;
  gradNorm: number;
}

type Arr = Float32Array | Float64Array;

function floatOf(dt: DataType, n: number): Arr {
  return dt === DataType.DOUBLE ? new Float64Array(n) : new Float32Array(n);
}

export function randomTensor(rng: Rng, dims: number[], dataType = DataType.FLOAT, scale = 1): TensorData {
  const data = floatOf(dataType, numel(dims));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * scale;
  return { dataType, dims: [...dims], data };
}

/** Values with |v| ≥ margin: no ReLU-style kink within reach of a small step. */
export function awayFromZero(rng: Rng, dims: number[], margin = 0.1, dataType = DataType.FLOAT): TensorData {
  const t = randomTensor(rng, dims, dataType);
  const d = t.data as Arr;
  for (let i = 0; i < d.length; i++) d[i] = Math.sign(d[i] || 1) * (margin + Math.abs(d[i]));
  return t;
}

/** A permutation of well-separated values: pooling windows have unique maxima with gaps ≥ gap. */
export function distinctValues(rng: Rng, dims: number[], gap = 0.05, dataType = DataType.FLOAT): TensorData {
  const n = numel(dims);
  const perm = rng.permutation(n);
  const data = floatOf(dataType, n);
  for (let i = 0; i < n; i++) data[i] = (perm[i] - n / 2) * gap;
  return { dataType, dims: [...dims], data };
}

function toOrt(t: TensorData): ort.Tensor {
  return new ort.Tensor(t.dataType === DataType.DOUBLE ? 'float64' : t.dataType === DataType.INT64 ? 'int64' : 'float32', t.data as Float32Array, t.dims);
}

/** Same graph with the named initializers turned into inputs (so they can be perturbed). */
function exposeInitializers(g: Graph, names: string[]): Graph {
  const c = cloneGraph(g);
  for (const n of names) {
    const t = c.initializers.get(n);
    if (!t) continue;
    c.initializers.delete(n);
    c.inputs.push({ name: n, dataType: t.dataType, shape: [...t.dims] });
  }
  return c;
}

export async function gradCheck(o: CheckOptions): Promise<CheckResult[]> {
  const rng = new Rng(o.seed ?? 1234);
  let fwd = exposeInitializers(o.graph, o.wrt);
  const feeds: Record<string, TensorData> = { ...o.feeds };
  for (const w of o.wrt) if (!feeds[w]) feeds[w] = o.graph.initializers.get(w)!;
  if (o.linearize) fwd = await linearizeKinks(fwd, feeds);
  const fwdSession = await createSession(fwd, { intraOpThreads: 1 });
  const outNames = o.graph.outputs.map((v) => v.name);
  const base = await fwdSession.run(feeds);

  // Projection loss, appended as graph ops for the analytic side.
  const projections = new Map<string, Float64Array>();
  const lossGraph = cloneGraph(o.graph);
  const terms: string[] = [];
  for (const name of outNames) {
    const t = base[name];
    if (t.type !== 'float32' && t.type !== 'float64') continue;
    const dt = t.type === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
    const r = randomTensor(rng, [...t.dims], dt);
    projections.set(name, Float64Array.from(r.data as Arr));
    lossGraph.initializers.set(`proj/${name}`, r);
    lossGraph.nodes.push({ name: `proj/mul/${name}`, opType: 'Mul', inputs: [name, `proj/${name}`], outputs: [`proj/prod/${name}`], attrs: {} });
    lossGraph.nodes.push({ name: `proj/sum/${name}`, opType: 'ReduceSum', inputs: [`proj/prod/${name}`], outputs: [`proj/term/${name}`], attrs: { keepdims: { kind: 'int', value: 0 } } });
    terms.push(`proj/term/${name}`);
  }
  lossGraph.nodes.push({ name: 'proj/total', opType: 'Sum', inputs: terms, outputs: ['proj_loss'], attrs: {} });
  const grad = buildGradientGraph({ graph: lossGraph, loss: 'proj_loss', wrt: o.wrt });
  const gradSession = await createSession(exposeInitializers(grad.graph, o.wrt), { intraOpThreads: 1 });
  const analytic = await gradSession.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)])), [...grad.gradients.values()]);

  const lossAt = async (name: string, values: Arr): Promise<number> => {
    const r = await fwdSession.run({ ...feeds, [name]: { ...feeds[name], data: values } }, outNames);
    let s = 0;
    for (const [out, p] of projections) {
      const d = r[out].data as Arr;
      for (let i = 0; i < d.length; i++) s += d[i] * p[i];
    }
    return s;
  };

  const results: CheckResult[] = [];
  for (const w of o.wrt) {
    const x = feeds[w];
    const xd = x.data as Arr;
    const eps = o.eps ?? (o.linearize ? 4 : x.dataType === DataType.DOUBLE ? 1e-5 : 1e-2);
    const g = analytic[grad.gradients.get(w)!].data as Arr;
    expectSameLength(w, g.length, xd.length);
    const n = xd.length;
    const count = Math.min(n, o.coords ?? 48);
    const coords = count === n ? Array.from({ length: n }, (_, i) => i) : rng.permutation(n).slice(0, count);
    let diff2 = 0, num2 = 0, ana2 = 0;
    for (const i of coords) {
      const plus = xd.slice() as Arr;
      const minus = xd.slice() as Arr;
      plus[i] += eps;
      minus[i] -= eps;
      const fd = ((await lossAt(w, plus)) - (await lossAt(w, minus))) / (2 * eps);
      diff2 += (fd - g[i]) ** 2;
      num2 += fd * fd;
      ana2 += g[i] * g[i];
    }
    // v = ĝ + r̂ (analytic direction plus a random one): ⟨∇L, v⟩ cannot vanish by cancellation.
    const r = Float64Array.from({ length: n }, () => rng.normal());
    let gn = 0, rn = 0;
    for (let i = 0; i < n; i++) {
      gn += g[i] * g[i];
      rn += r[i] * r[i];
    }
    gn = Math.sqrt(gn) || 1;
    rn = Math.sqrt(rn) || 1;
    const v = Float64Array.from({ length: n }, (_, i) => g[i] / gn + r[i] / rn);
    const plus = xd.slice() as Arr;
    const minus = xd.slice() as Arr;
    for (let i = 0; i < n; i++) {
      plus[i] += eps * v[i];
      minus[i] -= eps * v[i];
    }
    const fdDir = ((await lossAt(w, plus)) - (await lossAt(w, minus))) / (2 * eps);
    let anaDir = 0;
    for (let i = 0; i < n; i++) anaDir += g[i] * v[i];
    results.push({
      name: w,
      coordError: Math.sqrt(diff2) / Math.max(Math.sqrt(num2), Math.sqrt(ana2), 1e-12),
      directionError: Math.abs(fdDir - anaDir) / Math.max(Math.abs(fdDir), Math.abs(anaDir), 1e-12),
      checked: coords.length,
      gradNorm: Math.sqrt(ana2),
    });
  }
  await fwdSession.release();
  await gradSession.release();
  return results;
}

/** See CheckOptions.linearize. */
export async function linearizeKinks(g: Graph, feeds: Record<string, TensorData>): Promise<Graph> {
  const probe = cloneGraph(g);
  const relus = probe.nodes.filter((n) => n.opType === 'Relu');
  const pools = probe.nodes.filter((n) => n.opType === 'MaxPool');
  if (relus.length + pools.length === 0) return g;
  pools.forEach((n, i) => {
    if (!n.outputs[1]) n.outputs[1] = `probe/argmax${i}`;
  });
  const types = inferShapes(probe);
  probe.outputs = [...relus.map((n) => n.inputs[0]), ...pools.map((n) => n.outputs[1])].map((name) => ({ name, dataType: types.get(name)?.dataType ?? DataType.FLOAT }));
  const s = await createSession(probe, { intraOpThreads: 1 });
  const r = await s.run(feeds);
  await s.release();
  const lin = cloneGraph(g);
  const byName = new Map(lin.nodes.map((n) => [n.name, n]));
  relus.forEach((p, i) => {
    const n = byName.get(p.name)!;
    const pre = r[p.inputs[0]];
    const pd = pre.data as Arr;
    const mask = floatOf(pre.type === 'float64' ? DataType.DOUBLE : DataType.FLOAT, pd.length);
    for (let k = 0; k < pd.length; k++) mask[k] = pd[k] > 0 ? 1 : 0;
    lin.initializers.set(`lin/mask${i}`, { dataType: pre.type === 'float64' ? DataType.DOUBLE : DataType.FLOAT, dims: [...pre.dims], data: mask });
    Object.assign(n, { opType: 'Mul', inputs: [n.inputs[0], `lin/mask${i}`], attrs: {} });
  });
  pools.forEach((p, i) => {
    const n = byName.get(p.name)!;
    const idx = r[p.outputs[1]];
    const idxName = g.nodes.find((m) => m.name === p.name)!.outputs[1] || `lin/argmax${i}`;
    lin.initializers.set(idxName, { dataType: DataType.INT64, dims: [...idx.dims], data: idx.data as BigInt64Array });
    lin.initializers.set(`lin/flat${i}`, { dataType: DataType.INT64, dims: [1], data: BigInt64Array.of(-1n) });
    const flat = `lin/flat${i}/out`;
    lin.nodes.splice(lin.nodes.indexOf(n), 1,
      { name: `lin/reshape${i}`, opType: 'Reshape', inputs: [n.inputs[0], `lin/flat${i}`], outputs: [flat], attrs: {} },
      { name: `lin/gather${i}`, opType: 'Gather', inputs: [flat, idxName], outputs: [n.outputs[0]], attrs: {} });
  });
  return lin;
}

function expectSameLength(name: string, a: number, b: number): void {
  if (a !== b) throw new Error(`gradient of '${name}' has ${a} elements, the tensor ${b}`);
}

/** Asserts every check passed with relative error below `tol`, and that gradients are not trivially zero. */
export function expectAccurate(results: CheckResult[], tol = 1e-3): void {
  for (const r of results) {
    const msg = `${r.name}: coordinate error ${r.coordError.toExponential(2)}, direction error ${r.directionError.toExponential(2)}, |g| ${r.gradNorm.toExponential(2)}`;
    if (!(r.coordError < tol && r.directionError < tol && r.gradNorm > 0)) throw new Error(msg);
  }
}

export type { ModelSession };
