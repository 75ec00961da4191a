import { DataType } from '../onnx/dtype';
import { Graph } from '../onnx/graph';
import { UserError } from '../util/errors';

/**
 * f's penultimate activations φ(x): the value that feeds the classifier's
 * last fully connected layer (its last Gemm or MatMul). A reconstruction
 * error measured there ignores pixel changes f does not care about, which
 * the pixel error cannot.
 */
export const FEATURES_OUTPUT = 'features';

const LINEAR_OPS = new Set(['Gemm', 'MatMul']);

/** The value feeding the last Gemm/MatMul of `g` (nodes are in topological order, as ONNX requires). */
export function penultimateValue(g: Graph): string {
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!LINEAR_OPS.has(n.opType)) continue;
    // The data operand: the one that is not a weight (Gemm's A; for MatMul the side without an initializer).
    const data = n.inputs.slice(0, 2).find((v) => v !== '' && !g.initializers.has(v));
    if (!data) throw new UserError(`classifier '${g.name}': its last ${n.opType} (node '${n.name}') multiplies two constants; no feature layer to read`);
    return data;
  }
  throw new UserError(`classifier '${g.name}' has no Gemm or MatMul node, so it has no penultimate feature layer for the feature-space reconstruction error (ops: ${[...new Set(g.nodes.map((n) => n.opType))].join(', ')})`);
}

/** A copy of the canonical classifier with φ(x) as a second output `features`. */
export function withFeaturesOutput(f: Graph): Graph {
  const value = penultimateValue(f);
  if (f.outputs.some((o) => o.name === FEATURES_OUTPUT)) throw new Error(`classifier '${f.name}' already has an output '${FEATURES_OUTPUT}'`);
  return {
    ...f,
    nodes: [...f.nodes, { name: 'penultimate_features', opType: 'Identity', inputs: [value], outputs: [FEATURES_OUTPUT], attrs: {} }],
    outputs: [...f.outputs, { name: FEATURES_OUTPUT, dataType: DataType.FLOAT }],
  };
}
