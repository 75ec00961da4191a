import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildGradientGraph } from '../autodiff/gradient';
import { appendCrossEntropy, appendKl, appendMse, appendTrades } from '../autodiff/losses';
import { toTrainingBatchNorm } from '../autodiff/batchNorm';
import { DataType } from '../onnx/dtype';
import { Graph, NameScope, ValueInfo, cloneGraph } from '../onnx/graph';
import { loadModel, saveModel } from '../onnx/io';
import { TensorData } from '../onnx/tensor';
import { UserError } from '../util/errors';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { initializersToInputs, renameValue } from './graphEdit';
import { OptimizerConfig, ParamSpec, buildOptimizerGraph, initialState, resolveOptimizer } from './optimizer';
import { selectParameters } from './params';
import { addReferenceBranch } from './reference';

/**
 * Training artifacts in onnxruntime's on-device-training layout — one folder
 * holding training_model.onnx, eval_model.onnx, optimizer_model.onnx and
 * checkpoint — made of standard ONNX ops only, so a stock ONNX Runtime (CPU or
 * CUDA EP, onnxruntime-node included) runs them:
 *
 * - training_model.onnx: inputs = the image input, the loss's extra input
 *   (`labels` for cross-entropy), every trainable parameter, and the running
 *   statistics of BatchNorm layers that train; outputs = `loss` (scalar, mean
 *   over the batch), `grad_<param>` for each trainable parameter, and the
 *   updated running statistics. Frozen parameters stay initializers: no
 *   gradient is computed for them, ORT may constant-fold them.
 * - eval_model.onnx: same inputs, BatchNorm in inference form; outputs `loss`,
 *   the per-sample loss and the model's own outputs.
 * - optimizer_model.onnx: see optimizer.ts (inputs learning_rate, step,
 *   params, grads, states; outputs updated params and states).
 * - checkpoint: step 0 — initial parameters, zero optimizer state, running
 *   statistics (format: docs/checkpoint.md).
 * What the artifacts are (names, shapes, loss) is recorded as JSON in the
 * training model's metadata under `s2s.training` (ArtifactInfo).
 */

export type LossKind = 'cross-entropy' | 'mse' | 'kl' | 'trades';

export interface LossSpec {
  kind: LossKind;
  /** model output the loss reads; default `logits` (cross-entropy, kl) or `reconstruction` (mse), else the first output */
  output?: string;
  /** mse: value the output is compared with; default the image input (an autoencoder reconstructing its input) */
  target?: string;
  /**
   * kl: P in KL(P ‖ Q), Q = softmax(output): either a value the model computes,
   * or a frozen classifier applied to the clean input (stage-2 label-free loss).
   */
  reference?: string | { classifier: Graph; output?: string };
  /** trades: CE(output, labels) + β·KL(output ‖ `adversarial`), `adversarial` the model's logits of the adversarial partners */
  adversarial?: string;
  beta?: number;
}

export interface ArtifactOptions {
  /** 'all' (weights of parametric layers) or names / `*` patterns */
  requiresGrad: 'all' | string[];
  /** names / `*` patterns to leave constant */
  frozen?: string[];
  loss: LossSpec;
  optimizer: OptimizerConfig;
  /** image input; default the model's first float input */
  input?: string;
  /** BatchNorm layers whose scale/bias train use batch statistics and update running ones (default true) */
  trainBatchNorm?: boolean;
}

export interface ArtifactInfo {
  version: 1;
  model: string;
  opset: number;
  imageInput: string;
  /** int64 [N] input of the cross-entropy loss */
  labelsInput?: string;
  loss: { kind: LossKind; output: string; target?: string; reference?: string; adversarial?: string; beta?: number };
  /** scalar mean loss, an output of the training and the eval model */
  lossOutput: string;
  /** [N] loss per sample, an output of the eval model */
  perSampleLoss: string;
  /** the model's own outputs (kept by the eval model; the exported inference graph has exactly these) */
  modelOutputs: ValueInfo[];
  params: ParamSpec[];
  frozen: string[];
  /** running statistics that training updates: input name, dims, name of the updated output of the training model */
  buffers: Array<{ name: string; dims: number[]; updated: string }>;
  gradients: Record<string, string>;
  optimizer: Required<OptimizerConfig>;
}

export interface TrainingArtifacts {
  training: Graph;
  eval: Graph;
  optimizer: Graph;
  checkpoint: Checkpoint;
  info: ArtifactInfo;
}

export const FILES = {
  training: 'training_model.onnx',
  eval: 'eval_model.onnx',
  optimizer: 'optimizer_model.onnx',
  checkpoint: 'checkpoint',
} as const;

const INFO_KEY = 's2s.training';

function defaultOutput(g: Graph, kind: LossKind): string {
  const names = g.outputs.map((o) => o.name);
  const preferred = kind === 'mse' ? 'reconstruction' : 'logits';
  if (names.includes(preferred)) return preferred;
  if (names.length === 0) throw new UserError(`model '${g.name}' has no outputs`);
  return names[0];
}

function imageInputOf(g: Graph, name?: string): ValueInfo {
  const v = name ? g.inputs.find((i) => i.name === name) : g.inputs.find((i) => i.dataType === DataType.FLOAT);
  if (!v) throw new UserError(name ? `model '${g.name}' has no input '${name}'` : `model '${g.name}' has no float input`);
  if (v.dataType !== DataType.FLOAT) throw new UserError(`input '${v.name}' of '${g.name}' is not float32`);
  const n = v.shape?.[0];
  if (typeof n === 'number' && n !== -1) {
    throw new UserError(`input '${v.name}' of '${g.name}' has a fixed batch size ${n}; training needs a symbolic batch axis (export with a dynamic axis)`);
  }
  return v;
}

interface LossOnGraph {
  graph: Graph;
  perSample: string;
  mean: string;
  labels?: string;
}

/** Appends the per-sample loss and its batch mean `loss`. */
function appendLoss(g: Graph, kind: LossKind, output: string, target: string | undefined, reference: string | undefined, trades?: { adversarial: string; beta: number }): LossOnGraph {
  let r: { graph: Graph; loss: string; labels?: string };
  if (kind === 'cross-entropy') r = appendCrossEntropy(g, output);
  else if (kind === 'trades') r = appendTrades(g, output, trades!.adversarial, trades!.beta);
  else if (kind === 'mse') r = appendMse(g, output, target!);
  else r = appendKl(g, reference!, output);
  const graph = r.graph;
  let perSample = r.loss;
  if (perSample === 'loss') {
    renameValue(graph, 'loss', 'loss_per_sample');
    perSample = 'loss_per_sample';
  }
  const scope = new NameScope(graph);
  if (scope.has('loss')) throw new UserError(`model '${g.name}' already has a value named 'loss'; rename it before generating artifacts`);
  scope.reserve('loss');
  graph.nodes.push({ name: scope.fresh('loss_mean'), opType: 'ReduceMean', inputs: [perSample], outputs: ['loss'], attrs: { keepdims: { kind: 'int', value: 0 } } });
  return { graph, perSample, mean: 'loss', labels: r.labels };
}

export function buildArtifacts(model: Graph, opts: ArtifactOptions): TrainingArtifacts {
  const image = imageInputOf(model, opts.input);
  const { trainable, frozen } = selectParameters(model, opts.requiresGrad, opts.frozen ?? []);
  const trainableSet = new Set(trainable);
  const kind = opts.loss.kind;
  const output = opts.loss.output ?? defaultOutput(model, kind);
  if (!model.outputs.some((o) => o.name === output)) {
    throw new UserError(`loss reads '${output}', which is not an output of '${model.name}' (outputs: ${model.outputs.map((o) => o.name).join(', ')})`);
  }

  let base = cloneGraph(model);
  let target: string | undefined;
  let reference: string | undefined;
  if (kind === 'mse') {
    target = opts.loss.target ?? image.name;
  } else if (kind === 'kl') {
    const ref = opts.loss.reference;
    if (ref === undefined) throw new UserError('the kl loss needs a reference: a value of the model, or a classifier to apply to the clean input');
    if (typeof ref === 'string') {
      reference = ref;
    } else {
      const b = addReferenceBranch(base, ref.classifier, { input: image.name, output: ref.output, doNotShare: trainableSet });
      base = b.graph;
      reference = b.reference;
    }
  }
  let trades: { adversarial: string; beta: number } | undefined;
  if (kind === 'trades') {
    const adversarial = opts.loss.adversarial;
    if (!adversarial || !model.outputs.some((o) => o.name === adversarial)) throw new UserError(`the trades loss needs the adversarial logits as an output of '${model.name}', got '${adversarial ?? ''}'`);
    if (!(opts.loss.beta !== undefined && opts.loss.beta >= 0)) throw new UserError(`the trades loss needs β ≥ 0, got ${opts.loss.beta}`);
    trades = { adversarial, beta: opts.loss.beta };
  }

  // --- eval model: forward in inference form + loss
  const ev = appendLoss(cloneGraph(base), kind, output, target, reference, trades);
  const evalGraph = ev.graph;
  evalGraph.name = `${model.name}_eval`;

  // --- training model: training-form BatchNorm where it trains, loss, gradients
  let trainBase = cloneGraph(base);
  let buffers: ArtifactInfo['buffers'] = [];
  if (opts.trainBatchNorm ?? true) {
    const bn = toTrainingBatchNorm(trainBase, {
      nodes: (n) => n.opType === 'BatchNormalization' && (trainableSet.has(n.inputs[1]) || trainableSet.has(n.inputs[2])),
    });
    trainBase = bn.graph;
    buffers = bn.runningStats.map((s) => ({ name: s.input, dims: [...model.initializers.get(s.input)!.dims], updated: s.updated }));
  }
  const tr = appendLoss(trainBase, kind, output, target, reference, trades);
  // A reference computed by the model itself is a target, not something to train towards.
  const stopGradient = kind === 'kl' && typeof opts.loss.reference === 'string' ? [reference!] : [];
  const grad = buildGradientGraph({ graph: tr.graph, loss: tr.mean, wrt: trainable, stopGradient });
  const training = grad.graph;
  training.name = `${model.name}_training`;
  const gradients: Record<string, string> = {};
  for (const p of trainable) {
    const gName = grad.gradients.get(p);
    if (!gName) throw new Error(`gradient engine returned no gradient for '${p}'`);
    gradients[p] = gName;
  }
  const outInfo = (g: Graph, name: string): ValueInfo =>
    g.outputs.find((o) => o.name === name) ?? g.valueInfo.get(name) ?? { name, dataType: DataType.FLOAT };
  training.outputs = [
    { name: 'loss', dataType: DataType.FLOAT, shape: [] },
    ...trainable.map((p) => ({ name: gradients[p], dataType: DataType.FLOAT, shape: [...model.initializers.get(p)!.dims] })),
    ...buffers.map((b) => ({ name: b.updated, dataType: DataType.FLOAT, shape: [...b.dims] })),
  ];
  evalGraph.outputs = [
    { name: 'loss', dataType: DataType.FLOAT, shape: [] },
    { ...outInfo(evalGraph, ev.perSample), name: ev.perSample },
    ...model.outputs.map((o) => ({ ...o, shape: o.shape && [...o.shape] })),
  ];

  // Parameters and trained running statistics become inputs: the trainer feeds its own buffers, no copies.
  const fed = [...trainable, ...buffers.map((b) => b.name)];
  initializersToInputs(training, fed);
  initializersToInputs(evalGraph, fed);

  const params: ParamSpec[] = trainable.map((p) => ({ name: p, dims: [...model.initializers.get(p)!.dims] }));
  const optimizer = buildOptimizerGraph(params, opts.optimizer, Math.max(13, model.opset));
  const info: ArtifactInfo = {
    version: 1,
    model: model.name,
    opset: model.opset,
    imageInput: image.name,
    labelsInput: tr.labels,
    loss: { kind, output, target, reference, ...trades },
    lossOutput: 'loss',
    perSampleLoss: ev.perSample,
    modelOutputs: model.outputs.map((o) => ({ ...o })),
    params,
    frozen,
    buffers,
    gradients,
    optimizer: resolveOptimizer(opts.optimizer),
  };
  training.metadata = { ...(training.metadata ?? {}), [INFO_KEY]: JSON.stringify(info) };

  const copy = (t: TensorData): TensorData => ({ dataType: t.dataType, dims: [...t.dims], data: t.data.slice() });
  const checkpoint: Checkpoint = {
    step: 0,
    epoch: 0,
    batchInEpoch: 0,
    rng: null,
    optimizer: info.optimizer,
    params: new Map(trainable.map((p) => [p, copy(model.initializers.get(p)!)])),
    optimizerState: initialState(opts.optimizer, params),
    buffers: new Map(buffers.map((b) => [b.name, copy(model.initializers.get(b.name)!)])),
    metadata: { model: model.name, loss: kind },
  };
  return { training, eval: evalGraph, optimizer, checkpoint, info };
}

export function writeArtifacts(dir: string, a: TrainingArtifacts): void {
  mkdirSync(dir, { recursive: true });
  saveModel(a.training, join(dir, FILES.training));
  saveModel(a.eval, join(dir, FILES.eval));
  saveModel(a.optimizer, join(dir, FILES.optimizer));
  saveCheckpoint(join(dir, FILES.checkpoint), a.checkpoint);
}

export function readArtifactInfo(training: Graph): ArtifactInfo {
  const raw = training.metadata?.[INFO_KEY];
  if (!raw) throw new UserError(`'${training.name}' is not a training model made by s2s artifacts (no '${INFO_KEY}' metadata)`);
  const info = JSON.parse(raw) as ArtifactInfo;
  if (info.version !== 1) throw new UserError(`training artifacts version ${info.version} are not supported by this build`);
  return info;
}

export function loadArtifacts(dir: string): TrainingArtifacts {
  for (const f of Object.values(FILES)) {
    if (!existsSync(join(dir, f))) throw new UserError(`${dir} is not a training-artifacts folder: ${f} is missing (make one with s2s artifacts)`);
  }
  const training = loadModel(join(dir, FILES.training));
  return {
    training,
    eval: loadModel(join(dir, FILES.eval)),
    optimizer: loadModel(join(dir, FILES.optimizer)),
    checkpoint: loadCheckpoint(join(dir, FILES.checkpoint)),
    info: readArtifactInfo(training),
  };
}
