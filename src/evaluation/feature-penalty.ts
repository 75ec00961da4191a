import * as ort from 'onnxruntime-node';
import type { DetectorScore } from '../attacks/penalised';
import { buildGradientGraph } from '../autodiff';
import { composeGraphs } from '../onnx/compose';
import { Graph, NameScope, attr } from '../onnx/graph';
import { reconstructionOutput } from '../pipeline/compose';
import { ModelSession, SessionOptions, createSession } from '../runtime/session';
import { FEATURES_OUTPUT, withFeaturesOutput } from './feature-layer';

/**
 * The feature-space reconstruction error of `s2s eval detectors` as a graph
 * an attack can differentiate: mean over the D features of
 * (φ(x) − φ(s(x)))², φ = f's penultimate activations (feature-layer.ts), the
 * same score the candidate scorer computes from two forward passes.
 */
export const FEATURE_MSE_OUTPUT = 'feature_mse';
const INPUT = 'input';

/** input `input` [N, C, H, W] → `feature_mse` [N]. `classifier` canonical (input `input`, output `logits`), `s2snet` as in the set. */
export function featureMseGraph(classifier: Graph, s2snet: Graph): Graph {
  if (!s2snet.inputs.some((v) => v.name === INPUT)) throw new Error(`s2snet '${s2snet.name}' has no input '${INPUT}'`);
  const f = withFeaturesOutput(classifier);
  // φ(s(x)): the S2SNet, then f
  const defended = composeGraphs(s2snet, f, { connect: [[reconstructionOutput(s2snet, 's2snet'), INPUT]], prefix: 'defended/', outputs: [{ from: 'second', name: FEATURES_OUTPUT }] }).graph;
  // beside φ(x), on the same input; one copy of f's weights
  const both = composeGraphs(f, defended, {
    connect: [],
    shareInputs: true,
    shareIdenticalInitializers: true,
    prefix: 'reconstructed/',
    name: 'feature_mse',
    outputs: [
      { from: 'first', name: FEATURES_OUTPUT },
      { from: 'second', name: FEATURES_OUTPUT },
    ],
  });
  const g = both.graph;
  const [clean, recon] = g.outputs.map((o) => o.name);
  const scope = new NameScope(g);
  if (scope.has(FEATURE_MSE_OUTPUT)) throw new Error(`graph '${g.name}' already has a value '${FEATURE_MSE_OUTPUT}'`);
  scope.reserve(FEATURE_MSE_OUTPUT);
  const diff = scope.fresh('feature_mse/diff');
  const square = scope.fresh('feature_mse/square');
  g.nodes.push(
    { name: scope.fresh('feature_mse/Sub'), opType: 'Sub', inputs: [clean, recon], outputs: [diff], attrs: {} },
    { name: scope.fresh('feature_mse/Mul'), opType: 'Mul', inputs: [diff, diff], outputs: [square], attrs: {} },
    // the graphs are opset 13–17, where ReduceMean takes its axes as an attribute
    { name: scope.fresh('feature_mse/ReduceMean'), opType: 'ReduceMean', inputs: [square], outputs: [FEATURE_MSE_OUTPUT], attrs: { axes: attr.ints([1]), keepdims: attr.int(0) } },
  );
  g.outputs = [{ name: FEATURE_MSE_OUTPUT, dataType: g.outputs[0].dataType, shape: ['N'] }];
  if (g.opset > 17) throw new Error(`feature_mse: graph opset ${g.opset} takes ReduceMean axes as an input; convert the models to opset 13–17`);
  return g;
}

/** The feature-space error as a DetectorScore: value and input gradient through ONNX Runtime. */
export class FeatureMseScore implements DetectorScore {
  readonly name = 'feature-mse';

  private constructor(
    private readonly forward: ModelSession,
    private readonly backward: ModelSession,
    private readonly dims: readonly number[],
  ) {}

  static async open(classifier: Graph, s2snet: Graph, dims: readonly number[], session: SessionOptions): Promise<FeatureMseScore> {
    const forward = featureMseGraph(classifier, s2snet);
    const backward = buildGradientGraph({ graph: forward, loss: FEATURE_MSE_OUTPUT, wrt: [INPUT] });
    return new FeatureMseScore(
      await createSession(forward, { ...session, label: 'feature-mse' }),
      await createSession(backward.graph, { ...session, label: 'feature-mse/gradient' }),
      dims,
    );
  }

  private feed(x: Float32Array): Record<string, ort.Tensor> {
    const per = this.dims.reduce((a, d) => a * d, 1);
    return { [INPUT]: new ort.Tensor('float32', x, [x.length / per, ...this.dims]) };
  }

  async value(x: Float32Array): Promise<Float32Array> {
    return (await this.forward.run(this.feed(x), [FEATURE_MSE_OUTPUT]))[FEATURE_MSE_OUTPUT].data as Float32Array;
  }

  async gradient(x: Float32Array): Promise<{ value: Float32Array; grad: Float32Array }> {
    const r = await this.backward.run(this.feed(x), [FEATURE_MSE_OUTPUT, `grad_${INPUT}`]);
    return { value: r[FEATURE_MSE_OUTPUT].data as Float32Array, grad: r[`grad_${INPUT}`].data as Float32Array };
  }

  async release(): Promise<void> {
    await this.forward.release();
    await this.backward.release();
  }
}
