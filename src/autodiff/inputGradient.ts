import { UserError } from '../util/errors';
import { DataType } from '../onnx/dtype';
import { Graph } from '../onnx/graph';
import { buildGradientGraph } from './gradient';
import { appendCrossEntropy } from './losses';

/**
 * The input-gradient graph that attacks run: M's inputs plus `labels` (int64
 * [N]); outputs M's outputs, `loss` (per-sample cross-entropy [N]) and
 * `grad_<input>` = d(Σ loss)/d(input) for every floating-point input.
 */
export type InputGradientLoss = 'cross-entropy';
export const INPUT_GRADIENT_LOSSES: InputGradientLoss[] = ['cross-entropy'];

export interface InputGradientOptions {
  loss: InputGradientLoss;
  /** the classifier output the loss reads (default: `logits`, or the only output) */
  logits?: string;
}

export function inputGradientGraph(model: Graph, opts: InputGradientOptions): { graph: Graph; gradients: Map<string, string> } {
  if (!INPUT_GRADIENT_LOSSES.includes(opts.loss)) throw new UserError(`unknown loss '${opts.loss}' (choose: ${INPUT_GRADIENT_LOSSES.join(', ')})`);
  const outputs = model.outputs.map((o) => o.name);
  const logits = opts.logits ?? (outputs.includes('logits') ? 'logits' : outputs.length === 1 ? outputs[0] : undefined);
  if (!logits) throw new UserError(`model '${model.name}' has several outputs (${outputs.join(', ')}); name the logits with --logits`);
  if (!outputs.includes(logits)) throw new UserError(`'${logits}' is not an output of model '${model.name}' (outputs: ${outputs.join(', ')})`);
  const taken = new Set([...model.inputs.map((v) => v.name), ...model.nodes.flatMap((n) => n.outputs), ...model.initializers.keys()]);
  for (const name of ['labels', 'loss']) if (taken.has(name)) throw new UserError(`model '${model.name}' already has a value named '${name}'`);
  // Initializers listed as inputs too (older exporters) are parameters, not inputs.
  const wrt = model.inputs.filter((v) => !model.initializers.has(v.name) && (v.dataType === DataType.FLOAT || v.dataType === DataType.DOUBLE)).map((v) => v.name);
  if (wrt.length === 0) throw new UserError(`model '${model.name}' has no floating-point input to differentiate`);
  const ce = appendCrossEntropy(model, logits, 'labels');
  const r = buildGradientGraph({ graph: ce.graph, loss: ce.loss, wrt });
  return { graph: r.graph, gradients: r.gradients };
}
