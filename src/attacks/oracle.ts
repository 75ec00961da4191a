import * as ort from 'onnxruntime-node';
import { appendCrossEntropy, buildGradientGraph } from '../autodiff';
import { DataType } from '../onnx/dtype';
import { Graph, cloneGraph } from '../onnx/graph';
import { TensorData } from '../onnx/tensor';
import { ModelSession, SessionOptions, createSession } from '../runtime/session';
import { LossKind, dlrWithWeights, klToReferenceWithWeights, targetedDlrWithWeights } from './objective';
import { LABEL_MASK_INPUT, MARGIN_OUTPUT, appendMargin, numClassesOf } from './margin';
import { LOGIT_WEIGHTS_INPUT, appendWeightedLogits } from './weighted';

/**
 * Where attacks get gradients from. An attack asks for "the per-sample loss,
 * logits and input gradient of this batch" and does not care whether the
 * answer comes from f, from f ∘ s, from f ∘ AE, or from an average over noise
 * draws (eot.ts): that choice is the evaluation setting's, not the attack's.
 */
export interface GradientRequest {
  /** n images, NCHW, flattened */
  x: Float32Array;
  /** per image: the true label (untargeted) or the target (targeted) */
  labels: Int32Array;
  loss: LossKind;
  /** stable image ids and the attack step: randomised oracles seed their draws from them */
  ids: readonly number[];
  step: number;
  /** dlr-targeted only: per image the class to push above the label */
  targets?: Int32Array;
  /** kl only: [n, K] per image the reference distribution the prediction is pushed away from */
  reference?: Float32Array;
}

export interface GradientResult {
  /** [n, K] */
  logits: Float32Array;
  /** [n] per-sample loss (cross-entropy of the label, its margin, DLR, or KL from the reference) */
  loss: Float32Array;
  /** d(loss[i]) / d(x[i]) for every image i, same layout as x */
  grad: Float32Array;
  /** per image, 1 where a detector in front of the judged model refuses the input (see `Judgement`) */
  refused?: Uint8Array;
}

/**
 * The judged model's logits, and for an oracle that fronts a detector the
 * inputs it refuses. An attack that honours refusals (APGD) never counts a
 * refused input as a success: the attacker who knows the detector must fool
 * the model *and* slip past the detector.
 */
export interface Judgement {
  logits: Float32Array;
  refused?: Uint8Array;
}

export interface GradientOracle {
  readonly name: string;
  /** C·H·W */
  readonly imageSize: number;
  readonly numClasses: number;
  gradient(req: GradientRequest): Promise<GradientResult>;
  /** forward pass only; randomised oracles average their draws */
  logits(x: Float32Array, ids: readonly number[], step: number): Promise<Float32Array>;
  /** logits and refusals, for oracles that front a detector; without it nothing is refused */
  judge?(x: Float32Array, ids: readonly number[], step: number): Promise<Judgement>;
  release(): Promise<void>;
}

/** Gradient graphs of one forward graph, under the names `s2s grad` uses. */
export interface OracleGraphs {
  /** input `input` → output `logits` */
  forward: Graph;
  /** inputs `input`, `labels` (int64 [N]) → `logits`, `loss` [N], `grad_input` */
  crossEntropy: Graph;
  /** inputs `input`, `label_mask` (float [N, K]) → `logits`, `margin` [N, 1], `grad_input` */
  margin: Graph;
  /** inputs `input`, `logit_weights` (float [N, K]) → `logits`, `weighted_logits` [N, 1], `grad_input` (weighted.ts) */
  weighted: Graph;
}

const INPUT = 'input';
const LOGITS = 'logits';
const GRAD = `grad_${INPUT}`;

/** A copy of `g` whose only output is `logits` (a defended graph may also output its reconstruction). */
export function logitsOnly(g: Graph): Graph {
  const out = g.outputs.find((o) => o.name === LOGITS);
  if (!out) throw new Error(`graph '${g.name}' has no output '${LOGITS}' (outputs: ${g.outputs.map((o) => o.name).join(', ')})`);
  if (!g.inputs.some((v) => v.name === INPUT)) throw new Error(`graph '${g.name}' has no input '${INPUT}'`);
  const c = cloneGraph(g);
  c.outputs = [{ ...out }];
  return c;
}

/** The cross-entropy gradient graph of a classifier-shaped graph, built with the autodiff engine. */
export function buildCrossEntropyGraph(forwardGraph: Graph): Graph {
  const ce = appendCrossEntropy(logitsOnly(forwardGraph), LOGITS);
  const g = buildGradientGraph({ graph: ce.graph, loss: ce.loss, wrt: [INPUT] }).graph;
  return renameValues(g, new Map([[ce.loss, 'loss'], [ce.labels, 'labels']]));
}

/** The margin gradient graph (margin.ts) of a classifier-shaped graph. */
export function buildMarginGraph(forwardGraph: Graph): Graph {
  const m = appendMargin(logitsOnly(forwardGraph), LOGITS);
  return buildGradientGraph({ graph: m.graph, loss: m.margin, wrt: [INPUT] }).graph;
}

/** The gradient graph of Σ_c w_c z_c (weighted.ts): the backward pass of any loss whose ∂L/∂z is computed outside. */
export function buildWeightedGraph(forwardGraph: Graph): Graph {
  const w = appendWeightedLogits(logitsOnly(forwardGraph), LOGITS);
  return buildGradientGraph({ graph: w.graph, loss: w.output, wrt: [INPUT] }).graph;
}

export function buildOracleGraphs(forwardGraph: Graph): OracleGraphs {
  return { forward: logitsOnly(forwardGraph), crossEntropy: buildCrossEntropyGraph(forwardGraph), margin: buildMarginGraph(forwardGraph), weighted: buildWeightedGraph(forwardGraph) };
}

/** The engine may choose its own value names; the sessions address the contract's names. */
function renameValues(g: Graph, names: Map<string, string>): Graph {
  for (const [from, to] of [...names]) if (from === to) names.delete(from);
  if (names.size === 0) return g;
  const c = cloneGraph(g);
  const map = (n: string) => names.get(n) ?? n;
  c.inputs = c.inputs.map((v) => ({ ...v, name: map(v.name) }));
  c.outputs = c.outputs.map((v) => ({ ...v, name: map(v.name) }));
  c.nodes = c.nodes.map((n) => ({ ...n, inputs: n.inputs.map(map), outputs: n.outputs.map(map) }));
  return c;
}

function floats(t: ort.Tensor): Float32Array {
  return t.data as Float32Array;
}

type GraphKind = keyof OracleGraphs;

/**
 * A GradientOracle over ONNX Runtime sessions of gradient graphs. Graphs and
 * sessions are made on first use, so an evaluation that never runs CW never
 * builds the margin graph.
 */
export class OnnxGradientOracle implements GradientOracle {
  private readonly sessions = new Map<GraphKind, Promise<ModelSession>>();
  /** values of the graph's other inputs (e.g. weights that change during training), fed with every run */
  private bound: Record<string, ort.Tensor> = {};
  readonly imageSize: number;
  readonly numClasses: number;
  private readonly dims: number[];

  private constructor(
    readonly name: string,
    private readonly forward: Graph,
    private readonly make: (kind: Exclude<GraphKind, 'forward'>) => Graph,
    private readonly sessionOptions: SessionOptions,
  ) {
    const shape = forward.inputs.find((v) => v.name === INPUT)?.shape ?? [];
    const dims = shape.slice(1);
    if (dims.length === 0 || dims.some((d) => typeof d !== 'number')) {
      throw new Error(`graph '${forward.name}': input '${INPUT}' needs static [C, H, W] after the batch axis, got [${shape.join(', ')}]`);
    }
    this.dims = dims as number[];
    this.imageSize = this.dims.reduce((a, d) => a * d, 1);
    this.numClasses = numClassesOf(forward, LOGITS);
  }

  /** Differentiates a forward graph (input `input`, output `logits`) with the engine, per loss on first use. */
  static fromForward(name: string, forwardGraph: Graph, opts: SessionOptions = {}): OnnxGradientOracle {
    const forward = logitsOnly(forwardGraph);
    const built = new Map<string, Graph>();
    const make = (kind: Exclude<GraphKind, 'forward'>) => {
      let g = built.get(kind);
      if (!g) {
        g = kind === 'crossEntropy' ? buildCrossEntropyGraph(forward) : kind === 'margin' ? buildMarginGraph(forward) : buildWeightedGraph(forward);
        built.set(kind, g);
      }
      return g;
    };
    return new OnnxGradientOracle(name, forward, make, opts);
  }

  /** Gradient graphs made elsewhere (e.g. by `s2s grad`), following the names of OracleGraphs. */
  static fromGraphs(name: string, graphs: { forward: Graph; crossEntropy?: Graph; margin?: Graph; weighted?: Graph }, opts: SessionOptions = {}): OnnxGradientOracle {
    const make = (kind: Exclude<GraphKind, 'forward'>) => {
      const g = graphs[kind];
      if (!g) throw new Error(`oracle '${name}' was given no ${kind} gradient graph`);
      return g;
    };
    return new OnnxGradientOracle(name, logitsOnly(graphs.forward), make, opts);
  }

  /**
   * Feeds these values to the graph's inputs other than the image (and the
   * loss's own) in every following run — for a graph whose weights are
   * inputs, such as a model in training. Replaces what was bound before.
   */
  bind(values: ReadonlyMap<string, TensorData>): void {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of values) {
      if (t.dataType !== DataType.FLOAT || !(t.data instanceof Float32Array)) throw new Error(`oracle '${this.name}': bound input '${name}' is not float32`);
      feeds[name] = new ort.Tensor('float32', t.data, t.dims);
    }
    this.bound = feeds;
  }

  private session(kind: GraphKind): Promise<ModelSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      const graph = kind === 'forward' ? this.forward : this.make(kind);
      s = createSession(graph, { ...this.sessionOptions, label: `${this.name}/${kind}` });
      this.sessions.set(kind, s);
    }
    return s;
  }

  private images(x: Float32Array): ort.Tensor {
    if (x.length % this.imageSize !== 0) throw new Error(`oracle '${this.name}': ${x.length} values are not whole images of ${this.imageSize}`);
    return new ort.Tensor('float32', x, [x.length / this.imageSize, ...this.dims]);
  }

  async gradient(req: GradientRequest): Promise<GradientResult> {
    const n = req.labels.length;
    if (req.x.length !== n * this.imageSize) throw new Error(`oracle '${this.name}': ${req.x.length} values for ${n} images of ${this.imageSize}`);
    if (req.loss === 'cross-entropy') {
      const s = await this.session('crossEntropy');
      const labels = new BigInt64Array(n);
      for (let i = 0; i < n; i++) labels[i] = BigInt(req.labels[i]);
      const r = await s.run({ ...this.bound, [INPUT]: this.images(req.x), labels: new ort.Tensor('int64', labels, [n]) }, [LOGITS, 'loss', GRAD]);
      return { logits: floats(r[LOGITS]), loss: floats(r.loss), grad: floats(r[GRAD]) };
    }
    const k = this.numClasses;
    if (req.loss === 'kl') {
      const ref = req.reference;
      if (ref?.length !== n * k) throw new Error(`oracle '${this.name}': the kl loss needs a reference distribution of ${n}×${k} values, got ${ref?.length ?? 'none'}`);
      return this.weightedGradient(req.x, n, (z, i, weights) => klToReferenceWithWeights(z, k, i, ref, weights).value);
    }
    if (req.loss === 'dlr' || req.loss === 'dlr-targeted') {
      const targets = req.targets;
      if (req.loss === 'dlr-targeted' && targets?.length !== n) throw new Error(`oracle '${this.name}': dlr-targeted needs one target per image`);
      return this.weightedGradient(req.x, n, (z, i, weights) =>
        targets && req.loss === 'dlr-targeted' ? targetedDlrWithWeights(z, k, i, req.labels[i], targets[i], weights).value : dlrWithWeights(z, k, i, req.labels[i], weights).value,
      );
    }
    const s = await this.session('margin');
    const mask = new Float32Array(n * k);
    for (let i = 0; i < n; i++) mask[i * k + req.labels[i]] = 1;
    const r = await s.run({ ...this.bound, [INPUT]: this.images(req.x), [LABEL_MASK_INPUT]: new ort.Tensor('float32', mask, [n, k]) }, [LOGITS, MARGIN_OUTPUT, GRAD]);
    return { logits: floats(r[LOGITS]), loss: floats(r[MARGIN_OUTPUT]), grad: floats(r[GRAD]) };
  }

  /**
   * For losses whose ∂L/∂z is computed here rather than in a graph (DLR needs
   * a sort of the logits, KL a per-image reference): a forward pass gives z,
   * `lossAt` fills row i of the weights with ∂L/∂z and returns L, and the
   * weighted-logit graph's backward pass pulls the weights back to the input.
   */
  private async weightedGradient(x: Float32Array, n: number, lossAt: (z: Float32Array, row: number, weights: Float32Array) => number): Promise<GradientResult> {
    const k = this.numClasses;
    const z = await this.logits(x);
    const weights = new Float32Array(n * k);
    const loss = new Float32Array(n);
    for (let i = 0; i < n; i++) loss[i] = lossAt(z, i, weights);
    const s = await this.session('weighted');
    const r = await s.run({ ...this.bound, [INPUT]: this.images(x), [LOGIT_WEIGHTS_INPUT]: new ort.Tensor('float32', weights, [n, k]) }, [LOGITS, GRAD]);
    return { logits: floats(r[LOGITS]), loss, grad: floats(r[GRAD]) };
  }

  /** Deterministic: the ids and step that randomised oracles seed from are not needed. */
  async logits(x: Float32Array, _ids?: readonly number[], _step?: number): Promise<Float32Array> {
    const s = await this.session('forward');
    const r = await s.run({ ...this.bound, [INPUT]: this.images(x) }, [LOGITS]);
    return floats(r[LOGITS]);
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

/** The oracle's judgement of x: its `judge` where it has one, else its logits with nothing refused. */
export async function judgeWith(oracle: GradientOracle, x: Float32Array, ids: readonly number[], step: number): Promise<Judgement> {
  return oracle.judge ? oracle.judge(x, ids, step) : { logits: await oracle.logits(x, ids, step) };
}
