import { UserError } from '../util/errors';
import { DataType } from '../onnx/dtype';
import { Graph, NameScope, Node, ValueInfo, cloneGraph, describeNode, topologicalSort } from '../onnx/graph';
import { Emitter } from './emitter';
import { gradientOpset } from './opset';
import { gradientRule, supportedOps } from './registry';
import { GradientRule } from './rule';

export interface GradientOptions {
  graph: Graph;
  /** the value to differentiate: a scalar or a per-sample vector [N]; the seed is ones, i.e. d(sum loss) */
  loss: string;
  /** graph input names and/or initializer names */
  wrt: string[];
  /** values treated as constants (no gradient flows through them) */
  stopGradient?: string[];
}

export interface GradientResult {
  /** forward + backward; outputs = original outputs, the loss, then one `grad_<name>` per wrt */
  graph: Graph;
  /** wrt name → name of its gradient output */
  gradients: Map<string, string>;
}

const FLOATS = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16]);

function differentiableInputs(rule: GradientRule | undefined, node: Node): number[] {
  if (!rule || rule.differentiable === undefined) return node.inputs.map((_, i) => i);
  return typeof rule.differentiable === 'function' ? rule.differentiable(node) : rule.differentiable;
}

/**
 * Reverse-mode differentiation of an ONNX graph into standard ONNX ops.
 *
 * Only nodes on a path from a `wrt` value to the loss are differentiated, and
 * a rule is asked only for the input gradients that are needed: frozen
 * initializers and side branches cost nothing. Gradients of a value used by
 * several nodes are added with one Sum.
 */
export function buildGradientGraph(opts: GradientOptions): GradientResult {
  const src = opts.graph;
  if (src.opset < 13) {
    throw new UserError(`autodiff: graph '${src.name}' uses opset ${src.opset}; gradients need opset 13 or later (re-export the model with opset 13–17)`);
  }
  const g = cloneGraph(src);
  g.opset = gradientOpset(g);
  const forward = topologicalSort(g);
  const scope = new NameScope(g);
  const e = new Emitter(g, scope, g.opset);

  const inputNames = new Set(g.inputs.map((v) => v.name));
  const producer = new Map<string, Node>();
  for (const n of forward) for (const o of n.outputs) if (o) producer.set(o, n);
  for (const w of opts.wrt) {
    if (!inputNames.has(w) && !g.initializers.has(w)) {
      throw new UserError(`autodiff: '${w}' is neither an input nor an initializer of graph '${g.name}' (inputs: ${[...inputNames].join(', ')})`);
    }
    const t = e.info(w)?.dataType;
    if (t !== undefined && !FLOATS.has(t)) throw new UserError(`autodiff: '${w}' is ${DataType[t]}; only floating-point values have gradients`);
  }
  if (!producer.has(opts.loss) && !inputNames.has(opts.loss) && !g.initializers.has(opts.loss)) {
    throw new UserError(`autodiff: loss '${opts.loss}' is not a value of graph '${g.name}'`);
  }

  // Forward sweep: which values depend on a wrt through differentiable inputs.
  const stop = new Set(opts.stopGradient ?? []);
  const requires = new Set(opts.wrt.filter((w) => !stop.has(w)));
  for (const n of forward) {
    const diff = differentiableInputs(gradientRule(n.opType), n);
    if (!diff.some((i) => n.inputs[i] && requires.has(n.inputs[i]))) continue;
    for (const o of n.outputs) {
      if (!o || stop.has(o)) continue;
      const t = e.info(o)?.dataType;
      if (t === undefined || FLOATS.has(t)) requires.add(o);
    }
  }

  // Backward sweep: which of those the loss depends on.
  const needed = new Set<string>();
  const onPath = new Set<Node>();
  const stack = requires.has(opts.loss) ? [opts.loss] : [];
  while (stack.length) {
    const v = stack.pop()!;
    if (needed.has(v)) continue;
    needed.add(v);
    const p = producer.get(v);
    if (!p) continue;
    onPath.add(p);
    for (const i of differentiableInputs(gradientRule(p.opType), p)) if (p.inputs[i] && requires.has(p.inputs[i])) stack.push(p.inputs[i]);
  }
  const missing = forward.filter((n) => onPath.has(n) && !gradientRule(n.opType));
  if (missing.length) {
    const list = missing.slice(0, 5).map((n) => describeNode(n)).join(', ');
    const types = [...new Set(missing.map((n) => n.opType))].join(', ');
    throw new UserError(`autodiff: no gradient for op ${types} (${list}${missing.length > 5 ? ', …' : ''}); supported ops: ${supportedOps().join(', ')}`);
  }

  // Reverse sweep.
  const contributions = new Map<string, string[]>();
  const total = new Map<string, string | undefined>();
  const gradOf = (v: string): string | undefined => {
    if (total.has(v)) return total.get(v);
    const parts = contributions.get(v);
    const r = !parts ? undefined : parts.length === 1 ? parts[0] : e.op('Sum', parts);
    total.set(v, r);
    return r;
  };
  if (needed.has(opts.loss)) {
    e.prefix = 'grad/seed';
    contributions.set(opts.loss, [e.onesLike(opts.loss)]);
  }
  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k];
    if (!onPath.has(node)) continue;
    const rule = gradientRule(node.opType)!;
    e.prefix = `grad/${node.name || node.outputs[0]}`;
    const dy = node.outputs.map((o) => (o && needed.has(o) ? gradOf(o) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const thunks = rule.grad({ node, dy, e });
    for (const i of differentiableInputs(rule, node)) {
      const x = node.inputs[i];
      if (!x || !needed.has(x)) continue;
      const thunk = thunks[i];
      if (!thunk) throw new Error(`autodiff: the ${node.opType} rule gave no gradient for input ${i} of ${describeNode(node)}`);
      const d = thunk();
      if (d === undefined) continue;
      const list = contributions.get(x) ?? [];
      list.push(d);
      contributions.set(x, list);
    }
  }

  // Outputs: the forward outputs, the loss, then one gradient per wrt.
  const gradients = new Map<string, string>();
  const outputs: ValueInfo[] = [...g.outputs];
  const lossInfo = e.info(opts.loss);
  if (!outputs.some((o) => o.name === opts.loss)) outputs.push({ name: opts.loss, dataType: lossInfo?.dataType ?? DataType.FLOAT, shape: lossInfo?.shape });
  e.prefix = 'grad/out';
  for (const w of opts.wrt) {
    const d = gradOf(w) ?? e.zerosLike(w);
    const name = scope.fresh(`grad_${w}`);
    g.nodes.push({ name: scope.fresh(`${name}/identity`), opType: 'Identity', inputs: [d], outputs: [name], attrs: {} });
    const info = e.info(w)!;
    outputs.push({ name, dataType: info.dataType, shape: info.shape && [...info.shape] });
    gradients.set(w, name);
  }
  g.outputs = outputs;
  g.name = `${src.name}_grad`;
  return { graph: g, gradients };
}
