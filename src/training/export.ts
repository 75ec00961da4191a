import { Graph, cloneGraph } from '../onnx/graph';
import { TensorData } from '../onnx/tensor';
import { ArtifactInfo } from './artifacts';
import { inputsToInitializers, pruneToOutputs } from './graphEdit';

/**
 * The trained inference graph: the eval model cut back to the original
 * model's outputs (loss, labels input and any reference branch fall away),
 * with the trained parameters and running statistics written in as
 * initializers. Node for node this is the original model; only the values
 * of trained tensors differ, frozen ones are the original bytes.
 */
export function inferenceGraph(evalGraph: Graph, info: ArtifactInfo, values: ReadonlyMap<string, TensorData>): Graph {
  const g = cloneGraph(evalGraph);
  g.name = info.model;
  const fed = [...info.params.map((p) => p.name), ...info.buffers.map((b) => b.name)];
  const missing = fed.filter((n) => !values.has(n));
  if (missing.length) throw new Error(`export: no value for ${missing.join(', ')}`);
  inputsToInitializers(g, new Map(fed.map((n) => [n, values.get(n)!])));
  pruneToOutputs(g, info.modelOutputs);
  if (g.metadata) {
    const { ['s2s.training']: _drop, ...rest } = g.metadata;
    g.metadata = Object.keys(rest).length ? rest : undefined;
  }
  return g;
}
