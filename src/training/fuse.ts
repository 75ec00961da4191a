import { DataType } from '../onnx/dtype';
import { Graph, NameScope, cloneGraph } from '../onnx/graph';
import { ArtifactInfo } from './artifacts';
import { gradName, stateNames, updatedName } from './optimizer';

/**
 * One graph for a whole training step: forward, backward and the optimizer
 * update, so the trainer makes one session.run per step and the gradients
 * never leave ONNX Runtime. Built in memory from training_model.onnx and
 * optimizer_model.onnx (they share parameter names; the optimizer's gradient
 * inputs are wired to the training model's gradient outputs).
 *
 * Inputs: the training model's inputs + learning_rate, step and the optimizer
 * state. Outputs: loss, `<param>.updated`, `<state>.updated` and the updated
 * running statistics.
 */
export function fuseTrainingStep(training: Graph, optimizer: Graph, info: ArtifactInfo): Graph {
  const g = cloneGraph(training);
  g.name = `${info.model}_training_step`;
  const scope = new NameScope(g);

  // The optimizer reads grad_<p>; the engine may have named a gradient otherwise.
  const wire = new Map<string, string>();
  for (const p of info.params) wire.set(gradName(p.name), info.gradients[p.name]);
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  const present = new Set([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);

  for (const [name, t] of optimizer.initializers) {
    if (scope.has(name)) throw new Error(`fusing step graph: optimizer constant '${name}' clashes with a name in the training model`);
    g.initializers.set(name, t);
  }
  for (const n of optimizer.nodes) {
    for (const o of n.outputs) if (o && scope.has(o)) throw new Error(`fusing step graph: optimizer value '${o}' clashes with a name in the training model`);
    g.nodes.push({ ...n, inputs: n.inputs.map((i) => wire.get(i) ?? i), outputs: [...n.outputs], attrs: { ...n.attrs } });
  }
  for (const v of optimizer.inputs) {
    const name = wire.get(v.name) ?? v.name;
    if (present.has(name) || produced.has(name)) continue;
    g.inputs.push({ ...v, shape: v.shape && [...v.shape] });
  }
  g.outputs = [
    { name: info.lossOutput, dataType: DataType.FLOAT, shape: [] },
    ...info.params.flatMap((p) => [p.name, ...stateNames(info.optimizer, p.name)].map((n) => ({ name: updatedName(n), dataType: DataType.FLOAT, shape: [...p.dims] }))),
    ...info.buffers.map((b) => ({ name: b.updated, dataType: DataType.FLOAT, shape: [...b.dims] })),
  ];
  if (optimizer.opset > g.opset) g.opset = optimizer.opset;
  return g;
}
