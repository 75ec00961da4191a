import { DataType } from '../onnx/dtype';
import { Graph } from '../onnx/graph';
import { numel } from '../onnx/tensor';

/** BatchNorm running statistics: stored with the weights but not trained by gradient descent. */
export function isRunningStatistic(name: string): boolean {
  return name.endsWith('.running_mean') || name.endsWith('.running_var');
}

/**
 * Float initializers under `prefix` (all when omitted), running statistics
 * excluded unless asked — the count torchvision and the papers report.
 */
export function parameterNames(g: Graph, opts: { prefix?: string; runningStats?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const [name, t] of g.initializers) {
    if (t.dataType !== DataType.FLOAT) continue;
    if (opts.prefix !== undefined && !name.startsWith(opts.prefix)) continue;
    if (!opts.runningStats && isRunningStatistic(name)) continue;
    out.push(name);
  }
  return out;
}

export function countParameters(g: Graph, opts: { prefix?: string; runningStats?: boolean } = {}): number {
  return parameterNames(g, opts).reduce((n, name) => n + numel(g.initializers.get(name)!.dims), 0);
}
