import { NoiseSpec } from '../../attacks/noise';
import { Graph, NameScope, attr, cloneGraph } from '../../onnx/graph';
import { floatTensor } from '../../onnx/tensor';

/**
 * The autoencoder with a noise layer in front, for noise-augmented stage-2
 * training: input → clip(input + n, 0, 1) → the autoencoder. The noise is
 * drawn by ONNX Runtime inside the training graph (RandomNormalLike /
 * RandomUniformLike), so every image of every step gets a fresh draw at no
 * cost to the data pipeline, while the graph's input stays the clean image —
 * which the KL reference (f on the clean image) and the denoising target
 * (the clean image) read. Nothing on this path has parameters, so the
 * gradient engine never differentiates through it.
 *
 * The draws are seeded once per session: a run is reproducible from its
 * start, but a run resumed from a checkpoint sees other draws than an
 * uninterrupted one.
 */
export function withInputNoise(ae: Graph, spec: NoiseSpec, seed: number, input = 'input'): Graph {
  const g = cloneGraph(ae);
  const scope = new NameScope(g);
  const noisy = scope.fresh('input_noise/noisy');
  const rename = (v: string) => (v === input ? noisy : v);
  g.nodes = g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename) }));
  const nodes: Graph['nodes'] = [];
  const node = (opType: string, inputs: string[], attrs: Record<string, ReturnType<typeof attr.int>> = {}, out?: string) => {
    const o = out ?? scope.fresh(`input_noise/${opType.toLowerCase()}`);
    nodes.push({ name: scope.fresh(`input_noise/${opType}`), opType, inputs, outputs: [o], attrs });
    return o;
  };
  const constant = (base: string, v: number) => {
    const n = scope.fresh(base);
    g.initializers.set(n, floatTensor([], [v]));
    return n;
  };
  // ORT takes a float seed attribute; fold ours into a float that is exact.
  const seedAttr = attr.float(seed % 65536);
  let n: string;
  if (spec.kind === 'gaussian') n = node('RandomNormalLike', [input], { mean: attr.float(0), scale: attr.float(spec.sigma), seed: seedAttr });
  else if (spec.kind === 'uniform') n = node('RandomUniformLike', [input], { low: attr.float(-spec.sigma), high: attr.float(spec.sigma), seed: seedAttr });
  else n = node('Mul', [node('Sign', [node('RandomUniformLike', [input], { low: attr.float(-1), high: attr.float(1), seed: seedAttr })]), constant('input_noise/sigma', spec.sigma)]);
  const sum = node('Add', [input, n]);
  node('Clip', [sum, constant('input_noise/zero', 0), constant('input_noise/one', 1)], {}, noisy);
  g.nodes = [...nodes, ...g.nodes];
  g.name = `${ae.name}_noisy`;
  return g;
}
