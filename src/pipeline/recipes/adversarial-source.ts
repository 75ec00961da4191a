import { GradientOracle, OnnxGradientOracle } from '../../attacks/oracle';
import { Graph, cloneGraph } from '../../onnx/graph';
import { TensorData } from '../../onnx/tensor';
import { initializersToInputs } from '../../training/graphEdit';
import { composeDefended } from '../compose';

/**
 * Where stage 2's adversarial examples get their gradients: `oracle()` is
 * called once per batch and answers for the model as it is at that moment.
 */
export interface AdversarialSource {
  readonly against: string;
  oracle(): GradientOracle;
  release(): Promise<void>;
}

/** The frozen classifier f: one session, the same model for every batch. */
export function frozenClassifierSource(f: Graph, intraOpThreads = 1): AdversarialSource {
  const oracle = OnnxGradientOracle.fromForward('f (adversarial inputs)', f, { intraOpThreads });
  return { against: 'f', oracle: () => oracle, release: () => oracle.release() };
}

/**
 * The current f ∘ s while its decoder trains. `values()` returns the
 * trainer's current trainable tensors and running statistics (copies); the
 * autoencoder's initializers of those names become graph inputs, built once
 * on the first batch, and every batch binds a fresh snapshot. The decoder's
 * BatchNorm is in inference form with its current running statistics — the
 * model as it would be served if training stopped here. Batches are read
 * one step ahead of training (the trainer prefetches), so the examples are
 * made against the decoder of one step earlier.
 */
export function currentDefendedSource(ae: Graph, f: Graph, values: () => ReadonlyMap<string, TensorData>, intraOpThreads = 1): AdversarialSource {
  let oracle: OnnxGradientOracle | undefined;
  return {
    against: 'defended',
    oracle() {
      const now = values();
      if (!oracle) {
        const live = cloneGraph(ae);
        initializersToInputs(live, [...now.keys()]);
        oracle = OnnxGradientOracle.fromForward('f ∘ s in training (adversarial inputs)', composeDefended(live, f, 'defended_in_training'), { intraOpThreads });
      }
      oracle.bind(now);
      return oracle;
    },
    release: async () => {
      await oracle?.release();
    },
  };
}
