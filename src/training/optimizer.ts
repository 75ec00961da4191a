import { DataType } from '../onnx/dtype';
import { Graph, NameScope, Node, attr, emptyGraph } from '../onnx/graph';
import { TensorData, floatTensor } from '../onnx/tensor';

/**
 * The parameter update as a graph of standard ONNX ops (ORT's
 * optimizer_model.onnx uses com.microsoft AdamWOptimizer/SGDOptimizer, which
 * onnxruntime-node does not ship). Hyperparameters are baked in as constants;
 * the learning rate and the step number are inputs, so a schedule needs no
 * new graph.
 *
 * Semantics follow PyTorch (torch.optim.AdamW / SGD, dampening 0):
 *   AdamW: p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 *          p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
 *   SGD:   g ← g + wd·p; b ← μ·b + g; p ← p − lr·(nesterov ? g + μ·b : b)
 * `step` is t, the 1-based number of the update being made.
 */
export type OptimizerConfig =
  | { kind: 'adamw'; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number }
  | { kind: 'sgd'; momentum?: number; weightDecay?: number; nesterov?: boolean };

export type OptimizerKind = OptimizerConfig['kind'];

export interface ParamSpec {
  name: string;
  dims: number[];
}

export const LEARNING_RATE = 'learning_rate';
export const STEP = 'step';

/** Gradient value names as the gradient engine emits them. */
export const gradName = (param: string): string => `grad_${param}`;
/** Output name of an updated parameter or state tensor. */
export const updatedName = (name: string): string => `${name}.updated`;

/** Complete hyperparameters (defaults filled in: PyTorch's). */
export function resolveOptimizer(c: OptimizerConfig): Required<OptimizerConfig> {
  if (c.kind === 'adamw') {
    return { kind: 'adamw', beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, epsilon: c.epsilon ?? 1e-8, weightDecay: c.weightDecay ?? 0.01 };
  }
  return { kind: 'sgd', momentum: c.momentum ?? 0.9, weightDecay: c.weightDecay ?? 0, nesterov: c.nesterov ?? false };
}

/** Names of the state tensors the optimizer keeps for one parameter (same shape as the parameter). */
export function stateNames(c: OptimizerConfig, param: string): string[] {
  const r = resolveOptimizer(c);
  if (r.kind === 'adamw') return [`${param}.exp_avg`, `${param}.exp_avg_sq`];
  return r.momentum > 0 ? [`${param}.momentum`] : [];
}

/** Optimizer state at step 0: zeros. */
export function initialState(c: OptimizerConfig, params: ParamSpec[]): Map<string, TensorData> {
  const out = new Map<string, TensorData>();
  for (const p of params) for (const s of stateNames(c, p.name)) out.set(s, floatTensor(p.dims));
  return out;
}

export function buildOptimizerGraph(params: ParamSpec[], config: OptimizerConfig, opset = 17): Graph {
  const cfg = resolveOptimizer(config);
  const g = emptyGraph(`${cfg.kind}_optimizer`, opset);
  const scope = new NameScope();
  for (const p of params) {
    scope.reserve(p.name);
    scope.reserve(gradName(p.name));
    scope.reserve(updatedName(p.name));
    for (const s of stateNames(cfg, p.name)) {
      scope.reserve(s);
      scope.reserve(updatedName(s));
    }
  }
  scope.reserve(LEARNING_RATE);
  scope.reserve(STEP);

  const consts = new Map<number, string>();
  const scalar = (v: number): string => {
    const hit = consts.get(v);
    if (hit) return hit;
    const name = scope.fresh(`optimizer/const_${v}`);
    g.initializers.set(name, floatTensor([], [v]));
    consts.set(v, name);
    return name;
  };
  const node = (opType: string, inputs: string[], base: string, out?: string, attrs: Node['attrs'] = {}): string => {
    const o = out ?? scope.fresh(`optimizer/${base}`);
    g.nodes.push({ name: scope.fresh(`optimizer/${base}_${opType}`), opType, inputs, outputs: [o], attrs });
    return o;
  };

  g.inputs.push({ name: LEARNING_RATE, dataType: DataType.FLOAT, shape: [] });
  g.inputs.push({ name: STEP, dataType: DataType.INT64, shape: [] });

  if (cfg.kind === 'adamw') {
    const t = node('Cast', [STEP], 't', undefined, { to: attr.int(DataType.FLOAT) });
    const bc1 = node('Sub', [scalar(1), node('Pow', [scalar(cfg.beta1), t], 'beta1_pow')], 'bias_correction1');
    const bc2 = node('Sub', [scalar(1), node('Pow', [scalar(cfg.beta2), t], 'beta2_pow')], 'bias_correction2');
    const stepSize = node('Div', [LEARNING_RATE, bc1], 'step_size');
    const invSqrtBc2 = node('Reciprocal', [node('Sqrt', [bc2], 'sqrt_bc2')], 'inv_sqrt_bc2');
    const decay = cfg.weightDecay !== 0 ? node('Sub', [scalar(1), node('Mul', [LEARNING_RATE, scalar(cfg.weightDecay)], 'lr_wd')], 'decay') : undefined;
    for (const p of params) {
      const [mName, vName] = stateNames(cfg, p.name);
      const grad = gradName(p.name);
      const b = p.name;
      const m = node('Add', [node('Mul', [mName, scalar(cfg.beta1)], `${b}/m_old`), node('Mul', [grad, scalar(1 - cfg.beta1)], `${b}/m_new`)], `${b}/m`, updatedName(mName));
      const g2 = node('Mul', [grad, grad], `${b}/g2`);
      const v = node('Add', [node('Mul', [vName, scalar(cfg.beta2)], `${b}/v_old`), node('Mul', [g2, scalar(1 - cfg.beta2)], `${b}/v_new`)], `${b}/v`, updatedName(vName));
      const denom = node('Add', [node('Mul', [node('Sqrt', [v], `${b}/sqrt_v`), invSqrtBc2], `${b}/sqrt_vhat`), scalar(cfg.epsilon)], `${b}/denom`);
      const update = node('Mul', [node('Div', [m, denom], `${b}/ratio`), stepSize], `${b}/update`);
      const decayed = decay ? node('Mul', [p.name, decay], `${b}/decayed`) : p.name;
      node('Sub', [decayed, update], `${b}/new`, updatedName(p.name));
    }
  } else {
    for (const p of params) {
      const b = p.name;
      let grad = gradName(p.name);
      if (cfg.weightDecay !== 0) grad = node('Add', [grad, node('Mul', [p.name, scalar(cfg.weightDecay)], `${b}/wd`)], `${b}/g_wd`);
      let direction = grad;
      if (cfg.momentum > 0) {
        const [bufName] = stateNames(cfg, p.name);
        const buf = node('Add', [node('Mul', [bufName, scalar(cfg.momentum)], `${b}/buf_old`), grad], `${b}/buf`, updatedName(bufName));
        direction = cfg.nesterov ? node('Add', [grad, node('Mul', [buf, scalar(cfg.momentum)], `${b}/nesterov`)], `${b}/direction`) : buf;
      }
      node('Sub', [p.name, node('Mul', [direction, LEARNING_RATE], `${b}/update`)], `${b}/new`, updatedName(p.name));
    }
  }

  for (const p of params) {
    g.inputs.push({ name: p.name, dataType: DataType.FLOAT, shape: [...p.dims] });
    g.inputs.push({ name: gradName(p.name), dataType: DataType.FLOAT, shape: [...p.dims] });
    for (const s of stateNames(cfg, p.name)) g.inputs.push({ name: s, dataType: DataType.FLOAT, shape: [...p.dims] });
  }
  for (const p of params) {
    g.outputs.push({ name: updatedName(p.name), dataType: DataType.FLOAT, shape: [...p.dims] });
    for (const s of stateNames(cfg, p.name)) g.outputs.push({ name: updatedName(s), dataType: DataType.FLOAT, shape: [...p.dims] });
  }
  g.metadata = { 's2s.optimizer': JSON.stringify(cfg) };
  return g;
}

/** Reads the hyperparameters an optimizer graph was built with (stored in its metadata). */
export function optimizerConfigOf(g: Graph): Required<OptimizerConfig> {
  const raw = g.metadata?.['s2s.optimizer'];
  if (!raw) throw new Error(`graph '${g.name}' carries no optimizer configuration (metadata 's2s.optimizer')`);
  return resolveOptimizer(JSON.parse(raw) as OptimizerConfig);
}
